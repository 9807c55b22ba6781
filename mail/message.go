package mail

import (
	"crypto/rand"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
	gomail "github.com/wneessen/go-mail"
)

// Limits on what a Message may carry in its headers.
const (
	maxHeaderName  = 64
	maxHeaderValue = 998 // RFC 5322 line limit; longer values must fold at spaces
	maxSubject     = 998
)

// isReserved reports whether a canonical header name is set by this package
// or changes routing or MIME structure, so Message.Headers may not set it.
func isReserved(canonical string) bool {
	switch canonical {
	case "From", "Sender", "To", "Cc", "Bcc", "Reply-To", "Return-Path",
		"Subject", "Date", "Message-Id", "Mime-Version", "Content-Type",
		"Content-Transfer-Encoding":
		return true
	}
	return false
}

// invalid returns the apperr.Invalid error every validation failure uses.
func invalid(detail, format string, args ...any) error {
	return apperr.New(apperr.Invalid, "mail: "+format, args...).WithDetail(detail)
}

// validate checks m and returns the parsed recipient. Its errors never quote
// the recipient or the bodies, so they are safe to log.
func validate(m Message) (*netmail.Address, error) {
	if strings.TrimSpace(m.To) == "" {
		return nil, invalid("invalid_recipient", "To is empty")
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		// net/mail's errors may quote the input; say what is wrong without it.
		return nil, invalid("invalid_recipient", "To is not exactly one valid email address")
	}
	if strings.TrimSpace(m.Subject) == "" {
		return nil, invalid("invalid_subject", "Subject is empty")
	}
	if err := checkHeaderValue("Subject", m.Subject, maxSubject); err != nil {
		return nil, err
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil, invalid("invalid_body", "Text (the plain-text body) is empty")
	}
	seen := make(map[string]string, len(m.Headers))
	for name, value := range m.Headers {
		if err := checkHeaderName(name); err != nil {
			return nil, err
		}
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		if isReserved(canonical) {
			return nil, invalid("invalid_header", "header %q is set by the mail package and cannot be overridden", name)
		}
		if other, dup := seen[canonical]; dup {
			return nil, invalid("invalid_header", "headers %q and %q are the same header", other, name)
		}
		seen[canonical] = name
		if strings.TrimSpace(value) == "" {
			return nil, invalid("invalid_header", "header %q has an empty value", name)
		}
		if err := checkHeaderValue(name, value, maxHeaderValue); err != nil {
			return nil, err
		}
	}
	return to, nil
}

// checkHeaderName allows letters, digits and '-', starting with a letter or
// digit: every header we have a reason to send, and nothing that could end
// the field name early (':' or white space) or smuggle a line.
func checkHeaderName(name string) error {
	if name == "" {
		return invalid("invalid_header", "a header name is empty")
	}
	if len(name) > maxHeaderName {
		return invalid("invalid_header", "header name %.20q... is longer than %d characters", name, maxHeaderName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letterOrDigit := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !letterOrDigit && (c != '-' || i == 0) {
			return invalid("invalid_header", "header name %q may only hold letters, digits and '-' (not starting with '-')", name)
		}
	}
	return nil
}

// checkHeaderValue refuses line breaks (header injection) and other control
// characters in a header value, and values too long for one line.
func checkHeaderValue(field, value string, limit int) error {
	if strings.ContainsAny(value, "\r\n") {
		return invalid("invalid_header", "%s contains a line break (CR or LF)", field)
	}
	for _, r := range value {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return invalid("invalid_header", "%s contains control character %U", field, r)
		}
	}
	if len(value) > limit {
		return invalid("invalid_header", "%s is longer than %d bytes", field, limit)
	}
	return nil
}

// composer turns a validated Message into a go-mail Msg; the SMTP sender and
// the outbox share it so both produce the same MIME structure.
type composer struct {
	from *netmail.Address
	now  func() time.Time
}

// composed is a message ready to send or write, with what may be said about it.
type composed struct {
	msg       *gomail.Msg
	messageID string // "<...>", safe to log
	rcpt      string // bare recipient address: never log it, redact it from errors
	date      time.Time
}

// compose validates m and builds the message: From, To, a Q-encoded UTF-8
// Subject, Date, a Message-ID on the From domain, the extra headers, and a
// multipart/alternative body (text/plain then text/html, quoted-printable).
// A Message without HTML is sent as text/plain alone.
func (c composer) compose(m Message) (composed, error) {
	to, err := validate(m)
	if err != nil {
		return composed{}, err
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(c.from)
	msg.ToMailAddress(to)
	msg.Subject(m.Subject)
	date := c.now()
	msg.SetDateWithValue(date)
	id := rand.Text() + "@" + domainOf(c.from.Address)
	msg.SetMessageIDWithValue(id)
	for name, value := range m.Headers {
		msg.SetGenHeader(gomail.Header(name), value)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return composed{msg: msg, messageID: "<" + id + ">", rcpt: to.Address, date: date}, nil
}

// domainOf returns the part of addr after its last '@', or "localhost".
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 && i < len(addr)-1 {
		return addr[i+1:]
	}
	return "localhost"
}
