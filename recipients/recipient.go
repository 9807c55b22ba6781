// Package recipients keeps the recipients a merchant declares: the
// processors and partners that receive shoppers' data, and for which
// purposes. A shopper who asks what happens to their data is owed these
// recipients by name (GDPR Art. 15(1)(c)), purpose by purpose.
package recipients

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Role is what a recipient does with the data it receives.
type Role string

// Roles.
const (
	// RoleProcessor processes the data on the merchant's behalf (a mailing
	// service, a host): GDPR Art. 28.
	RoleProcessor Role = "processor"
	// RolePartner receives the data for its own use (a partner whose offers
	// the shopper asked for).
	RolePartner Role = "partner"
)

// Valid reports whether r is a role.
func (r Role) Valid() bool { return r == RoleProcessor || r == RolePartner }

// Limits of a merchant's list.
const (
	MaxRecipients = 100
	MaxNameLength = 100
)

// CodeInvalidRecipient is the error detail of a recipient that cannot be
// stored: its name, role or country, a name used twice, or too many.
const CodeInvalidRecipient = "invalid_recipient"

// Recipient is one processor or partner and the purposes it receives data for.
type Recipient struct {
	// Name is the recipient's name as a shopper is shown it.
	Name string
	Role Role
	// Purposes are the keys of the merchant's purposes it receives data
	// for: at least one, sorted, each once.
	Purposes []string
	// Country is where it is established, ISO 3166-1 alpha-2 in upper
	// case; "" when not given.
	Country string
}

// List is a merchant's recipients, replaced whole at UpdatedAt. A merchant
// that never declared any has no recipients and a zero UpdatedAt.
type List struct {
	MerchantID string
	Recipients []Recipient
	UpdatedAt  time.Time
}

// Store persists each merchant's list.
type Store interface {
	// PutRecipients replaces the merchant's list with l.
	PutRecipients(ctx context.Context, l List) error
	// Recipients returns the merchant's list; a merchant that never
	// declared any gets an empty List, not NotFound.
	Recipients(ctx context.Context, merchantID string) (List, error)
}

// Service declares recipients and answers who receives data for a purpose.
type Service struct {
	Store    Store
	Purposes *consent.Purposes
	Now      func() time.Time
}

// Put validates rs and replaces the merchant's list with it; nothing is
// written unless every recipient is valid and names only purposes the
// merchant has. It returns the list as stored: names trimmed, countries in
// upper case, purposes sorted without duplicates. An empty rs clears the list.
func (s *Service) Put(ctx context.Context, merchantID string, rs []Recipient) (List, error) {
	clean, err := Normalize(rs)
	if err != nil {
		return List{}, err
	}
	if err := s.checkPurposes(ctx, merchantID, clean); err != nil {
		return List{}, err
	}
	l := List{MerchantID: merchantID, Recipients: clean, UpdatedAt: s.Now().UTC().Truncate(time.Millisecond)}
	if err := s.Store.PutRecipients(ctx, l); err != nil {
		return List{}, err
	}
	return l, nil
}

// Get returns the merchant's list.
func (s *Service) Get(ctx context.Context, merchantID string) (List, error) {
	l, err := s.Store.Recipients(ctx, merchantID)
	if err != nil {
		return List{}, err
	}
	if l.Recipients == nil {
		l.Recipients = []Recipient{}
	}
	return l, nil
}

// For returns the merchant's recipients that receive data for purpose, in
// the list's order.
func (s *Service) For(ctx context.Context, merchantID, purpose string) ([]Recipient, error) {
	l, err := s.Get(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	out := []Recipient{}
	for _, r := range l.Recipients {
		if _, ok := slices.BinarySearch(r.Purposes, purpose); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// checkPurposes makes sure every purpose named is one of the merchant's.
func (s *Service) checkPurposes(ctx context.Context, merchantID string, rs []Recipient) error {
	seen := make(map[string]bool)
	for _, r := range rs {
		for _, p := range r.Purposes {
			if seen[p] {
				continue
			}
			seen[p] = true
			if _, err := s.Purposes.Get(ctx, merchantID, p); err != nil {
				if apperr.Is(err, apperr.NotFound) {
					return apperr.New(apperr.Invalid, "unknown purpose %q", p).WithDetail(consent.CodeUnknownPurpose)
				}
				return err
			}
		}
	}
	return nil
}

// Normalize checks a list on its own (whether its purposes exist is the
// Service's to check) and returns it as it is stored: names trimmed,
// countries in upper case, each recipient's purposes sorted without
// duplicates. rs is not changed.
func Normalize(rs []Recipient) ([]Recipient, error) {
	if len(rs) > MaxRecipients {
		return nil, invalid("at most %d recipients, got %d", MaxRecipients, len(rs))
	}
	out := make([]Recipient, 0, len(rs))
	for i, r := range rs {
		r.Name = strings.TrimSpace(r.Name)
		if n := utf8.RuneCountInString(r.Name); n == 0 || n > MaxNameLength {
			return nil, invalid("recipients[%d].name must be 1-%d characters", i, MaxNameLength)
		}
		if !plainName(r.Name) {
			return nil, invalid("recipients[%d].name must be plain text, without control characters", i)
		}
		if j := slices.IndexFunc(out, func(o Recipient) bool { return strings.EqualFold(o.Name, r.Name) }); j >= 0 {
			return nil, invalid("recipients[%d] and recipients[%d] are both named %q: each recipient once", j, i, r.Name)
		}
		if !r.Role.Valid() {
			return nil, invalid("recipients[%d].role must be processor or partner", i)
		}
		if len(r.Purposes) == 0 {
			return nil, invalid("recipients[%d].purposes must name at least one purpose", i)
		}
		r.Purposes = slices.Compact(slices.Sorted(slices.Values(r.Purposes)))
		if r.Country != "" {
			c, ok := country(r.Country)
			if !ok {
				return nil, invalid("recipients[%d].country must be an ISO 3166-1 alpha-2 country code such as IE", i)
			}
			r.Country = c
		}
		out = append(out, r)
	}
	return out, nil
}

func invalid(format string, args ...any) error {
	return apperr.New(apperr.Invalid, format, args...).WithDetail(CodeInvalidRecipient)
}

// plainName reports whether a name is valid UTF-8 with no control
// characters and no invisible direction overrides that could make it read
// as another name.
func plainName(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
	})
}

// countries are the ISO 3166-1 alpha-2 codes officially assigned.
const countries = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ " +
	"EC EE EG EH ER ES ET " +
	"FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT " +
	"JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ " +
	"LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ " +
	"OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA " +
	"RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU " +
	"WF WS " +
	"YE YT " +
	"ZA ZM ZW"

// ValidCountry reports whether c is an assigned ISO 3166-1 alpha-2 code in
// upper case ("IE"; not "ie", nor reserved codes such as "EU", "UK" or "XK").
func ValidCountry(c string) bool {
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return false
	}
	for i := 0; i < len(countries); i += 3 {
		if countries[i:i+2] == c {
			return true
		}
	}
	return false
}

// country upper-cases a code given in either case and checks it. Only
// ASCII letters are upper-cased: "ıe" does not become "IE".
func country(c string) (string, bool) {
	up := []byte(c)
	for i, b := range up {
		if 'a' <= b && b <= 'z' {
			up[i] = b - 'a' + 'A'
		}
	}
	return string(up), ValidCountry(string(up))
}
