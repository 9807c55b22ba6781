package webhooks_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
)

// freePort returns a loopback port nobody listens on.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// lines collects a process's output lines.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.all {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

func startReceiver(t *testing.T, name string, args []string, env ...string) *lines {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	l := &lines{}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
		}
	}()
	return l
}

func waitListening(t *testing.T, port string) {
	waitFor(t, 30*time.Second, "a receiver on "+port, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// TestTheREADMEReceiversVerifyAndApplyChanges: the Go and Node receivers
// the README gives (docs/examples, verbatim) take Fineline's messages,
// refuse a forged one, and apply a withdrawal.
func TestTheREADMEReceiversVerifyAndApplyChanges(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	goSrc, _ := os.ReadFile("../docs/examples/receiver-go/main.go")
	nodeSrc, _ := os.ReadFile("../docs/examples/receiver-node/receiver.js")
	for name, src := range map[string][]byte{"Go": goSrc, "Node": nodeSrc} {
		if len(src) == 0 || !strings.Contains(string(readme), string(src)) {
			t.Errorf("the README does not give the %s receiver of docs/examples verbatim", name)
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is missing: apt-get install -y nodejs")
		}
		t.Skip("node is missing: apt-get install -y nodejs")
	}
	e := newEnv(t, 0)
	bin := filepath.Join(t.TempDir(), "receiver-go")
	if out, err := exec.Command("go", "build", "-o", bin, "../docs/examples/receiver-go").CombinedOutput(); err != nil {
		t.Fatalf("go build the Go receiver: %v\n%s", err, out)
	}
	goPort, nodePort := freePort(t), freePort(t)
	var secrets [2]string
	for i, port := range []string{goPort, nodePort} {
		secrets[i] = e.register("http://127.0.0.1:"+port+"/fineline", "").Secret
	}
	goOut := startReceiver(t, "Go receiver", []string{bin}, "PORT="+goPort, "FINELINE_WEBHOOK_SECRET="+secrets[0])
	nodeOut := startReceiver(t, "Node receiver", []string{node, "../docs/examples/receiver-node/receiver.js"}, "PORT="+nodePort, "FINELINE_WEBHOOK_SECRET="+secrets[1])
	waitListening(t, goPort)
	waitListening(t, nodePort)
	// A forged message is refused by both.
	for _, port := range []string{goPort, nodePort} {
		req, _ := http.NewRequest("POST", "http://127.0.0.1:"+port+"/fineline", strings.NewReader(`{"type":"consent.withdrawn","data":{"subject":"x","seq":9}}`))
		req.Header.Set("webhook-id", "msg_forged")
		req.Header.Set("webhook-timestamp", fmt.Sprint(time.Now().Unix()))
		req.Header.Set("webhook-signature", "v1,"+strings.Repeat("A", 44))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a forged message to %s: %d, want 401", port, res.StatusCode)
		}
	}
	e.run()
	e.decide("zoe", "newsletter", consent.Granted)
	e.decide("zoe", "newsletter", consent.Withdrawn)
	for name, out := range map[string]*lines{"Go": goOut, "Node": nodeOut} {
		waitFor(t, 30*time.Second, "the "+name+" receiver applying the withdrawal", func() bool {
			// The grant may come second (messages go in parallel): then it
			// is older than what the receiver holds, and dropped.
			return out.has("consent.withdrawn zoe newsletter 2")
		})
		if out.has("msg_forged") {
			t.Fatalf("the %s receiver applied a forged message", name)
		}
	}
}
