package signin_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/signin"
	"github.com/fineline/fineline/store/storetest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newService(t *testing.T) (*signin.Service, *clock) {
	t.Helper()
	clk := &clock{now: time.Now().UTC()}
	return &signin.Service{Store: storetest.Open(t), Key: []byte("0123456789abcdef0123456789abcdef"), Issuer: "http://center.test", Now: clk.Now}, clk
}

func detail(err error) string {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return ae.Detail
	}
	return ""
}

func TestLinksWorkOnceWithinFifteenMinutesForTheirMerchant(t *testing.T) {
	s, clk := newService(t)
	ctx := context.Background()
	secret, err := s.NewLink(ctx, "mer_a", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseLink(ctx, "mer_b", secret, ""); detail(err) != "link_invalid" {
		t.Fatalf("another merchant's link: %v", err)
	}
	sub, err := s.UseLink(ctx, "mer_a", secret, "")
	if err != nil || sub != "alice" {
		t.Fatalf("first use: %q %v", sub, err)
	}
	if _, err := s.UseLink(ctx, "mer_a", secret, ""); detail(err) != "link_used" {
		t.Fatalf("second use: %v", err)
	}

	late, err := s.NewLink(ctx, "mer_a", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	clk.add(signin.LinkTTL)
	if _, err := s.UseLink(ctx, "mer_a", late, ""); detail(err) != "link_expired" {
		t.Fatalf("link after 15 minutes: %v", err)
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 43), secret[:42] + "x"} {
		if _, err := s.UseLink(ctx, "mer_a", bad, ""); detail(err) != "link_invalid" {
			t.Fatalf("forged link %q: %v", bad, err)
		}
	}
}

func TestConcurrentUsesOfOneLinkSignInOnce(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	secret, err := s.NewLink(ctx, "mer_a", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UseLink(ctx, "mer_a", secret, ""); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent uses signed in, want exactly 1", wins)
	}
}

func TestSessionsArePinnedAndEndable(t *testing.T) {
	s, clk := newService(t)
	ctx := context.Background()
	tok, sess, err := s.NewSession("mer_a", "alice")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ParseSession(ctx, "mer_a", tok)
	if err != nil || got.SubjectID != "alice" || got.ID != sess.ID {
		t.Fatalf("parse: %+v %v", got, err)
	}
	if _, err := s.ParseSession(ctx, "mer_b", tok); err == nil {
		t.Fatal("a session for one merchant opened another's center")
	}

	// A preference link is not a session, and a session is not a link.
	link, _, err := s.NewPreferenceLink("mer_a", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ParseSession(ctx, "mer_a", link); err == nil {
		t.Fatal("a preference link was accepted as a session")
	}
	if _, err := s.UsePreferenceLink("mer_a", tok); err == nil {
		t.Fatal("a session was accepted as a preference link")
	}
	if sub, err := s.UsePreferenceLink("mer_a", link); err != nil || sub != "alice" {
		t.Fatalf("preference link: %q %v", sub, err)
	}

	// Forged tokens: alg none, another key, another issuer, tampered payload.
	claims := jwt.MapClaims{"iss": "http://center.test", "aud": "center-session", "sub": "alice", "mer": "mer_a", "jti": "x", "iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Hour).Unix()}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	otherKey, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("another key entirely, 32 bytes!!"))
	claims["iss"] = "http://evil.test"
	otherIss, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.Key)
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	for name, bad := range map[string]string{"alg none": none, "other key": otherKey, "other issuer": otherIss, "tampered": tampered, "empty": ""} {
		if _, err := s.ParseSession(ctx, "mer_a", bad); !errors.Is(err, signin.ErrNoSession) {
			t.Errorf("%s: %v", name, err)
		}
	}

	if err := s.End(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ParseSession(ctx, "mer_a", tok); !errors.Is(err, signin.ErrNoSession) {
		t.Fatal("an ended session still works")
	}
	tok2, _, err := s.NewSession("mer_a", "alice")
	if err != nil {
		t.Fatal(err)
	}
	clk.add(signin.SessionTTL + time.Minute)
	if _, err := s.ParseSession(ctx, "mer_a", tok2); !errors.Is(err, signin.ErrNoSession) {
		t.Fatal("an expired session still works")
	}
	if _, err := s.UsePreferenceLink("mer_a", link); err != nil {
		t.Fatalf("a 7-day link failed after 12 hours: %v", err)
	}
	clk.add(signin.PreferenceLinkTTL)
	if _, err := s.UsePreferenceLink("mer_a", link); detail(err) != "link_expired" {
		t.Fatalf("preference link after 7 days: %v", err)
	}
}

func TestUnsubscribeTokensAreSignedAndScoped(t *testing.T) {
	s, _ := newService(t)
	u := signin.Unsubscribe{MerchantID: "mer_a", SubjectID: "alice", Purpose: "newsletter"}
	tok := s.UnsubscribeToken(u)
	got, err := s.ParseUnsubscribe(tok)
	if err != nil || got != u {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	other := s.UnsubscribeToken(signin.Unsubscribe{MerchantID: "mer_a", SubjectID: "bob", Purpose: "newsletter"})
	p, m, _ := strings.Cut(tok, ".")
	p2, _, _ := strings.Cut(other, ".")
	for name, bad := range map[string]string{"swapped payload": p2 + "." + m, "cut mac": p + "." + m[:10], "no dot": p, "empty": "", "garbage": "!!.??"} {
		if _, err := s.ParseUnsubscribe(bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// A session key does not make unsubscribe tokens.
	sess, _, _ := s.NewSession("mer_a", "alice")
	if _, err := s.ParseUnsubscribe(sess); err == nil {
		t.Error("a session token passed as an unsubscribe token")
	}
}

// TestALinkForASharedAddressSignsInTheProfilePicked: an address several
// subjects share gets one link; using it names one of them, and only one.
func TestALinkForASharedAddressSignsInTheProfilePicked(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	secret, err := s.NewLink(ctx, "mer_a", []string{"customer-1", "guest-77"})
	if err != nil {
		t.Fatal(err)
	}
	lt, err := s.Link(ctx, "mer_a", secret)
	if err != nil || len(lt.SubjectIDs) != 2 {
		t.Fatalf("reading the link: %+v %v", lt, err)
	}
	if _, err := s.UseLink(ctx, "mer_a", secret, ""); detail(err) != "link_invalid" {
		t.Fatalf("no profile picked for a shared address: %v", err)
	}
	if _, err := s.UseLink(ctx, "mer_a", secret, "someone-else"); detail(err) != "link_invalid" {
		t.Fatalf("a profile the link is not for: %v", err)
	}
	sub, err := s.UseLink(ctx, "mer_a", secret, "customer-1")
	if err != nil || sub != "customer-1" {
		t.Fatalf("picking customer-1: %q %v", sub, err)
	}
	if _, err := s.UseLink(ctx, "mer_a", secret, "guest-77"); detail(err) != "link_used" {
		t.Fatalf("the same link for the other profile: %v", err)
	}
}
