package smtptest_test

import (
	"net/smtp"
	"net/url"
	"strings"
	"testing"

	"github.com/fineline/fineline/internal/smtptest"
)

// send delivers body to the recipients over plain SMTP.
func send(t *testing.T, s *smtptest.Server, body string, to ...string) error {
	t.Helper()
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	return smtp.SendMail(u.Host, nil, "sender@example.com", to, []byte(body))
}

func TestServerRecordsAndRefuses(t *testing.T) {
	s := smtptest.Start(t, smtptest.RefuseRecipient("Bounce@Example.com"))
	if u := s.URL(); !strings.HasPrefix(u, "smtp://127.0.0.1:") || !strings.HasSuffix(u, "?starttls=none") {
		t.Fatalf("URL() = %q", u)
	}
	for _, body := range []string{"Subject: one\r\n\r\nfirst\r\n", "Subject: two\r\n\r\nsecond\r\n"} {
		if err := send(t, s, body, "a@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if err := send(t, s, "Subject: both\r\n\r\nthird\r\n", "A@example.com", "b@example.com"); err != nil {
		t.Fatal(err)
	}
	err := send(t, s, "Subject: no\r\n\r\nrefused\r\n", "bounce@example.com")
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("send to a refused recipient: %v, want a 550", err)
	}

	msgs := s.Messages("a@example.com")
	if len(msgs) != 3 || !strings.Contains(msgs[0], "first") || !strings.Contains(msgs[1], "second") || !strings.Contains(msgs[2], "third") {
		t.Fatalf("messages to a: %q", msgs)
	}
	if n := s.Count("B@EXAMPLE.COM"); n != 1 {
		t.Errorf("Count(b) = %d, want 1", n)
	}
	if n := s.Count("bounce@example.com"); n != 0 {
		t.Errorf("Count(bounce) = %d, want 0", n)
	}
	if n := s.Total(); n != 3 {
		t.Errorf("Total() = %d, want 3", n)
	}
}
