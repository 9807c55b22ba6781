package mail

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
	gomail "github.com/wneessen/go-mail"
)

// smtpSender sends each message on its own SMTP connection. It keeps no
// connection or go-mail client between sends, so it is safe for concurrent
// use.
type smtpSender struct {
	target    smtpTarget
	tlsConfig *tls.Config
	timeout   time.Duration
	compose   composer
	log       *slog.Logger
}

// Send validates m, then dials, upgrades to TLS as configured, authenticates
// when the URL has credentials, and delivers m. It gives up when ctx ends or
// the sender's timeout passes, whichever comes first, even mid-conversation.
func (s *smtpSender) Send(ctx context.Context, m Message) error {
	c, err := s.compose.compose(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	dial, stop := s.dialer(ctx)
	defer stop()
	client, err := s.newClient(dial)
	if err != nil {
		return apperr.Wrap(err, "mail: SMTP client")
	}

	start := time.Now()
	server := net.JoinHostPort(s.target.host, strconv.Itoa(s.target.port))
	sendErr := client.DialAndSendWithContext(ctx, c.msg)
	if sendErr != nil && c.msg.IsDelivered() {
		// The server accepted DATA; only RSET or QUIT failed. Reporting an
		// error would invite a retry and a duplicate email.
		s.log.WarnContext(ctx, "mail delivered but the SMTP session did not end cleanly",
			"server", server, "message_id", c.messageID, "error", redact(sendErr, c.rcpt))
		sendErr = nil
	}
	if sendErr != nil {
		cause := redact(sendErr, c.rcpt)
		if ctxErr := ctx.Err(); ctxErr != nil {
			cause = fmt.Errorf("%w: %w", ctxErr, cause)
		}
		return &apperr.Error{Code: apperr.Unavailable, Message: "mail: sending over SMTP failed", Err: cause}
	}
	s.log.InfoContext(ctx, "mail sent",
		"server", server, "message_id", c.messageID, "duration", time.Since(start))
	return nil
}

// newClient returns a go-mail client for one send. It is built per send
// because go-mail's client changes its own auth settings while it
// authenticates.
func (s *smtpSender) newClient(dial gomail.DialContextFunc) (*gomail.Client, error) {
	opts := []gomail.Option{
		gomail.WithPort(s.target.port),
		gomail.WithTimeout(s.timeout),
		gomail.WithTLSConfig(s.tlsConfig),
		gomail.WithDialContextFunc(dial),
	}
	if s.target.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		policy := gomail.TLSMandatory
		switch s.target.startTLS {
		case StartTLSNone:
			policy = gomail.NoTLS
		case StartTLSOpportunistic:
			policy = gomail.TLSOpportunistic
		}
		opts = append(opts, gomail.WithTLSPolicy(policy))
	}
	if s.target.hasAuth {
		// PLAIN, else LOGIN; go-mail refuses both on an unencrypted
		// connection to anything but localhost.
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(s.target.user),
			gomail.WithPassword(s.target.pass))
	}
	return gomail.NewClient(s.target.host, opts...)
}

// dialer returns the dial function for one send: it dials TCP (TLS for
// smtps://) and closes the connection when sendCtx ends, so a cancelled or
// expired ctx also stops a server that stalls after the dial (go-mail's own
// context only covers the dial). stop releases the watch.
func (s *smtpSender) dialer(sendCtx context.Context) (dial gomail.DialContextFunc, stop func()) {
	var stops []func() bool
	dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		netDialer := &net.Dialer{}
		var conn net.Conn
		var err error
		if s.target.implicitTLS {
			tlsDialer := &tls.Dialer{NetDialer: netDialer, Config: s.tlsConfig}
			conn, err = tlsDialer.DialContext(ctx, network, addr)
		} else {
			conn, err = netDialer.DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		stops = append(stops, context.AfterFunc(sendCtx, func() {
			if err := conn.Close(); err != nil {
				s.log.Debug("closing the SMTP connection after ctx ended", "error", err)
			}
		}))
		return conn, nil
	}
	stop = func() {
		for _, f := range stops {
			f()
		}
	}
	return dial, stop
}

// redactedError hides the recipient address in an SMTP error's text (go-mail
// lists affected recipients, servers often echo them) while keeping the
// original for errors.Is and errors.As.
type redactedError struct {
	err  error
	text string
}

// Error returns the redacted text.
func (e *redactedError) Error() string { return e.text }

// Unwrap returns the original error.
func (e *redactedError) Unwrap() error { return e.err }

// redact wraps err so its text does not contain rcpt (case-insensitively).
func redact(err error, rcpt string) error {
	text := err.Error()
	if rcpt != "" {
		text = replaceFold(text, rcpt, "[recipient]")
	}
	return &redactedError{err: err, text: text}
}

// replaceFold replaces every ASCII-case-insensitive occurrence of old in s.
func replaceFold(s, old, replacement string) string {
	lower, lowerOld := strings.ToLower(s), strings.ToLower(old)
	if len(lower) != len(s) || len(lowerOld) != len(old) {
		// Lower-casing changed byte offsets; fall back to an exact match.
		return strings.ReplaceAll(s, old, replacement)
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, lowerOld)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(replacement)
		s, lower = s[i+len(old):], lower[i+len(old):]
	}
}
