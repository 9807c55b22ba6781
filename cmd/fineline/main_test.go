package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/server"
	"github.com/fineline/fineline/store/storetest"
)

// syncBuffer is a bytes.Buffer safe to write from the server goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// running is one run of `fineline serve` in this process.
type running struct {
	base   string
	stdout *syncBuffer
	stop   func() int
}

func startServer(t *testing.T, dataDir string) *running {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{"FINELINE_ADDR": addr, "FINELINE_DATA_DIR": dataDir, "FINELINE_LOG_LEVEL": "error", "FINELINE_DEMO_SHOP_ADDR": freeAddr(t)}
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, mapEnv(env), stdout, io.Discard) }()
	s := &running{base: "http://" + addr, stdout: stdout}
	var once sync.Once
	code := 0
	s.stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { s.stop() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(s.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s
			}
		}
		select {
		case c := <-done:
			t.Fatalf("server exited with %d before it was ready", c)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *running) call(t *testing.T, method, path, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

var keyPattern = regexp.MustCompile(`fl_[A-Za-z0-9]{12}_[A-Za-z0-9]{32}`)

func TestRestartKeepsDataAndSeedsOnce(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, dir)
	key := keyPattern.FindString(first.stdout.String())
	if key == "" {
		t.Fatalf("first start printed no API key:\n%s", first.stdout)
	}
	if code, body := first.call(t, "PUT", "/v1/subjects/bob/consents/recommendations", key, `{"state":"granted"}`); code != 201 {
		t.Fatalf("grant: %d %s", code, body)
	}
	if code := first.stop(); code != 0 {
		t.Fatalf("graceful stop exited %d", code)
	}

	second := startServer(t, dir)
	out := second.stdout.String()
	if strings.Contains(out, "Seeded") || keyPattern.MatchString(out) {
		t.Fatalf("second start seeded again:\n%s", out)
	}
	code, body := second.call(t, "GET", "/v1/check?subject=bob&purpose=recommendations", key, "")
	if code != 200 || !strings.Contains(body, `"allowed":true`) {
		t.Fatalf("after restart the demo key or the consent is gone: %d %s", code, body)
	}
	code, body = second.call(t, "GET", "/v1/api-keys", key, "")
	if code != 200 || strings.Count(body, `"id"`) != 1 {
		t.Fatalf("demo merchant should have exactly one key: %s", body)
	}
	code, body = second.call(t, "GET", "/v1/purposes", key, "")
	if code != 200 || strings.Count(body, `"key"`) != 5 {
		t.Fatalf("demo purposes: %s", body)
	}
	if second.stop() != 0 {
		t.Fatal("second stop failed")
	}
	st := storetest.OpenDir(t, dir)
	n, err := st.Database().Collection("merchants").CountDocuments(context.Background(), bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("%d merchants after two starts (%v), want 1", n, err)
	}
}

func TestLedgerVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	key := keyPattern.FindString(s.stdout.String())
	for _, state := range []string{"granted", "withdrawn", "granted"} {
		if code, body := s.call(t, "PUT", "/v1/subjects/carol/consents/newsletter", key, fmt.Sprintf(`{"state":%q}`, state)); code != 201 {
			t.Fatalf("%d %s", code, body)
		}
	}
	env := mapEnv(map[string]string{"FINELINE_DATA_DIR": dir})
	// While the server runs, verify attaches to its store.
	var out bytes.Buffer
	if code := run(context.Background(), []string{"ledger", "verify"}, env, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "OK") {
		t.Fatalf("verify on a clean ledger: exit %d: %s", code, out.String())
	}
	s.stop()

	st := storetest.OpenDir(t, dir)
	ctx := context.Background()
	var ev struct {
		ID string `bson:"_id"`
	}
	if err := st.Database().Collection("consent_events").FindOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "/carol/000000000002$"}}}}).Decode(&ev); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Database().Collection("consent_events").UpdateOne(ctx, bson.D{{Key: "_id", Value: ev.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "granted"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	code := run(context.Background(), []string{"ledger", "verify"}, env, &out, io.Discard)
	if code != 1 || !strings.Contains(out.String(), "BROKEN") || !strings.Contains(out.String(), "subject carol event 2") {
		t.Fatalf("verify after tampering: exit %d: %s", code, out.String())
	}
}

func TestHelpExplainsEverySetting(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, mapEnv(nil), io.Discard, &stderr); code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	for _, s := range []string{"FINELINE_ADDR", "FINELINE_DATA_DIR", "FINELINE_BASE_URL", "MONGODB_URI", "FINELINE_ADMIN_TOKEN", "FINELINE_MASTER_KEY", "FINELINE_REWARD_INTERVAL", "ledger verify",
		"FINELINE_LOG_FORMAT", "FINELINE_DRAIN_TIMEOUT", "FINELINE_METRICS", "FINELINE_PREVIOUS_SIGNING_KEYS", "fineline backup", "fineline restore"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("--help does not mention %s", s)
		}
	}
	if code := run(context.Background(), []string{"--addr", "nonsense"}, mapEnv(nil), io.Discard, io.Discard); code != 2 {
		t.Fatalf("bad --addr exited %d, want 2", code)
	}
}

