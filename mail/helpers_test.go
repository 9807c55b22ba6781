package mail

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message as the test SMTP server got it.
type received struct {
	from string
	to   []string
	data []byte
	user string // the authenticated user, "" without AUTH
	tls  bool   // whether DATA arrived over TLS
}

// authAttempt is one AUTH PLAIN the test server saw.
type authAttempt struct{ user, pass string }

// serverOptions shapes a test SMTP server.
type serverOptions struct {
	user, pass  string      // credentials accepted by AUTH PLAIN
	requireAuth bool        // refuse MAIL FROM before AUTH
	startTLS    *tls.Config // offer STARTTLS with this config
	implicitTLS *tls.Config // serve TLS from the first byte (smtps)
	rejectRcpt  bool        // answer RCPT TO with a 550 that echoes the address
}

// testServer is an in-process SMTP server on 127.0.0.1 that records what it
// receives.
type testServer struct {
	opts     serverOptions
	addr     string
	mu       sync.Mutex
	sessions int
	msgs     []received
	attempts []authAttempt
}

// startServer starts a go-smtp server on 127.0.0.1:0 and stops it when the
// test ends.
func startServer(t *testing.T, opts serverOptions) *testServer {
	t.Helper()
	ts := &testServer{opts: opts}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	if opts.implicitTLS != nil {
		l = tls.NewListener(l, opts.implicitTLS)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ts.mu.Lock()
		ts.sessions++
		ts.mu.Unlock()
		return &testSession{srv: ts, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.TLSConfig = opts.startTLS
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close SMTP server: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("SMTP server: %v", err)
		}
	})
	return ts
}

// port returns the server's port as a string.
func (ts *testServer) port() string {
	_, port, err := net.SplitHostPort(ts.addr)
	if err != nil {
		panic(err)
	}
	return port
}

// received returns a copy of what the server got so far.
func (ts *testServer) received() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

// snapshot returns the number of sessions and auth attempts so far.
func (ts *testServer) snapshot() (sessions int, attempts []authAttempt) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.sessions, append([]authAttempt(nil), ts.attempts...)
}

// testSession is one SMTP session of a testServer.
type testSession struct {
	srv  *testServer
	conn *smtp.Conn
	cur  received
}

// AuthMechanisms offers PLAIN only.
func (s *testSession) AuthMechanisms() []string { return []string{sasl.Plain} }

// Auth checks PLAIN credentials against the server's and records the attempt.
func (s *testSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		s.srv.mu.Lock()
		s.srv.attempts = append(s.srv.attempts, authAttempt{user, pass})
		s.srv.mu.Unlock()
		if user != s.srv.opts.user || pass != s.srv.opts.pass {
			return smtp.ErrAuthFailed
		}
		s.cur.user = user
		return nil
	}), nil
}

// Mail records the envelope sender.
func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.opts.requireAuth && s.cur.user == "" {
		return smtp.ErrAuthRequired
	}
	s.cur.from = from
	return nil
}

// Rcpt records a recipient, or refuses it when told to.
func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.srv.opts.rejectRcpt {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: no such user"}
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

// Data records the message.
func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	state, ok := s.conn.TLSConnectionState()
	msg := s.cur
	msg.data = b
	msg.tls = ok && state.HandshakeComplete
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, msg)
	s.srv.mu.Unlock()
	return nil
}

// Reset forgets the transaction but keeps the authentication.
func (s *testSession) Reset() { s.cur = received{user: s.cur.user} }

// Logout does nothing.
func (s *testSession) Logout() error { return nil }

// testCerts returns a server TLS config with a self-signed certificate for
// 127.0.0.1 and a client config that trusts it.
func testCerts(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fineline test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}
	return server, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// parsedMail is a message read back with net/mail and mime/multipart.
type parsedMail struct {
	header    netmail.Header
	subject   string // decoded
	mediaType string // of the whole message
	parts     []mailPart
}

// mailPart is one decoded MIME part.
type mailPart struct {
	mediaType, charset string
	body               string // transfer-decoded, CRLF turned into LF
}

