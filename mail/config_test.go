package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"no From", Config{OutboxDir: "x"}, "From is required"},
		{"bad From", Config{From: "Fineline no-reply", OutboxDir: "x"}, "From \"Fineline no-reply\" is not a valid address"},
		{"From with CRLF", Config{From: "a@b.test\r\nBcc: c@d.test", OutboxDir: "x"}, "is not a valid address"},
		{"nowhere to send", Config{From: testFrom}, "set SMTPURL to send over SMTP or OutboxDir"},
		{"negative Timeout", Config{From: testFrom, OutboxDir: "x", Timeout: -time.Second}, "Timeout must not be negative"},
		{"unknown scheme", Config{From: testFrom, SMTPURL: "http://mail.example.test"}, `scheme "http" is not supported`},
		{"no scheme", Config{From: testFrom, SMTPURL: "//mail.example.test:587"}, "needs a scheme"},
		{"host:port without scheme", Config{From: testFrom, SMTPURL: "mail.example.test:587"}, "is not supported"},
		{"opaque", Config{From: testFrom, SMTPURL: "smtp:mail.example.test"}, "must look like smtp://host:port"},
		{"missing host", Config{From: testFrom, SMTPURL: "smtp://"}, "has no host"},
		{"missing host with port", Config{From: testFrom, SMTPURL: "smtp://:587"}, "has no host"},
		{"port out of range", Config{From: testFrom, SMTPURL: "smtp://mail.example.test:99999"}, `port "99999" is not a number between 1 and 65535`},
		{"port zero", Config{From: testFrom, SMTPURL: "smtps://mail.example.test:0"}, `port "0"`},
		{"port not a number", Config{From: testFrom, SMTPURL: "smtp://user:hunter2@mail.example.test:smtp"}, "invalid port"},
		{"empty port", Config{From: testFrom, SMTPURL: "smtp://mail.example.test:"}, "empty port"},
		{"path", Config{From: testFrom, SMTPURL: "smtp://mail.example.test/relay"}, "must not have a path"},
		{"bad starttls", Config{From: testFrom, SMTPURL: "smtp://mail.example.test?starttls=maybe"}, `starttls="maybe" is not one of none, opportunistic, mandatory`},
		{"starttls twice", Config{From: testFrom, SMTPURL: "smtp://mail.example.test?starttls=none&starttls=mandatory"}, "more than once"},
		{"starttls on smtps", Config{From: testFrom, SMTPURL: "smtps://mail.example.test?starttls=none"}, "starttls applies to smtp:// only"},
		{"unknown parameter", Config{From: testFrom, SMTPURL: "smtp://mail.example.test?tls=off"}, `query parameter "tls" is not supported`},
		{"password without user", Config{From: testFrom, SMTPURL: "smtp://:hunter2@mail.example.test"}, "password but no user name"},
		{"credentials in clear to a remote host", Config{From: testFrom, SMTPURL: "smtp://user:hunter2@mail.example.test?starttls=none"}, "unencrypted to a remote host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if err == nil {
				t.Fatalf("New accepted the config and returned %T", s)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestParseSMTPURL(t *testing.T) {
	tests := []struct {
		raw  string
		want smtpTarget
	}{
		{"smtp://mail.example.test", smtpTarget{host: "mail.example.test", port: 587, startTLS: StartTLSMandatory}},
		{"SMTP://mail.example.test:25/", smtpTarget{host: "mail.example.test", port: 25, startTLS: StartTLSMandatory}},
		{"smtps://mail.example.test", smtpTarget{host: "mail.example.test", port: 465, implicitTLS: true}},
		{"smtp://localhost", smtpTarget{host: "localhost", port: 587, startTLS: StartTLSOpportunistic}},
		{"smtp://127.0.0.1:1025", smtpTarget{host: "127.0.0.1", port: 1025, startTLS: StartTLSOpportunistic}},
		{"smtp://[::1]:1025", smtpTarget{host: "::1", port: 1025, startTLS: StartTLSOpportunistic}},
		{"smtp://localhost?starttls=mandatory", smtpTarget{host: "localhost", port: 587, startTLS: StartTLSMandatory}},
		{"smtp://mail.example.test?starttls=Opportunistic", smtpTarget{host: "mail.example.test", port: 587, startTLS: StartTLSOpportunistic}},
		{"smtp://127.0.0.1?starttls=none", smtpTarget{host: "127.0.0.1", port: 587, startTLS: StartTLSNone}},
		{"smtp://user:pass@mail.example.test", smtpTarget{host: "mail.example.test", port: 587, startTLS: StartTLSMandatory, user: "user", pass: "pass", hasAuth: true}},
		{"smtps://me%40example.test:p%40ss%20w%2Frd%3A%C3%A9@mail.example.test", smtpTarget{host: "mail.example.test", port: 465, implicitTLS: true, user: "me@example.test", pass: "p@ss w/rd:é", hasAuth: true}},
		{"smtp://relay-user@mail.example.test", smtpTarget{host: "mail.example.test", port: 587, startTLS: StartTLSMandatory, user: "relay-user", hasAuth: true}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := parseSMTPURL(tt.raw)
			if err != nil {
				t.Fatalf("parseSMTPURL: %v", err)
			}
			if got != tt.want {
				t.Errorf("parseSMTPURL = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNewCreatesOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "outbox")
	if _, err := New(Config{From: testFrom, OutboxDir: dir}); err != nil {
		t.Fatalf("New: %v", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("outbox not created: %v", err)
	}
	if !info.IsDir() || info.Mode().Perm() != 0o700 {
		t.Errorf("outbox is %v, want a 0700 directory", info.Mode())
	}
}

func TestNewRefusesUnusableOutbox(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{From: testFrom, OutboxDir: filepath.Join(file, "outbox")}); err == nil || !strings.Contains(err.Error(), "create outbox") {
		t.Errorf("New with an outbox under a file = %v, want a create outbox error", err)
	}
}
