package offers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"time"
)

// Codes derives coupon codes. A code is 12 bytes in Crockford's base32, 20
// characters shown in groups of four: 7 bytes derived from offer, subject and
// period under the merchant's body key, which never leaves Fineline, then a
// 5-byte tag (HMAC of the first 7 under the merchant's check key, which the
// merchant may hold to check codes offline: it tells a code of theirs from a
// made-up one, but cannot derive a shopper's code). Codes are unguessable (a made-up code
// passes the tag check with odds of 1 in 2^40), the same reward always
// gets the same code (so issuing twice cannot hand out two), and a code is
// checked by its tag alone, before any lookup.
type Codes struct{ secret []byte }

// NewCodes returns a code maker keyed by secret (32 bytes derived from the
// master key).
func NewCodes(secret []byte) *Codes { return &Codes{secret: secret} }

const (
	bodyLen = 7
	tagLen  = 5
	// CodeLen is a code's length without separators.
	CodeLen = 20
)

var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// CheckKey is the merchant's check key: with it the merchant checks a code
// offline, with no lookup, as VerifyOffline does. It cannot derive codes.
func (c *Codes) CheckKey(merchantID string) []byte { return c.merchantKey("check", merchantID) }

// VerifyOffline checks a code (canonical, without separators) with only the
// merchant's key: decode the 20 characters (Crockford base32) to 12 bytes;
// the last 5 must equal the first 5 bytes of HMAC-SHA256(key, "tag\x00" ||
// first 7 bytes). It is what a merchant's till can do without Fineline.
func VerifyOffline(key []byte, code string) bool {
	raw, err := crockford.DecodeString(code)
	if err != nil || len(raw) != bodyLen+tagLen || crockford.EncodeToString(raw) != code {
		return false
	}
	return hmac.Equal(raw[bodyLen:], tag(key, raw[:bodyLen]))
}

func (c *Codes) merchantKey(use, merchantID string) []byte {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte("reward code " + use + "\x00" + merchantID))
	return m.Sum(nil)
}

func tag(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("tag\x00"))
	m.Write(body)
	return m.Sum(nil)[:tagLen]
}

// For returns the code of a reward, without separators.
func (c *Codes) For(merchantID, offer, subjectID, period string) string {
	m := hmac.New(sha256.New, c.merchantKey("body", merchantID))
	m.Write([]byte(offer + "\x00" + subjectID + "\x00" + period))
	body := m.Sum(nil)[:bodyLen]
	return crockford.EncodeToString(append(body, tag(c.CheckKey(merchantID), body)...))
}

// Normalize reads a code as a shopper may type it (any case, dashes and
// spaces, O for 0, I and L for 1) and reports whether its tag is the
// merchant's. It returns the code without separators.
func (c *Codes) Normalize(merchantID, code string) (string, bool) {
	if len(code) > 40 {
		return "", false
	}
	code = strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ':
			return -1
		case 'O', 'o':
			return '0'
		case 'I', 'i', 'L', 'l':
			return '1'
		}
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, code)
	if len(code) != CodeLen {
		return "", false
	}
	raw, err := crockford.DecodeString(code)
	// The last character carries 1 bit of data and 4 of padding: only the
	// canonical spelling counts, so one reward has one code.
	if err != nil || len(raw) != bodyLen+tagLen || crockford.EncodeToString(raw) != code {
		return "", false
	}
	if !hmac.Equal(raw[bodyLen:], tag(c.CheckKey(merchantID), raw[:bodyLen])) {
		return "", false
	}
	return code, true
}

// Display groups a code in fours: ABCD-EFGH-JKMN-PQRS-TVWX.
func Display(code string) string {
	var b strings.Builder
	for i, r := range code {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Window is a reward's validity.
type Window struct {
	// Period names the year the reward belongs to ("2027").
	Period   int
	From     time.Time
	Until    time.Time
	issueEnd time.Time
}

// IssueGrace is how long after the trigger day a reward may still be
// issued, for a job that was down on the day (or a shopper who joined
// then); the coupon stays valid from the trigger day for ValidDays.
const IssueGrace = 7 * 24 * time.Hour

// Due returns the birthday window open at now for a subject born on month
// and day and living in loc: the trigger day is the birthday (February 29
// is February 28 in years without it) or the first of the birthday month,
// at local midnight. A window is open for issuing from the trigger until
// IssueGrace later (or the end of validity, if sooner).
func Due(month time.Month, day int, b Birthday, loc *time.Location, now time.Time) (Window, bool) {
	local := now.In(loc)
	for _, y := range []int{local.Year(), local.Year() - 1} {
		d := triggerDay(y, month, day, b)
		from := startOfDay(y, month, d, loc)
		until := startOfDay(y, month, d+b.ValidDays, loc)
		w := Window{Period: y, From: from, Until: until, issueEnd: from.Add(IssueGrace)}
		if until.Before(w.issueEnd) {
			w.issueEnd = until
		}
		if !now.Before(from) && now.Before(w.issueEnd) {
			return w, true
		}
	}
	return Window{}, false
}

func leap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// Next returns the next trigger day, at local midnight, on or after the
// local day of now: when the next birthday reward comes.
func Next(month time.Month, day int, b Birthday, loc *time.Location, now time.Time) time.Time {
	local := now.In(loc)
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	for y := local.Year(); ; y++ {
		if t := startOfDay(y, month, triggerDay(y, month, day, b), loc); !t.Before(today) {
			return t
		}
	}
}

// triggerDay is the day of the month a reward is due in year y.
func triggerDay(y int, month time.Month, day int, b Birthday) int {
	switch {
	case b.On == OnMonthStart:
		return 1
	case month == time.February && day == 29 && !leap(y):
		return 28
	}
	return day
}

// startOfDay is the first instant of a calendar day in loc (d may run past
// the month's end, as time.Date allows). Where clocks jump forward at
// midnight (Santiago, Havana, Beirut...), the day starts at 01:00, not at the
// previous day's 23:00 that time.Date may choose.
func startOfDay(y int, month time.Month, d int, loc *time.Location) time.Time {
	want := time.Date(y, month, d, 12, 0, 0, 0, time.UTC) // the calendar day, normalized
	t := time.Date(want.Year(), want.Month(), want.Day(), 0, 0, 0, 0, loc)
	for t.Day() != want.Day() {
		t = t.Add(time.Hour)
	}
	return t
}
