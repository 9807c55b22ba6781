package mail

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fineline/fineline/apperr"
)

const testFrom = "Fineline <no-reply@localhost>"

// newSMTP returns a Sender for rawURL, failing the test if New refuses it.
func newSMTP(t *testing.T, cfg Config) Sender {
	t.Helper()
	if cfg.From == "" {
		cfg.From = testFrom
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%q): %v", cfg.SMTPURL, err)
	}
	return s
}

func TestSMTPDeliversMultipartMessage(t *testing.T) {
	srv := startServer(t, serverOptions{user: "user", pass: "pass", requireAuth: true})
	logger, logs := testLogger()
	s := newSMTP(t, Config{SMTPURL: "smtp://user:pass@127.0.0.1:" + srv.port() + "?starttls=none", Logger: logger})

	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	r := got[0]
	if r.from != "no-reply@localhost" {
		t.Errorf("MAIL FROM = %q, want no-reply@localhost", r.from)
	}
	if len(r.to) != 1 || r.to[0] != "zoe@example.test" {
		t.Errorf("RCPT TO = %q, want [zoe@example.test]", r.to)
	}
	if r.user != "user" {
		t.Errorf("authenticated user = %q, want user", r.user)
	}
	if _, attempts := srv.snapshot(); len(attempts) != 1 || attempts[0] != (authAttempt{"user", "pass"}) {
		t.Errorf("AUTH attempts = %v, want one with user/pass", attempts)
	}
	checkSample(t, parseMail(t, r.data))
	if ua := parseMail(t, r.data).header.Get("User-Agent"); ua != "" {
		t.Errorf("User-Agent = %q, want none", ua)
	}

	if !strings.Contains(logs.String(), "mail sent") {
		t.Errorf("log lacks \"mail sent\":\n%s", logs)
	}
	checkLogClean(t, logs.String(), "pass")
}

func TestSMTPDecodesCredentialsFromURL(t *testing.T) {
	user, pass := "fineline@example.test", "p@ss w/rd:é%"
	srv := startServer(t, serverOptions{user: user, pass: pass, requireAuth: true})
	u := url.URL{Scheme: "smtp", User: url.UserPassword(user, pass), Host: srv.addr, RawQuery: "starttls=none"}
	s := newSMTP(t, Config{SMTPURL: u.String()})

	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send with %s: %v", u.Redacted(), err)
	}
	if got := srv.received(); len(got) != 1 || got[0].user != user {
		t.Errorf("received %d messages (user %v), want 1 from %q", len(got), got, user)
	}
}

func TestSMTPWrongPasswordFails(t *testing.T) {
	srv := startServer(t, serverOptions{user: "user", pass: "pass", requireAuth: true})
	logger, logs := testLogger()
	s := newSMTP(t, Config{SMTPURL: "smtp://user:wrong-secret@127.0.0.1:" + srv.port() + "?starttls=none", Logger: logger})

	err := s.Send(context.Background(), sampleMessage())
	if err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
	if !apperr.Is(err, apperr.Unavailable) {
		t.Errorf("error code = %s, want %s (%v)", apperr.CodeOf(err), apperr.Unavailable, err)
	}
	if !strings.Contains(err.Error(), "AUTH") {
		t.Errorf("error %q does not say AUTH failed", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("error %q contains the password", err)
	}
	if _, attempts := srv.snapshot(); len(attempts) != 1 || attempts[0] != (authAttempt{"user", "wrong-secret"}) {
		t.Errorf("AUTH attempts = %v, want one with user/wrong-secret", attempts)
	}
	if got := srv.received(); len(got) != 0 {
		t.Errorf("server received %d messages, want 0", len(got))
	}
	checkLogClean(t, logs.String(), "wrong-secret")
}

func TestSMTPWithoutCredentialsSkipsAuth(t *testing.T) {
	srv := startServer(t, serverOptions{user: "user", pass: "pass"})
	s := newSMTP(t, Config{SMTPURL: "smtp://127.0.0.1:" + srv.port() + "?starttls=none"})

	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, attempts := srv.snapshot(); len(attempts) != 0 {
		t.Errorf("AUTH attempts = %v, want none without credentials", attempts)
	}
	if got := srv.received(); len(got) != 1 || got[0].user != "" {
		t.Errorf("received %v, want one message without AUTH", got)
	}
}

func TestSMTPStartTLS(t *testing.T) {
	serverTLS, clientTLS := testCerts(t)
	for _, query := range []string{"", "?starttls=opportunistic", "?starttls=mandatory"} {
		t.Run("starttls"+query, func(t *testing.T) {
			srv := startServer(t, serverOptions{user: "user", pass: "pass", requireAuth: true, startTLS: serverTLS})
			s := newSMTP(t, Config{SMTPURL: "smtp://user:pass@127.0.0.1:" + srv.port() + query, TLSConfig: clientTLS})

			if err := s.Send(context.Background(), sampleMessage()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := srv.received()
			if len(got) != 1 || !got[0].tls || got[0].user != "user" {
				t.Fatalf("received %d messages (tls, user = %v), want 1 over TLS as user", len(got), got)
			}
			checkSample(t, parseMail(t, got[0].data))
		})
	}
}

func TestSMTPStartTLSNoneStaysPlain(t *testing.T) {
	serverTLS, clientTLS := testCerts(t)
	srv := startServer(t, serverOptions{startTLS: serverTLS})
	s := newSMTP(t, Config{SMTPURL: "smtp://127.0.0.1:" + srv.port() + "?starttls=none", TLSConfig: clientTLS})

	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := srv.received(); len(got) != 1 || got[0].tls {
		t.Errorf("received %v, want one message without TLS", got)
	}
}

func TestSMTPMandatoryStartTLSRefusesPlainServer(t *testing.T) {
	srv := startServer(t, serverOptions{user: "user", pass: "pass"})
	s := newSMTP(t, Config{SMTPURL: "smtp://user:pass@127.0.0.1:" + srv.port() + "?starttls=mandatory"})

	err := s.Send(context.Background(), sampleMessage())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send to a server without STARTTLS = %v, want a STARTTLS error", err)
	}
	if _, attempts := srv.snapshot(); len(attempts) != 0 {
		t.Errorf("credentials were sent in clear: %v", attempts)
	}
	if got := srv.received(); len(got) != 0 {
		t.Errorf("server received %d messages, want 0", len(got))
	}
}

func TestSMTPStartTLSUntrustedCertificateFails(t *testing.T) {
	serverTLS, _ := testCerts(t)
	srv := startServer(t, serverOptions{user: "user", pass: "pass", startTLS: serverTLS})
	// No TLSConfig: the system roots do not know the test certificate.
	s := newSMTP(t, Config{SMTPURL: "smtp://user:pass@127.0.0.1:" + srv.port() + "?starttls=mandatory"})

	if err := s.Send(context.Background(), sampleMessage()); err == nil {
		t.Fatal("Send over STARTTLS with an untrusted certificate succeeded")
	}
	if _, attempts := srv.snapshot(); len(attempts) != 0 {
		t.Errorf("credentials were sent: %v", attempts)
	}
	if got := srv.received(); len(got) != 0 {
		t.Errorf("server received %d messages, want 0", len(got))
	}
}

func TestSMTPSImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := testCerts(t)
	srv := startServer(t, serverOptions{user: "user", pass: "pass", requireAuth: true, implicitTLS: serverTLS})
	s := newSMTP(t, Config{SMTPURL: "smtps://user:pass@127.0.0.1:" + srv.port(), TLSConfig: clientTLS})

	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.received()
	if len(got) != 1 || !got[0].tls || got[0].user != "user" {
		t.Fatalf("received %d messages (%v), want 1 over TLS as user", len(got), got)
	}
	checkSample(t, parseMail(t, got[0].data))
}

