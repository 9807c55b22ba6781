package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/server/servertest"
)

// fineline is Fineline wired by server.Open over an embedded store in dir,
// with one merchant.
type fineline struct {
	*servertest.Running
	key   string
	merch merchants.Merchant
}

func start(t *testing.T, dir string) *fineline {
	t.Helper()
	r := servertest.Start(t, servertest.Options{DataDir: dir})
	f := &fineline{Running: r}
	m, secret := r.AddShop(t, "shop")
	f.key, f.merch = secret, m
	return f
}

func (f *fineline) call(t *testing.T, method, path, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// smallDisk mounts a small tmpfs for the data directory, so that the store
// can really run out of room. It needs root (mount); CI runs as root.
func smallDisk(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fl-full")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", dir).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a tmpfs for a full disk (run as root): %v %s", err, out)
		}
		t.Skipf("a full disk needs a tmpfs: run the tests as root (mount failed: %v %s)", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("umount", "-l", dir).Run()
		os.RemoveAll(dir)
	})
	return dir
}

// fill takes the disk's free room, leaving none; the returned function
// gives it back.
func fill(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	// Fill the last bytes too.
	for n := 64 << 10; n > 0; n /= 2 {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	f.Close()
	return func() { _ = os.Remove(path) }
}

// TestAFullStoreAnswers503AndNothingAcknowledgedIsLost: with the disk
// full, writes answer 503 store_unavailable with Retry-After (never a 500,
// never a grant), checks of known state keep answering, and once room
// returns writes succeed; every write acknowledged before is there.
func TestAFullStoreAnswers503AndNothingAcknowledgedIsLost(t *testing.T) {
	dir := smallDisk(t)
	f := start(t, filepath.Join(dir, "data"))
	for i := range 20 {
		if code, _, body := f.call(t, "PUT", fmt.Sprintf("/v1/subjects/s%d/consents/newsletter", i), `{"state":"granted"}`); code != 201 {
			t.Fatalf("before the disk fills: %d %s", code, body)
		}
	}
	if err := f.Ledger.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	free := fill(t, dir)
	refused := 0
	for i := range 200 {
		code, h, body := f.call(t, "PUT", fmt.Sprintf("/v1/subjects/full%d/consents/newsletter", i), `{"state":"granted"}`)
		switch code {
		case 201:
			continue // SQLite may still have had a free page
		case 503:
			if !strings.Contains(body, `"code":"store_unavailable"`) || h.Get("Retry-After") == "" {
				t.Fatalf("503 without its code or Retry-After: %v %s", h, body)
			}
			refused++
		default:
			t.Fatalf("a write to a full disk answered %d: %s", code, body)
		}
		if refused >= 3 {
			break
		}
	}
	if refused == 0 {
		t.Fatal("no write was refused on a full disk")
	}
	// The center answers a save with a page in the shopper's language.
	_, _, linkBody := f.call(t, "POST", "/v1/subjects/s3/preference-links", "")
	token := regexp.MustCompile(`t=([^"&]+)`).FindStringSubmatch(linkBody)
	if token == nil {
		t.Fatalf("no preference link: %s", linkBody)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := func(path string, v url.Values) (*http.Response, string) {
		req, _ := http.NewRequest("POST", f.URL+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", f.URL)
		req.Header.Set("Accept-Language", "de")
		res, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	tok, _ := url.QueryUnescape(token[1])
	if res, _ := form("/c/shop/p", url.Values{"token": {tok}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", res.StatusCode)
	}
	res, page := form("/c/shop/preferences", url.Values{"action": {"all_off"}})
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || !strings.Contains(page, "Es wurde nichts geändert") {
		t.Fatalf("a save on a full disk: %d %v\n%s", res.StatusCode, res.Header, page)
	}

	code, _, body := f.call(t, "GET", "/v1/check?subject=s3&purpose=newsletter", "")
	if code != 200 || !strings.Contains(body, `"reason":"granted"`) {
		t.Fatalf("a check of known state on a full disk: %d %s", code, body)
	}
	code, h, body := f.call(t, "GET", "/readyz", "")
	if code != 503 || !strings.Contains(body, `"code":"store_unavailable"`) || h.Get("Retry-After") == "" {
		t.Fatalf("readyz on a full disk: %d %v %s", code, h, body)
	}
	free()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, body = f.call(t, "PUT", "/v1/subjects/after/consents/newsletter", `{"state":"granted"}`)
		if code == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after room returned, a write answers %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _, body := f.call(t, "GET", "/readyz", ""); code != 200 {
		t.Fatalf("readyz once writes go in again: %d %s", code, body)
	}
	for i := range 20 {
		if d, err := f.Ledger.Check(context.Background(), f.merch.ID, fmt.Sprintf("s%d", i), "newsletter"); err != nil || !d.Allowed {
			t.Fatalf("an acknowledged grant is lost: %+v %v", d, err)
		}
	}
	rep, err := f.Ledger.VerifyAll(context.Background())
	if err != nil || rep.Broken != nil {
		t.Fatalf("verify after the full disk: %+v %v", rep, err)
	}
}

// TestJobsSeeEveryAcknowledgedWrite: a material publish right after a
// burst of grants (projections still written behind) announces to every
// subject it affects; the field sweep, run over values written a moment
// before, keeps every value whose purpose is on.
func TestJobsSeeEveryAcknowledgedWrite(t *testing.T) {
	dir, err := os.MkdirTemp("", "fl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := start(t, dir)
	ctx := context.Background()
	const n = 2000
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := f.Ledger.Apply(ctx, consent.Choices{MerchantID: f.merch.ID, SubjectID: fmt.Sprintf("burst-%04d", i), Channel: consent.ChannelAPI, Actor: "test",
				Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Publish at once, then build the campaign as the worker does.
	code, _, body := f.call(t, "POST", "/v1/notices", `{"texts":{"en":{"summary":"The newsletter now comes every week."}},"material":true,"purposes":["newsletter"]}`)
	if code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	if code, _, body := f.call(t, "POST", "/v1/notices/2/publish", `{}`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	jobs, stop := context.WithCancel(ctx)
	defer stop()
	f.RunJobs(jobs)
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := f.Announcer.Progress(ctx, f.merch.ID, 2)
		if err == nil && p.Built {
			if total := p.Queued + p.Sent + p.Failed + p.Skipped; total != n {
				t.Fatalf("the campaign holds %d items, want %d: %+v", total, n, p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign not built: %+v %v", p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Values given a moment before a sweep are kept while their purpose is on.
	for _, fd := range demo.Fields() {
		fd.MerchantID = f.merch.ID
		if _, err := f.Fields.Create(ctx, fd); err != nil {
			t.Fatal(err)
		}
	}
	const m = 300
	for i := range m {
		if _, err := f.Ledger.Apply(ctx, consent.Choices{MerchantID: f.merch.ID, SubjectID: fmt.Sprintf("size-%03d", i), Channel: consent.ChannelCenter, Actor: "test",
			Requests: []consent.Request{{Purpose: "recommendations", State: consent.Granted, Explicit: true}}, Values: map[string]string{"shoe_size": "39"}}); err != nil {
			t.Fatal(err)
		}
	}
	erased, err := f.Fields.Sweep(ctx)
	if err != nil || erased != 0 {
		t.Fatalf("the sweep erased %d values whose purpose is on (%v)", erased, err)
	}
	vals, err := f.Store.Values(ctx, f.merch.ID, "shoe_size")
	if err != nil || len(vals) != m {
		t.Fatalf("%d values after the sweep, want %d (%v)", len(vals), m, err)
	}
}