func TestStartAfterACrashRollsTheLedgerForward(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	key := keyPattern.FindString(s.stdout.String())
	for _, state := range []string{"granted", "withdrawn"} {
		if code, body := s.call(t, "PUT", "/v1/subjects/dave/consents/newsletter", key, fmt.Sprintf(`{"state":%q}`, state)); code != 201 {
			t.Fatalf("%d %s", code, body)
		}
	}
	s.stop()

	// Make it look as if the process died after appending dave's events and
	// before recording how far the journal was applied: no checkpoint, so
	// the start replays the whole journal (the embedded store derives
	// states from the events themselves).
	st := storetest.OpenDir(t, dir)
	ctx := context.Background()
	db := st.Database()
	if res, err := db.Collection("seeds").DeleteOne(ctx, bson.D{{Key: "_id", Value: "ledger-checkpoint/0"}}); err != nil || res.DeletedCount != 1 {
		t.Fatalf("the clean stop left no checkpoint: %v %v", res, err)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}

	s = startServer(t, dir)
	code, body := s.call(t, "GET", "/v1/check?subject=dave&purpose=newsletter", key, "")
	if code != 200 || !strings.Contains(body, `"reason":"withdrawn"`) {
		t.Fatalf("after the crash the withdrawal is lost: %d %s", code, body)
	}
	code, body = s.call(t, "POST", "/v1/check", key, `{"purpose":"newsletter","subjects":["dave","alice"]}`)
	if code != 200 || !strings.Contains(body, `{"subject":"dave","allowed":false,"reason":"withdrawn"}`) {
		t.Fatalf("batch after the crash: %d %s", code, body)
	}
}

func TestDemoShopEmbedsTheWidgetFromAnotherOrigin(t *testing.T) {
	s := startServer(t, t.TempDir())
	m := regexp.MustCompile(`Demo shop with the widget: (http://\S+)`).FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("no demo shop URL printed:\n%s", s.stdout)
	}
	res, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), s.base+"/widget.js") || !regexp.MustCompile(`data-token="ey[^"]+"`).Match(body) {
		t.Fatalf("demo shop page: %d\n%s", res.StatusCode, body)
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self' "+s.base) {
		t.Fatalf("demo shop CSP: %q", res.Header.Get("Content-Security-Policy"))
	}
	origin := strings.TrimSuffix(m[1], "/")
	req, _ := http.NewRequest("GET", s.base+"/w/v1/demo-shop/config", nil)
	req.Header.Set("Origin", origin)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("the widget API from the demo shop's origin: %d %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
}

func TestVolunteeredDataOpensAfterRestartWithTheGeneratedMasterKey(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, dir)
	key := keyPattern.FindString(first.stdout.String())
	if first.stop() != 0 {
		t.Fatal("stop failed")
	}
	info, err := os.Stat(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatalf("no master key in the data directory: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("master key mode %v, want 0600", info.Mode().Perm())
	}

	// Alice joins the birthday offer (as the center does), with the server down.
	ctx := context.Background()
	cfg, err := parseConfig("test", nil, mapEnv(map[string]string{"FINELINE_DATA_DIR": dir}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := server.Open(ctx, cfg.server(false, io.Discard), storetest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Merchants.Store.MerchantBySlug(ctx, "demo-shop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Offers.Accept(ctx, offers.Acceptance{MerchantID: m.ID, SubjectID: "alice", Offer: "birthday_treat",
		Values: map[string]string{"birthday": "--07-19"}, Channel: consent.ChannelCenter, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Ledger.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}

	second := startServer(t, dir)
	code, body := second.call(t, "GET", "/v1/subjects/alice/fields?purpose=birthday_reward", key, "")
	if code != 200 || !strings.Contains(body, `"value":"--07-19"`) {
		t.Fatalf("after restart the birthday does not open: %d %s", code, body)
	}
	code, body = second.call(t, "GET", "/v1/subjects/alice/fields?purpose=recommendations", key, "")
	if code != 200 || strings.Contains(body, "07-19") || !strings.Contains(body, `"reason":"not_needed_for_purpose"`) {
		t.Fatalf("another purpose reads the birthday: %d %s", code, body)
	}
}

func TestMongoDBNeedsTheMasterKey(t *testing.T) {
	env := map[string]string{"MONGODB_URI": "mongodb://db.example:27017", "FINELINE_SIGNING_KEY": "x"}
	_, err := parseConfig("test", nil, mapEnv(env), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "FINELINE_MASTER_KEY") {
		t.Fatalf("MONGODB_URI without FINELINE_MASTER_KEY: %v, want an error naming it", err)
	}
}

// mapEnv is an environment holding exactly m.
func mapEnv(m map[string]string) environ {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestEmptyDemoShopAddressTurnsTheDemoShopOff(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "localhost:8081"},
		{map[string]string{"FINELINE_DEMO_SHOP_ADDR": ""}, ""},
		{map[string]string{"FINELINE_DEMO_SHOP_ADDR": "127.0.0.1:9000"}, "127.0.0.1:9000"},
	} {
		cfg, err := parseConfig("test", nil, mapEnv(tc.env), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DemoShopAddr != tc.want {
			t.Errorf("env %v: demo shop at %q, want %q", tc.env, cfg.DemoShopAddr, tc.want)
		}
	}
}
