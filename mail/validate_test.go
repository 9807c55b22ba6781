package mail

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fineline/fineline/apperr"
)

func TestInvalidMessagesAreRefused(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Message)
		want string // in the error
	}{
		{"empty To", func(m *Message) { m.To = "" }, "To is empty"},
		{"To without @", func(m *Message) { m.To = "zoe.example.test" }, "To is not exactly one valid email address"},
		{"two To addresses", func(m *Message) { m.To = "zoe@example.test, max@example.test" }, "To is not exactly one"},
		{"To with injected Bcc", func(m *Message) { m.To = "zoe@example.test\r\nBcc: evil@example.test" }, "To is not exactly one"},
		{"empty Subject", func(m *Message) { m.Subject = " " }, "Subject is empty"},
		{"CRLF in Subject", func(m *Message) { m.Subject = "Hello\r\nBcc: evil@example.test" }, "Subject contains a line break"},
		{"LF in Subject", func(m *Message) { m.Subject = "Hello\nBcc: evil@example.test" }, "Subject contains a line break"},
		{"CR in Subject", func(m *Message) { m.Subject = "Hello\rthere" }, "Subject contains a line break"},
		{"NUL in Subject", func(m *Message) { m.Subject = "Hello\x00" }, "Subject contains control character"},
		{"Subject too long", func(m *Message) { m.Subject = strings.Repeat("a", 999) }, "Subject is longer than"},
		{"empty Text", func(m *Message) { m.Text = "\n" }, "Text (the plain-text body) is empty"},
		{"CRLF in header value", func(m *Message) {
			m.Headers["List-Unsubscribe"] = "<https://example.test/u>\r\nBcc: evil@example.test"
		}, `List-Unsubscribe contains a line break`},
		{"LF in header value", func(m *Message) { m.Headers["X-Campaign"] = "a\nb" }, "X-Campaign contains a line break"},
		{"empty header value", func(m *Message) { m.Headers["X-Campaign"] = "" }, `header "X-Campaign" has an empty value`},
		{"colon in header name", func(m *Message) { m.Headers["X-A: b\r\nBcc"] = "evil@example.test" }, "may only hold letters, digits and '-'"},
		{"space in header name", func(m *Message) { m.Headers["X A"] = "b" }, "may only hold letters"},
		{"underscore in header name", func(m *Message) { m.Headers["X_A"] = "b" }, "may only hold letters"},
		{"leading dash in header name", func(m *Message) { m.Headers["-X"] = "b" }, "may only hold letters"},
		{"non-ASCII header name", func(m *Message) { m.Headers["X-Démo"] = "b" }, "may only hold letters"},
		{"empty header name", func(m *Message) { m.Headers[""] = "b" }, "a header name is empty"},
		{"reserved Bcc", func(m *Message) { m.Headers["bcc"] = "evil@example.test" }, `header "bcc" is set by the mail package`},
		{"reserved From", func(m *Message) { m.Headers["From"] = "ceo@example.test" }, `header "From" is set by the mail package`},
		{"reserved Content-Type", func(m *Message) { m.Headers["content-type"] = "text/plain" }, "is set by the mail package"},
		{"reserved Message-ID", func(m *Message) { m.Headers["Message-ID"] = "<x@y>" }, "is set by the mail package"},
		{"same header twice", func(m *Message) { m.Headers["x-campaign"] = "a"; m.Headers["X-Campaign"] = "b" }, "are the same header"},
	}

	srv := startServer(t, serverOptions{})
	senders := map[string]func(t *testing.T) (Sender, func() int){
		"smtp": func(t *testing.T) (Sender, func() int) {
			s := newSMTP(t, Config{SMTPURL: "smtp://127.0.0.1:" + srv.port() + "?starttls=none"})
			return s, func() int { n, _ := srv.snapshot(); return n }
		},
		"outbox": func(t *testing.T) (Sender, func() int) {
			dir := t.TempDir()
			s, err := New(Config{From: testFrom, OutboxDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			return s, func() int { return len(outboxFiles(t, dir)) }
		},
	}
	for kind, newSender := range senders {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				s, count := newSender(t)
				before := count()
				m := sampleMessage()
				tt.edit(&m)

				err := s.Send(context.Background(), m)
				if err == nil {
					t.Fatal("Send accepted the message")
				}
				if !apperr.Is(err, apperr.Invalid) {
					t.Errorf("error code = %s, want %s (%v)", apperr.CodeOf(err), apperr.Invalid, err)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q does not say %q", err, tt.want)
				}
				if strings.Contains(err.Error(), "example.test") && !strings.Contains(tt.want, "example.test") {
					t.Errorf("error %q repeats an address", err)
				}
				if after := count(); after != before {
					t.Errorf("something was sent or written (%d -> %d)", before, after)
				}
			})
		}
	}
}

func TestValidMessagesAreAccepted(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Message)
	}{
		{"bare address", func(m *Message) { m.To = "zoe@example.test" }},
		{"no extra headers", func(m *Message) { m.Headers = nil }},
		{"tab in Subject", func(m *Message) { m.Subject = "a\tb" }},
		{"lower-case header name", func(m *Message) { m.Headers = map[string]string{"x-campaign-id": "42"} }},
		{"no HTML", func(m *Message) { m.HTML = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleMessage()
			tt.edit(&m)
			if _, err := validate(m); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
	}
}

func TestTextOnlyMessage(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{From: testFrom, OutboxDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	m := sampleMessage()
	m.HTML = ""
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	names := outboxFiles(t, dir)
	if len(names) != 1 {
		t.Fatalf("outbox holds %q, want 1 file", names)
	}
	raw, err := os.ReadFile(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v", err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		t.Fatalf("Content-Type = %q (%v), want text/plain; charset=UTF-8", msg.Header.Get("Content-Type"), err)
	}
	if cte := msg.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding = %q, want quoted-printable", cte)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != m.Text {
		t.Errorf("body decodes to %q, want %q", got, m.Text)
	}
}