// parseMail parses raw as an RFC 5322 message with a multipart body, the way
// a mail client would, and fails the test if it is not one.
func parseMail(t *testing.T, raw []byte) parsedMail {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v\n%s", err, raw)
	}
	var p parsedMail
	p.header = msg.Header
	var dec mime.WordDecoder
	if p.subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatalf("decode Subject %q: %v", msg.Header.Get("Subject"), err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	p.mediaType = mediaType
	if !strings.HasPrefix(mediaType, "multipart/") {
		t.Fatalf("Content-Type is %q, want multipart/*\n%s", mediaType, raw)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("next MIME part: %v", err)
		}
		pt, pparams, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("part Content-Type %q: %v", part.Header.Get("Content-Type"), err)
		}
		body, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("read %s part: %v", pt, err)
		}
		p.parts = append(p.parts, mailPart{
			mediaType: pt,
			charset:   pparams["charset"],
			body:      strings.ReplaceAll(string(body), "\r\n", "\n"),
		})
	}
	return p
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes, for logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger returns a debug-level text logger and the buffer it writes to.
func testLogger() (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// sampleMessage is a message with non-ASCII text in every part.
func sampleMessage() Message {
	return Message{
		To:      "Zoé Martin <zoe@example.test>",
		Subject: "Confirmez votre adresse — Démo",
		Text:    "Bonjour Zoé,\n\nConfirmez ici : https://example.test/confirm?token=abc&x=1\nUne ligne = avec égal, et une très longue ligne qui dépasse largement les soixante-seize caractères autorisés par quoted-printable.\n",
		HTML:    "<p>Bonjour Zoé,</p>\n<p><a href=\"https://example.test/confirm?token=abc&amp;x=1\">Confirmer</a></p>",
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://example.test/u/abc>, <mailto:unsub@example.test?subject=unsubscribe>",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}
}

// checkSample checks that p is sampleMessage sent From "Fineline
// <no-reply@localhost>".
func checkSample(t *testing.T, p parsedMail) {
	t.Helper()
	want := sampleMessage()
	from, err := p.header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "no-reply@localhost" || from[0].Name != "Fineline" {
		t.Errorf("From = %v (%v), want Fineline <no-reply@localhost>", from, err)
	}
	to, err := p.header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "zoe@example.test" || to[0].Name != "Zoé Martin" {
		t.Errorf("To = %v (%v), want Zoé Martin <zoe@example.test>", to, err)
	}
	if p.subject != want.Subject {
		t.Errorf("Subject = %q, want %q", p.subject, want.Subject)
	}
	if _, err := p.header.Date(); err != nil {
		t.Errorf("Date %q: %v", p.header.Get("Date"), err)
	}
	if id := p.header.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@localhost>") {
		t.Errorf("Message-ID = %q, want <...@localhost>", id)
	}
	if p.header.Get("Mime-Version") != "1.0" {
		t.Errorf("MIME-Version = %q, want 1.0", p.header.Get("Mime-Version"))
	}
	for name, value := range want.Headers {
		if got := p.header.Get(name); got != value {
			t.Errorf("%s = %q, want %q", name, got, value)
		}
	}
	if p.mediaType != "multipart/alternative" {
		t.Errorf("Content-Type = %q, want multipart/alternative", p.mediaType)
	}
	if len(p.parts) != 2 {
		t.Fatalf("%d parts, want 2 (text/plain, text/html)", len(p.parts))
	}
	for i, w := range []mailPart{
		{mediaType: "text/plain", charset: "utf-8", body: want.Text},
		{mediaType: "text/html", charset: "utf-8", body: want.HTML},
	} {
		got := p.parts[i]
		if got.mediaType != w.mediaType || !strings.EqualFold(got.charset, w.charset) {
			t.Errorf("part %d is %s; charset=%s, want %s; charset=%s", i, got.mediaType, got.charset, w.mediaType, w.charset)
		}
		if got.body != w.body {
			t.Errorf("%s part decodes to\n%q\nwant\n%q", w.mediaType, got.body, w.body)
		}
	}
}

// checkLogClean fails if the log holds the recipient, a body or a secret.
func checkLogClean(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	for _, s := range append([]string{"zoe@example.test", "Zoé", "Bonjour", "confirm?token"}, secrets...) {
		if strings.Contains(logs, s) {
			t.Errorf("log contains %q:\n%s", s, logs)
		}
	}
}
