package offers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fineline/fineline/offers"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestDueFollowsTheSubjectsTimeZoneAndLeapDays(t *testing.T) {
	tokyo, la := mustLoad(t, "Asia/Tokyo"), mustLoad(t, "America/Los_Angeles")
	onDay := offers.Birthday{On: offers.OnBirthday, ValidDays: 30}
	monthStart := offers.Birthday{On: offers.OnMonthStart, ValidDays: 30}
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name       string
		month      time.Month
		day        int
		b          offers.Birthday
		loc        *time.Location
		now        string
		due        bool
		period     int
		from       string // local date of the trigger
		validUntil string // local date the coupon stops being valid
	}{
		{"tokyo is already on the birthday", time.March, 5, onDay, tokyo, "2027-03-04T16:00:00Z", true, 2027, "2027-03-05", "2027-04-04"},
		{"los angeles is still the day before", time.March, 5, onDay, la, "2027-03-04T16:00:00Z", false, 0, "", ""},
		{"los angeles reaches the birthday at its midnight", time.March, 5, onDay, la, "2027-03-05T08:00:00Z", true, 2027, "2027-03-05", "2027-04-04"},
		{"utc one second before", time.March, 5, onDay, time.UTC, "2027-03-04T23:59:59Z", false, 0, "", ""},
		{"february 29 falls on february 28 in a common year", time.February, 29, onDay, time.UTC, "2027-02-28T00:00:01Z", true, 2027, "2027-02-28", "2027-03-30"},
		{"february 29 is not due on february 28 of a leap year", time.February, 29, onDay, time.UTC, "2028-02-28T12:00:00Z", false, 0, "", ""},
		{"february 29 is due on february 29 of a leap year", time.February, 29, onDay, time.UTC, "2028-02-29T00:00:01Z", true, 2028, "2028-02-29", "2028-03-30"},
		{"month start issues on the first of the month", time.March, 20, monthStart, time.UTC, "2027-03-01T00:00:00Z", true, 2027, "2027-03-01", "2027-03-31"},
		{"month start is not due the day before", time.March, 20, monthStart, time.UTC, "2027-02-28T23:59:59Z", false, 0, "", ""},
		{"a late run within the grace still issues", time.March, 5, onDay, time.UTC, "2027-03-11T23:00:00Z", true, 2027, "2027-03-05", "2027-04-04"},
		{"past the grace nothing is issued", time.March, 5, onDay, time.UTC, "2027-03-12T00:00:00Z", false, 0, "", ""},
		{"santiago: midnight does not exist on the day clocks jump", time.September, 8, onDay, mustLoad(t, "America/Santiago"), "2024-09-08T04:00:00Z", true, 2024, "2024-09-08", "2024-10-08"},
		{"santiago: not due the evening before", time.September, 8, onDay, mustLoad(t, "America/Santiago"), "2024-09-08T03:30:00Z", false, 0, "", ""},
		{"a december birthday is still due in january of the next year", time.December, 30, onDay, time.UTC, "2028-01-03T10:00:00Z", true, 2027, "2027-12-30", "2028-01-29"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, due := offers.Due(c.month, c.day, c.b, c.loc, at(c.now))
			if due != c.due {
				t.Fatalf("due = %v, want %v", due, c.due)
			}
			if !due {
				return
			}
			if w.Period != c.period {
				t.Errorf("period = %d, want %d", w.Period, c.period)
			}
			if got := w.From.In(c.loc).Format(time.DateOnly); got != c.from || w.From.In(c.loc).Hour() > 1 {
				t.Errorf("from = %s, want the start of %s", w.From.In(c.loc), c.from)
			}
			if got := w.Until.In(c.loc).Format(time.DateOnly); got != c.validUntil {
				t.Errorf("until = %s, want %s", got, c.validUntil)
			}
		})
	}
}

func TestNextIsTheComingTriggerDay(t *testing.T) {
	b := offers.Birthday{On: offers.OnBirthday, ValidDays: 30}
	now := time.Date(2027, 3, 6, 12, 0, 0, 0, time.UTC)
	if got := offers.Next(time.March, 5, b, time.UTC, now).Format(time.DateOnly); got != "2028-03-05" {
		t.Errorf("next after this year's birthday = %s, want 2028-03-05", got)
	}
	if got := offers.Next(time.March, 6, b, time.UTC, now).Format(time.DateOnly); got != "2027-03-06" {
		t.Errorf("next on the birthday = %s, want today", got)
	}
	if got := offers.Next(time.February, 29, b, time.UTC, now).Format(time.DateOnly); got != "2028-02-29" {
		t.Errorf("next leap birthday = %s, want 2028-02-29", got)
	}
}

func TestCodesAreDeterministicUnguessableAndSelfChecking(t *testing.T) {
	c := offers.NewCodes([]byte("0123456789abcdef0123456789abcdef"))
	code := c.For("mer_a", "birthday_treat", "alice", "2027")
	if len(code) != offers.CodeLen {
		t.Fatalf("code %q has %d characters, want %d", code, len(code), offers.CodeLen)
	}
	if again := c.For("mer_a", "birthday_treat", "alice", "2027"); again != code {
		t.Errorf("the same reward got two codes: %s, %s", code, again)
	}
	seen := map[string]bool{code: true}
	for _, other := range []string{c.For("mer_a", "birthday_treat", "bob", "2027"), c.For("mer_a", "birthday_treat", "alice", "2028"),
		c.For("mer_b", "birthday_treat", "alice", "2027"), c.For("mer_a", "other", "alice", "2027")} {
		if seen[other] {
			t.Errorf("two rewards share code %s", other)
		}
		seen[other] = true
	}
	display := offers.Display(code)
	if strings.Count(display, "-") != 4 {
		t.Errorf("display form %q is not five groups of four", display)
	}
	for _, typed := range []string{code, display, strings.ToLower(display), " " + strings.ReplaceAll(display, "-", " ") + " "} {
		if got, ok := c.Normalize("mer_a", typed); !ok || got != code {
			t.Errorf("Normalize(%q) = %q, %v; want %q, true", typed, got, ok, code)
		}
	}
	if _, ok := c.Normalize("mer_b", code); ok {
		t.Error("another merchant's key accepted the code")
	}
	// Change one character: the tag no longer matches.
	alphabet := "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	for i := range code {
		b := []byte(code)
		b[i] = alphabet[(strings.IndexByte(alphabet, b[i])+1)%len(alphabet)]
		if _, ok := c.Normalize("mer_a", string(b)); ok {
			t.Errorf("code with character %d changed still passes", i)
		}
	}
	if _, ok := c.Normalize("mer_a", "ABCD-EFGH-JKMN-PQRS-TVWX"); ok {
		t.Error("a made-up code passes")
	}
	// The merchant's till checks codes with only its key.
	if !offers.VerifyOffline(c.CheckKey("mer_a"), code) || offers.VerifyOffline(c.CheckKey("mer_b"), code) {
		t.Error("offline verification does not tell the merchant's codes")
	}
	if _, ok := c.Normalize("mer_a", strings.Repeat("A", 100)); ok {
		t.Error("an overlong code passes")
	}
}
