// Package mail sends Fineline's outgoing email: over SMTP when a server is
// configured, or into an outbox directory of .eml files when it is not (for
// development and demos). Both paths build the same MIME message with
// github.com/wneessen/go-mail: multipart/alternative with a plain-text and an
// HTML part, a UTF-8 subject, Date, Message-ID and the caller's extra headers.
//
// Nothing here logs message bodies, recipient addresses or credentials.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds one Send (dial, TLS, AUTH and the whole SMTP
// conversation) when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Message is one email: a plain-text part and an HTML part.
type Message struct {
	To      string            // one address
	Subject string            // UTF-8
	Text    string            // plain-text body
	HTML    string            // HTML body (already escaped/rendered by the caller)
	Headers map[string]string // extra headers, e.g. "List-Unsubscribe"
}

// Sender sends messages.
type Sender interface {
	// Send validates m and delivers it. An invalid message is refused with an
	// apperr.Invalid error before anything is sent or written; a server that
	// cannot be reached or refuses the message gives apperr.Unavailable; a
	// failure to write the outbox gives apperr.Internal.
	Send(ctx context.Context, m Message) error
}

// Config chooses how mail leaves.
type Config struct {
	SMTPURL   string       // e.g. smtp://user:pass@host:587 ; empty = write to OutboxDir
	From      string       // e.g. "Fineline <no-reply@localhost>"
	OutboxDir string       // where .eml files go when SMTPURL is empty
	Logger    *slog.Logger // nil discards logs

	// Timeout bounds one Send over SMTP; zero means DefaultTimeout.
	Timeout time.Duration
	// TLSConfig, when set, is used for STARTTLS and smtps:// (for example to
	// trust a private CA). ServerName defaults to the URL's host. Nil uses the
	// system roots and TLS 1.2 or later.
	TLSConfig *tls.Config
	// Now is the clock used for the Date header and outbox file names; nil
	// means time.Now.
	Now func() time.Time
}

// StartTLS is how a smtp:// connection upgrades to TLS.
type StartTLS string

// STARTTLS policies, chosen with ?starttls= on a smtp:// URL.
const (
	StartTLSNone          StartTLS = "none"          // never upgrade (local test servers only)
	StartTLSOpportunistic StartTLS = "opportunistic" // upgrade when the server offers it
	StartTLSMandatory     StartTLS = "mandatory"     // refuse a server that does not offer it
)

// smtpTarget is a parsed and validated SMTPURL.
type smtpTarget struct {
	host        string
	port        int
	implicitTLS bool     // smtps://
	startTLS    StartTLS // smtp:// only
	user, pass  string
	hasAuth     bool
}

// New validates cfg and returns the Sender it describes: SMTP when SMTPURL is
// set, otherwise the outbox in OutboxDir (created 0700 if missing).
func New(cfg Config) (Sender, error) {
	if strings.TrimSpace(cfg.From) == "" {
		return nil, errors.New("mail: From is required")
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: From %q is not a valid address: %w", cfg.From, err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("mail: Timeout must not be negative, got %s", cfg.Timeout)
	}
	c := composer{from: from, now: cfg.Now}
	if c.now == nil {
		c.now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	if cfg.SMTPURL == "" {
		if cfg.OutboxDir == "" {
			return nil, errors.New("mail: set SMTPURL to send over SMTP or OutboxDir to write .eml files")
		}
		if err := os.MkdirAll(cfg.OutboxDir, 0o700); err != nil {
			return nil, fmt.Errorf("mail: create outbox: %w", err)
		}
		return &outbox{dir: cfg.OutboxDir, compose: c, log: logger}, nil
	}

	target, err := parseSMTPURL(cfg.SMTPURL)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	var tlsConfig *tls.Config
	if cfg.TLSConfig != nil {
		tlsConfig = cfg.TLSConfig.Clone()
	} else {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = target.host
	}
	s := &smtpSender{
		target:    target,
		tlsConfig: tlsConfig,
		timeout:   timeout,
		compose:   c,
		log:       logger,
	}
	// Build a client once so option errors surface at start, not at first
	// send; a client holds no connection until it dials.
	dial, stop := s.dialer(context.Background())
	defer stop()
	if _, err := s.newClient(dial); err != nil {
		return nil, fmt.Errorf("mail: SMTP client: %w", err)
	}
	return s, nil
}

// parseSMTPURL validates an smtp:// or smtps:// URL. Its errors never repeat
// the URL, which may carry a password.
func parseSMTPURL(raw string) (smtpTarget, error) {
	var t smtpTarget
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return t, fmt.Errorf("mail: SMTPURL is not a valid URL: %w", err)
	}
	switch u.Scheme {
	case "smtp":
		t.port = 587
	case "smtps":
		t.port = 465
		t.implicitTLS = true
	case "":
		return t, errors.New(`mail: SMTPURL needs a scheme: "smtp://" (STARTTLS) or "smtps://" (implicit TLS)`)
	default:
		return t, fmt.Errorf(`mail: SMTPURL scheme %q is not supported: use "smtp://" (STARTTLS) or "smtps://" (implicit TLS)`, u.Scheme)
	}
	if u.Opaque != "" {
		return t, fmt.Errorf("mail: SMTPURL must look like %s://host:port", u.Scheme)
	}
	t.host = u.Hostname()
	if t.host == "" {
		return t, errors.New("mail: SMTPURL has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return t, fmt.Errorf("mail: SMTPURL port %q is not a number between 1 and 65535", p)
		}
		t.port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return t, errors.New("mail: SMTPURL has an empty port after ':'")
	}
	if u.Path != "" && u.Path != "/" {
		return t, errors.New("mail: SMTPURL must not have a path")
	}
	if u.Fragment != "" {
		return t, errors.New("mail: SMTPURL must not have a fragment")
	}

	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return t, fmt.Errorf("mail: SMTPURL query: %w", err)
	}
	for key := range query {
		if key != "starttls" {
			return t, fmt.Errorf("mail: SMTPURL query parameter %q is not supported (only starttls)", key)
		}
	}
	local := isLocalHost(t.host)
	if values, ok := query["starttls"]; ok {
		if t.implicitTLS {
			return t, errors.New("mail: starttls applies to smtp:// only; smtps:// always uses TLS")
		}
		if len(values) != 1 {
			return t, errors.New("mail: SMTPURL starttls is given more than once")
		}
		switch v := StartTLS(strings.ToLower(values[0])); v {
		case StartTLSNone, StartTLSOpportunistic, StartTLSMandatory:
			t.startTLS = v
		default:
			return t, fmt.Errorf("mail: SMTPURL starttls=%q is not one of none, opportunistic, mandatory", values[0])
		}
	} else if !t.implicitTLS {
		t.startTLS = StartTLSMandatory
		if local {
			t.startTLS = StartTLSOpportunistic
		}
	}

	if u.User != nil {
		t.user = u.User.Username() // url.Parse has already percent-decoded both
		t.pass, _ = u.User.Password()
		if t.user == "" {
			return t, errors.New("mail: SMTPURL has a password but no user name")
		}
		t.hasAuth = true
		if t.startTLS == StartTLSNone && !local {
			return t, errors.New("mail: SMTPURL would send credentials unencrypted to a remote host; use starttls=mandatory or smtps://")
		}
	}
	return t, nil
}

// isLocalHost reports whether host is this machine, where an unencrypted
// connection does not leave it.
func isLocalHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
