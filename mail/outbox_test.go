package mail

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// outboxName is what an outbox file is called: UTC time to the nanosecond,
// a random suffix, .eml.
var outboxName = regexp.MustCompile(`^\d{8}T\d{6}\.\d{9}Z-[a-z2-7]{12}\.eml$`)

// outboxFiles lists the outbox, sorted by name.
func outboxFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func TestOutboxWritesParsableEML(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	logger, logs := testLogger()
	s, err := New(Config{From: testFrom, OutboxDir: dir, Logger: logger})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("New did not create the outbox: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("outbox mode = %o, want 700", perm)
	}

	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	names := outboxFiles(t, dir)
	if len(names) != 1 || !outboxName.MatchString(names[0]) {
		t.Fatalf("outbox holds %q, want one file named like %s", names, outboxName)
	}
	path := filepath.Join(dir, names[0])
	info, err = os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %o, want 600", perm)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkSample(t, parseMail(t, raw))

	if !strings.Contains(logs.String(), "mail written to outbox") || !strings.Contains(logs.String(), path) {
		t.Errorf("log lacks \"mail written to outbox\" with %s:\n%s", path, logs)
	}
	checkLogClean(t, logs.String())
}

func TestOutboxMatchesSMTP(t *testing.T) {
	// The same Message must have the same MIME structure on both paths.
	srv := startServer(t, serverOptions{})
	viaSMTP := newSMTP(t, Config{SMTPURL: "smtp://127.0.0.1:" + srv.port() + "?starttls=none"})
	dir := t.TempDir()
	viaOutbox, err := New(Config{From: testFrom, OutboxDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Sender{viaSMTP, viaOutbox} {
		if err := s.Send(context.Background(), sampleMessage()); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	got := srv.received()
	names := outboxFiles(t, dir)
	if len(got) != 1 || len(names) != 1 {
		t.Fatalf("got %d SMTP messages and %d files, want 1 and 1", len(got), len(names))
	}
	raw, err := os.ReadFile(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	a, b := parseMail(t, got[0].data), parseMail(t, raw)
	if a.mediaType != b.mediaType || !slices.Equal(a.parts, b.parts) {
		t.Errorf("SMTP message %s %+v differs from outbox file %s %+v", a.mediaType, a.parts, b.mediaType, b.parts)
	}
	for _, h := range []string{"From", "To", "Subject", "Mime-Version", "List-Unsubscribe"} {
		if a.header.Get(h) != b.header.Get(h) {
			t.Errorf("%s: SMTP %q, outbox %q", h, a.header.Get(h), b.header.Get(h))
		}
	}
}

func TestOutboxFilesNeverCollideAndSortByTime(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 22, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	times := []time.Time{t0, t0, t0.Add(time.Nanosecond)} // two at the same instant
	now := func() time.Time {
		t := times[0]
		times = times[1:]
		return t
	}
	s, err := New(Config{From: testFrom, OutboxDir: dir, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m := sampleMessage()
		m.Subject = "message " + string(rune('A'+i))
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	names := outboxFiles(t, dir)
	if len(names) != 3 {
		t.Fatalf("outbox holds %q, want 3 files", names)
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "20261122T083000.00000000") {
			t.Errorf("file %s is not named by the UTC send time 20261122T083000...", n)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, names[2]))
	if err != nil {
		t.Fatal(err)
	}
	if p := parseMail(t, raw); p.subject != "message C" {
		t.Errorf("last file by name holds %q, want the last message sent", p.subject)
	}
}

func TestOutboxHonoursCancelledContext(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{From: testFrom, OutboxDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Send(ctx, sampleMessage()); err == nil {
		t.Error("Send with a cancelled ctx succeeded")
	}
	if names := outboxFiles(t, dir); len(names) != 0 {
		t.Errorf("outbox holds %q, want nothing", names)
	}
}
