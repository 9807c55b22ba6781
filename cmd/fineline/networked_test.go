package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fineline/fineline/internal/smtptest"
)

// programDir holds the fineline binary the process tests run.
var programDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if programDir != "" {
		os.RemoveAll(programDir)
	}
	os.Exit(code)
}

var (
	programOnce sync.Once
	programErr  error
)

// program builds this command once, without the tests' instrumentation
// (under -race the store server and the instances would run many times
// slower than they do in production), and returns its path.
func program(t *testing.T) string {
	t.Helper()
	programOnce.Do(func() {
		if programDir, programErr = os.MkdirTemp("", "flbin"); programErr != nil {
			return
		}
		if out, err := exec.Command("go", "build", "-o", filepath.Join(programDir, "fineline"), ".").CombinedOutput(); err != nil {
			programErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if programErr != nil {
		t.Fatal(programErr)
	}
	return filepath.Join(programDir, "fineline")
}

// postgres is a PostgreSQL cluster of Debian's package, started for a test
// in its own directory, reached over its Unix socket.
type postgres struct {
	dir  string
	port int
	as   []string // runs a command as the postgres user when this is root
}

func (p *postgres) url() string {
	return fmt.Sprintf("postgres://fineline@/postgres?host=%s&port=%d", p.dir, p.port)
}

func startPostgres(t *testing.T) *postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		need(t, "PostgreSQL (apt-get install -y postgresql)")
	}
	slices.Sort(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "flpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &postgres{dir: dir, port: 20000 + os.Getpid()%10000}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown for postgres: %v %s", err, out)
		}
		p.as = []string{"runuser", "-u", "postgres", "--"}
	}
	pgRun := func(name string, args ...string) {
		t.Helper()
		argv := append(append(slices.Clone(p.as), filepath.Join(bin, name)), args...)
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	pgRun("initdb", "-D", data, "-A", "trust", "-U", "fineline", "--no-sync", "-E", "UTF8")
	pgRun("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses='' -c max_connections=200", p.port, dir), "start")
	t.Cleanup(func() {
		argv := append(slices.Clone(p.as), filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop")
		_ = exec.Command(argv[0], argv[1:]...).Run()
	})
	return p
}

// need skips a test that needs a component this machine lacks, or fails it
// under CI, which must have installed it.
func need(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("this test needs %s", what)
	}
	t.Skipf("this test needs %s", what)
}

