// Package smtptest is a real SMTP server for tests: it listens on
// 127.0.0.1, accepts plain (no TLS, no AUTH) mail for any recipient unless
// told to refuse one, and records every message it receives so tests can
// read them back. It is for tests only; production code must not import it.
package smtptest

import (
	"errors"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Option changes how a Server started by Start behaves.
type Option func(*config)

type config struct {
	refuse []string // lower-cased recipients answered with a 550
}

// RefuseRecipient makes the server answer RCPT TO addr (compared
// case-insensitively) with "550 no such mailbox", so sends to addr fail.
func RefuseRecipient(addr string) Option {
	return func(c *config) { c.refuse = append(c.refuse, strings.ToLower(addr)) }
}

// message is one accepted message: its envelope recipients (lower-cased)
// and its raw data.
type message struct {
	to   []string
	data string
}

// Server is an in-process SMTP server that records what it receives. It is
// safe for concurrent use.
type Server struct {
	url  string
	cfg  config
	mu   sync.Mutex
	msgs []message
}

// Start starts a Server on 127.0.0.1 at a free port and closes it when the
// test ends, failing the test if it does not stop cleanly.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{}
	for _, o := range opts {
		o(&s.cfg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.url = "smtp://" + l.Addr().String() + "?starttls=none"
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{srv: s}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("close SMTP server: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			tb.Errorf("SMTP server: %v", err)
		}
	})
	return s
}

// URL returns the server's address as a mail.Config SMTPURL:
// "smtp://127.0.0.1:port?starttls=none".
func (s *Server) URL() string { return s.url }

// Messages returns the raw messages (headers and body, as sent in DATA)
// received for the recipient to (compared case-insensitively), oldest first.
func (s *Server) Messages(to string) []string {
	to = strings.ToLower(to)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.msgs {
		if slices.Contains(m.to, to) {
			out = append(out, m.data)
		}
	}
	return out
}

// Count returns how many messages were received for the recipient to.
func (s *Server) Count(to string) int { return len(s.Messages(to)) }

// Total returns how many messages were received in all.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// session is one SMTP connection to a Server.
type session struct {
	srv *Server
	to  []string
}

// Mail accepts any sender.
func (s *session) Mail(string, *smtp.MailOptions) error { return nil }

// Rcpt records a recipient, or refuses it when the server was told to.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	to = strings.ToLower(to)
	if slices.Contains(s.srv.cfg.refuse, to) {
		return &smtp.SMTPError{Code: 550, Message: "no such mailbox"}
	}
	s.to = append(s.to, to)
	return nil
}

// Data records the message for the transaction's recipients.
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	s.srv.msgs = append(s.srv.msgs, message{to: slices.Clone(s.to), data: string(b)})
	return nil
}

// Reset forgets the transaction's recipients.
func (s *session) Reset() { s.to = nil }

// Logout does nothing.
func (s *session) Logout() error { return nil }