func TestSMTPSUntrustedCertificateFails(t *testing.T) {
	serverTLS, _ := testCerts(t)
	srv := startServer(t, serverOptions{user: "user", pass: "pass", implicitTLS: serverTLS})
	s := newSMTP(t, Config{SMTPURL: "smtps://user:pass@127.0.0.1:" + srv.port()})

	err := s.Send(context.Background(), sampleMessage())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Send over smtps with an untrusted certificate = %v, want a certificate error", err)
	}
	if got := srv.received(); len(got) != 0 {
		t.Errorf("server received %d messages, want 0", len(got))
	}
}

func TestSMTPServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s := newSMTP(t, Config{SMTPURL: "smtp://" + addr + "?starttls=none"})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err = s.Send(ctx, sampleMessage())
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	if !apperr.Is(err, apperr.Unavailable) {
		t.Errorf("error code = %s, want %s (%v)", apperr.CodeOf(err), apperr.Unavailable, err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send took %s, want under the 2s deadline", elapsed)
	}
}

// silentServer accepts connections and never speaks, like a stalled relay.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close listener: %v", err)
		}
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			if err := c.Close(); err != nil {
				t.Errorf("close conn: %v", err)
			}
		}
	})
	return l.Addr().String()
}

func TestSMTPStalledServerHonoursContext(t *testing.T) {
	addr := silentServer(t)
	// The sender's own timeout is long: only ctx can end this quickly.
	s := newSMTP(t, Config{SMTPURL: "smtp://" + addr + "?starttls=none", Timeout: time.Minute})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, sampleMessage())
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Send to a silent server succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if elapsed > 3*time.Second {
		t.Errorf("Send took %s after a 200ms deadline", elapsed)
	}
}

func TestSMTPTimeoutBoundsSend(t *testing.T) {
	addr := silentServer(t)
	s := newSMTP(t, Config{SMTPURL: "smtp://" + addr + "?starttls=none", Timeout: 200 * time.Millisecond})

	start := time.Now()
	err := s.Send(context.Background(), sampleMessage())
	if err == nil {
		t.Fatal("Send to a silent server succeeded")
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Send took %s with a 200ms Timeout", elapsed)
	}
}

func TestSMTPErrorsDoNotNameTheRecipient(t *testing.T) {
	srv := startServer(t, serverOptions{rejectRcpt: true})
	logger, logs := testLogger()
	s := newSMTP(t, Config{SMTPURL: "smtp://127.0.0.1:" + srv.port() + "?starttls=none", Logger: logger})

	m := sampleMessage()
	m.To = "Zoe@Example.test" // the server echoes it; redaction ignores case
	err := s.Send(context.Background(), m)
	if err == nil {
		t.Fatal("Send to a refused recipient succeeded")
	}
	if strings.Contains(strings.ToLower(err.Error()), "zoe@example.test") {
		t.Errorf("error names the recipient: %v", err)
	}
	if !strings.Contains(err.Error(), "[recipient]") || !strings.Contains(err.Error(), "550") {
		t.Errorf("error %q lacks the redacted server reply", err)
	}
	checkLogClean(t, logs.String())
}

func TestSMTPConcurrentSends(t *testing.T) {
	srv := startServer(t, serverOptions{user: "user", pass: "pass", requireAuth: true})
	s := newSMTP(t, Config{SMTPURL: "smtp://user:pass@127.0.0.1:" + srv.port() + "?starttls=none"})

	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- s.Send(context.Background(), sampleMessage()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	if got := srv.received(); len(got) != n {
		t.Errorf("server received %d messages, want %d", len(got), n)
	}
}
