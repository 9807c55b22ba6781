// Package offers is the value exchange: an offer asks for fields for a
// purpose and gives a reward back, with the notice of financial incentive
// that the CCPA regulations (§7016) require. Accepting grants the purpose
// and stores the fields in one step. Birthday offers issue a coupon each
// year in the shopper's birthday window, while the purpose stays granted.
package offers

import (
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
)

// Notice is the notice of financial incentive (CCPA regulations §7016): what
// the offer is, its material terms, how to opt in, the right to withdraw
// and how, and a good-faith estimate of the value of the data with how it
// was calculated.
type Notice struct {
	Summary         string `json:"summary"`
	MaterialTerms   string `json:"material_terms"`
	HowToOptIn      string `json:"how_to_opt_in"`
	RightToWithdraw string `json:"right_to_withdraw"`
	ValueEstimate   string `json:"value_estimate"`
	ValueMethod     string `json:"value_method"`
}

// Text is one locale's wording of an offer.
type Text struct {
	// Title names the offer ("Birthday treat").
	Title string `json:"title"`
	// Reward says what the shopper gets ("15% off in your birthday month").
	Reward string `json:"reward"`
	Notice Notice `json:"notice"`
}

// Trigger says when in the year a birthday reward is issued.
type Trigger string

// Triggers.
const (
	// OnBirthday issues on the birthday itself (February 29 birthdays on
	// February 28 in other years).
	OnBirthday Trigger = "birthday"
	// OnMonthStart issues on the first day of the birthday month.
	OnMonthStart Trigger = "month_start"
)

// Birthday makes an offer issue a coupon once a year.
type Birthday struct {
	// Field is the date field holding the birthday; one of the offer's fields.
	Field string
	On    Trigger
	// ValidDays is how long a coupon is valid from the trigger day.
	ValidDays int
}

// Offer is a merchant's offer: fields for a purpose, for a reward.
type Offer struct {
	MerchantID    string
	Key           string
	Purpose       string
	Fields        []string
	Texts         map[string]Text
	DefaultLocale string
	// Birthday, when set, issues a yearly coupon.
	Birthday  *Birthday
	CreatedAt time.Time
}

// TextFor returns the wording in locale, falling back to the default locale.
func (o Offer) TextFor(locale string) Text {
	if t, ok := o.Texts[locale]; ok {
		return t
	}
	return o.Texts[o.DefaultLocale]
}

func checkKey(k string) error {
	if !consent.ValidKey(k) {
		return apperr.New(apperr.Invalid, "offer key must be 2-64 characters of lower-case letters, digits and underscores, starting with a letter").WithDetail("invalid_offer")
	}
	return nil
}

func checkText(l, name, v string, min, max int) error {
	if n := utf8.RuneCountInString(strings.TrimSpace(v)); n < min || n > max {
		return apperr.New(apperr.Invalid, "texts.%s.%s must be %d-%d characters", l, name, min, max)
	}
	if !fields.PlainText(v) {
		return apperr.New(apperr.Invalid, "texts.%s.%s must be plain text, without control characters or direction overrides", l, name)
	}
	return nil
}

// Validate checks an offer on its own; the Service checks it against the
// merchant's purposes and fields.
func (o *Offer) Validate() error {
	if err := checkKey(o.Key); err != nil {
		return err
	}
	if !consent.ValidPurposeKey(o.Purpose) {
		return apperr.New(apperr.Invalid, "purpose must be a purpose key").WithDetail(consent.CodeInvalidPurpose)
	}
	if len(o.Fields) == 0 || len(o.Fields) > 5 {
		return apperr.New(apperr.Invalid, "an offer asks for 1-5 fields")
	}
	for i, f := range o.Fields {
		if !fields.ValidKey(f) || slices.Contains(o.Fields[:i], f) {
			return apperr.New(apperr.Invalid, "fields must be distinct field keys").WithDetail(fields.CodeInvalidFieldKey)
		}
	}
	if err := consent.CheckLocales(&o.DefaultLocale, slices.Collect(maps.Keys(o.Texts))); err != nil {
		return err
	}
	for l, t := range o.Texts {
		n := t.Notice
		for _, c := range []struct {
			name, v  string
			min, max int
		}{
			{"title", t.Title, 1, 80}, {"reward", t.Reward, 5, 200},
			{"notice.summary", n.Summary, 10, 1000}, {"notice.material_terms", n.MaterialTerms, 10, 2000},
			{"notice.how_to_opt_in", n.HowToOptIn, 10, 1000}, {"notice.right_to_withdraw", n.RightToWithdraw, 10, 1000},
			{"notice.value_estimate", n.ValueEstimate, 2, 500}, {"notice.value_method", n.ValueMethod, 10, 1000},
		} {
			if err := checkText(l, c.name, c.v, c.min, c.max); err != nil {
				if strings.HasPrefix(c.name, "notice.") {
					return err.(*apperr.Error).WithDetail("incomplete_notice")
				}
				return err
			}
		}
	}
	if b := o.Birthday; b != nil {
		if !slices.Contains(o.Fields, b.Field) {
			return apperr.New(apperr.Invalid, "birthday_reward.field must be one of the offer's fields")
		}
		switch b.On {
		case "":
			b.On = OnBirthday
		case OnBirthday, OnMonthStart:
		default:
			return apperr.New(apperr.Invalid, "birthday_reward.on must be birthday or month_start")
		}
		if b.ValidDays == 0 {
			b.ValidDays = 30
		}
		if b.ValidDays < 1 || b.ValidDays > 365 {
			return apperr.New(apperr.Invalid, "birthday_reward.valid_days must be 1-365")
		}
	}
	return nil
}