// proc is this binary run as `fineline` in its own process.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func startProc(t *testing.T, args []string, env map[string]string) *proc {
	t.Helper()
	cmd := exec.Command(program(t), args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitFor polls ready until it holds, failing if p exits first.
func waitFor(t *testing.T, p *proc, what string, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ready() {
		if p.exited() {
			t.Fatalf("%s: the process exited:\n%s", what, p.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready after 60 s:\n%s", what, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// instance is one Fineline process on the shared store.
type instance struct {
	*proc
	base string
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// serveInstance runs `fineline serve` with env on a free loopback address
// and waits until it is ready.
func serveInstance(t *testing.T, env map[string]string) *instance {
	t.Helper()
	addr := freeAddr(t)
	env = maps.Clone(env)
	env["FINELINE_ADDR"] = addr
	in := &instance{proc: startProc(t, nil, env), base: "http://" + addr}
	waitFor(t, in.proc, "fineline on "+addr, func() bool {
		res, err := http.Get(in.base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return in
}

func (in *instance) do(method, path, key, body string) (int, string, error) {
	req, err := http.NewRequest(method, in.base+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func (in *instance) must(t *testing.T, method, path, key, body string, want int) string {
	t.Helper()
	code, b, err := in.do(method, path, key, body)
	if err != nil || code != want {
		t.Fatalf("%s %s on %s: %d %s %v, want %d", method, path, in.base, code, b, err, want)
	}
	return b
}

func (in *instance) allowed(t *testing.T, key, subject string) bool {
	t.Helper()
	b := in.must(t, "GET", "/v1/check?purpose=newsletter&subject="+subject, key, "", 200)
	return strings.Contains(b, `"allowed":true`)
}

func randomKey(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestThreeInstancesOnPostgreSQL runs three Fineline processes on one
// networked store (PostgreSQL with FerretDB's PostgreSQL backend, served by
// `fineline store-server` in its own process): writes spread over the
// three all land; a withdrawal on one is seen by the others within the
// cache bound; kill -9 of one during writes loses nothing acknowledged and
// the chains verify; an announcement of changed terms goes out once to
// each shopper although three instances run the announcer.
func TestThreeInstancesOnPostgreSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and four processes")
	}
	pg := startPostgres(t)
	storeAddr := freeAddr(t)
	st := startProc(t, []string{"store-server", "--addr", storeAddr, "--postgresql", pg.url()}, nil)
	waitFor(t, st, "store-server", func() bool {
		c, err := net.Dial("tcp", storeAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	mailbox := smtptest.Start(t)
	const adminToken = "admin-token-for-the-networked-test"
	env := map[string]string{
		"MONGODB_URI": "mongodb://" + storeAddr + "/", "FINELINE_MASTER_KEY": randomKey(t), "FINELINE_SIGNING_KEY": randomKey(t),
		"FINELINE_ADMIN_TOKEN": adminToken, "FINELINE_DEMO": "false", "FINELINE_LOG_LEVEL": "error", "SMTP_URL": mailbox.URL(),
		"FINELINE_ANNOUNCE_RATE": "200", "FINELINE_CACHE_BOUND": "2s", "FINELINE_POLL_INTERVAL": "100ms",
		"FINELINE_WEBHOOKS_ALLOW_LOOPBACK": "true",
	}
	startInstance := func() *instance {
		t.Helper()
		e := maps.Clone(env)
		e["FINELINE_DATA_DIR"] = t.TempDir()
		return serveInstance(t, e)
	}
	// The first creates the store's collections; then the others start.
	ins := []*instance{startInstance()}
	ins = append(ins, startInstance(), startInstance())

	var created struct {
		APIKey struct{ Secret string } `json:"api_key"`
	}
	req, _ := http.NewRequest("POST", ins[0].base+"/admin/v1/merchants", strings.NewReader(`{"slug":"shared-shop","name":"Shared Shop"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(res.Body).Decode(&created); err != nil || res.StatusCode != 201 {
		t.Fatalf("create merchant: %d %v", res.StatusCode, err)
	}
	res.Body.Close()
	key := created.APIKey.Secret
	ins[1].must(t, "POST", "/v1/purposes", key, `{"key":"newsletter","texts":{"en":{"name":"Newsletter","statement":"We email you our news twice a month."}}}`, 201)
	// One webhook endpoint: the three share its delivery, one at a time.
	var hookMu sync.Mutex
	hooked := map[string]int{} // subject -> deliveries of its grant
	hookTotal := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Type string `json:"type"`
			Data struct {
				Subject string `json:"subject"`
				Seq     int64  `json:"seq"`
			} `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		hookMu.Lock()
		if p.Type == "consent.granted" && p.Data.Seq == 1 {
			hooked[p.Data.Subject]++
		}
		hookTotal++
		hookMu.Unlock()
		w.WriteHeader(204)
	}))
	defer recv.Close()
	ins[2].must(t, "POST", "/v1/webhook-endpoints", key, fmt.Sprintf(`{"url":%q,"types":["consent.granted"]}`, recv.URL), 201)

	// Writes spread over the three: every acknowledged one is there.
	writes := func(targets []*instance, d time.Duration, prefix string) (acked []string, rate float64) {
		var mu sync.Mutex
		var n atomic.Int64
		var wg sync.WaitGroup
		stopAt := time.Now().Add(d)
		for w := range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(stopAt); i++ {
					subject := fmt.Sprintf("%s-%d-%d", prefix, w, i)
					in := targets[(w+i)%len(targets)]
					code, _, err := in.do("PUT", "/v1/subjects/"+subject+"/consents/newsletter", key, `{"state":"granted"}`)
					if err == nil && code == 201 {
						n.Add(1)
						mu.Lock()
						acked = append(acked, subject)
						mu.Unlock()
					}
				}
			}()
		}
		began := time.Now()
		wg.Wait()
		return acked, float64(n.Load()) / time.Since(began).Seconds()
	}
	acked, rate := writes(ins, 4*time.Second, "w")
	t.Logf("writes over three instances: %.0f/s (%d acknowledged)", rate, len(acked))
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	for i, s := range acked {
		if i%10 == 0 && !ins[(i+1)%3].allowed(t, key, s) {
			t.Fatalf("%s's acknowledged grant is not there on another instance", s)
		}
	}

	// A withdrawal on one instance reaches the others' answers.
	var delays []time.Duration
	for i := range 40 {
		subject := fmt.Sprintf("moving-%d", i)
		a, others := ins[i%3], []*instance{ins[(i+1)%3], ins[(i+2)%3]}
		a.must(t, "PUT", "/v1/subjects/"+subject+"/consents/newsletter", key, `{"state":"granted"}`, 201)
		at := time.Now()
		for _, o := range others {
			// Until it is seen, and then in the cache.
			for !o.allowed(t, key, subject) {
				if time.Since(at) > 5*time.Second {
					t.Fatalf("%s's grant is not seen on %s after 5 s", subject, o.base)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		a.must(t, "PUT", "/v1/subjects/"+subject+"/consents/newsletter", key, `{"state":"withdrawn"}`, 201)
		at = time.Now()
		for _, o := range others {
			for o.allowed(t, key, subject) {
				if time.Since(at) > 5*time.Second {
					t.Fatalf("%s's withdrawal is not seen on %s after 5 s", subject, o.base)
				}
				time.Sleep(5 * time.Millisecond)
			}
			delays = append(delays, time.Since(at))
		}
	}
	p50, p99 := percentile(delays, 0.5), percentile(delays, 0.99)
	t.Logf("a withdrawal reaches the other instances in p50 %v, p99 %v", p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	if p99 > 2*time.Second+500*time.Millisecond {
		t.Fatalf("p99 %v is over the cache bound of 2 s", p99)
	}

	// kill -9 of one instance while all three take writes.
	var killedAcked []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		killedAcked, _ = writes(ins, 3*time.Second, "k")
	}()
	time.Sleep(1500 * time.Millisecond)
	ins[2].kill()
	<-done
	for _, s := range killedAcked {
		if !ins[0].allowed(t, key, s) {
			t.Fatalf("%s's acknowledged grant is lost after kill -9", s)
		}
	}
	t.Logf("kill -9 during writes: 0 of %d acknowledged writes lost", len(killedAcked))
	ins[2] = startInstance()
	if !ins[2].allowed(t, key, killedAcked[len(killedAcked)-1]) {
		t.Fatal("the restarted instance does not see the writes")
	}
	// Every acknowledged grant reached the webhook receiver, through the
	// kill (its lease runs out and another instance takes over), and no
	// instance sent what another had.
	deadline := time.Now().Add(90 * time.Second)
	missing := func() []string {
		hookMu.Lock()
		defer hookMu.Unlock()
		var out []string
		for _, s := range append(slices.Clone(acked), killedAcked...) {
			if hooked[s] == 0 {
				out = append(out, s)
			}
		}
		return out
	}
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		for _, in := range ins {
			t.Log(in.proc.out.String())
		}
		t.Fatalf("%d acknowledged grants never reached the webhook receiver (first %s)", len(m), m[0])
	}
	hookMu.Lock()
	distinct := len(hooked)
	dups := hookTotal - distinct
	hookMu.Unlock()
	t.Logf("webhooks over three instances: %d grants delivered, %d deliveries (%d duplicates)", distinct, hookTotal, dups)
	if dups > distinct/10 {
		t.Fatalf("%d duplicate deliveries for %d grants: instances sent the same endpoint's messages", dups, distinct)
	}

	verify := exec.Command(program(t), "ledger", "verify")
	verify.Env = append(os.Environ(), "MONGODB_URI="+env["MONGODB_URI"], "FINELINE_MASTER_KEY="+env["FINELINE_MASTER_KEY"],
		"FINELINE_SIGNING_KEY="+env["FINELINE_SIGNING_KEY"], "FINELINE_DATA_DIR="+t.TempDir(), "FINELINE_LOG_LEVEL=error")
	if out, err := verify.CombinedOutput(); err != nil {
		t.Fatalf("ledger verify after kill -9: %v\n%s", err, out)
	}

	// Changed terms are announced once to each shopper, by one of the three.
	const shoppers = 30
	ins[2].must(t, "POST", "/v1/purposes", key, `{"key":"offers_news","texts":{"en":{"name":"Offers","statement":"We email you our offers once a month."}}}`, 201)
	time.Sleep(2500 * time.Millisecond) // the others know their purposes from a cache of at most the bound
	for i := range shoppers {
		in := ins[i%3]
		subject := fmt.Sprintf("reader-%d", i)
		in.must(t, "PUT", "/v1/subjects/"+subject, key, fmt.Sprintf(`{"email":"reader%d@example.com"}`, i), 201)
		in.must(t, "PUT", "/v1/subjects/"+subject+"/consents/offers_news", key, `{"state":"granted"}`, 201)
	}
	// Only the readers granted offers_news: the campaign is theirs alone.
	ins[0].must(t, "POST", "/v1/notices", key, `{"texts":{"en":{"summary":"We now share purchases with a delivery partner."}},"material":true,"purposes":["offers_news"]}`, 201)
	ins[1].must(t, "POST", "/v1/notices/2/publish", key, `{"grace_period_days":14}`, 200)
	deadline = time.Now().Add(120 * time.Second)
	for mailbox.Total() < shoppers && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a second sender would have sent by now
	for i := range shoppers {
		if n := mailbox.Count(fmt.Sprintf("reader%d@example.com", i)); n != 1 {
			_, progress, _ := ins[0].do("GET", "/v1/notices/2/announcement", key, "")
			t.Fatalf("reader%d got the announcement %d times, want once (%d mails in all; the campaign: %s)", i, n, mailbox.Total(), progress)
		}
	}
}
