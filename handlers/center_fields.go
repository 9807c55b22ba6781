package handlers

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/locales"
)

// Volunteered fields as the center shows and reads them: each under the
// purpose that needs it, with what it is used for.

type option struct {
	Value, Label string
	Selected     bool
}

// fieldView is one field's input, with what it is used for beside it.
type fieldView struct {
	Key, Name, Label, Explanation, UsedFor, Type, Value string
	Min, Max                                            string
	OmitYear                                            bool
	Months, Days, Choices                               []option
	// Needs lists the purposes that need the field, for the script that
	// enables the input only while one of them is switched on.
	Needs string
	Has   bool
}

// purposeNames joins the localized names of purpose keys.
func purposeNames(l *locales.Localizer, ps []consent.Purpose, keys []string) string {
	var names []string
	for _, k := range keys {
		name := k
		for _, p := range ps {
			if p.Key == k {
				name = p.TextFor(l.Lang).Name
			}
		}
		names = append(names, name)
	}
	return strings.Join(names, ", ")
}

func newFieldView(l *locales.Localizer, ps []consent.Purpose, f fields.Field, value string) fieldView {
	t := f.TextFor(l.Lang)
	names := purposeNames(l, ps, f.Purposes)
	v := fieldView{Key: f.Key, Name: "field." + f.Key, Label: t.Label, Explanation: t.Explanation, Type: string(f.Type), Value: value,
		OmitYear: f.OmitYear, Needs: strings.Join(f.Purposes, " "), Has: value != "",
		UsedFor: l.Tf("field_used_for", "Purposes", names)}
	if f.Min != nil {
		v.Min = fmt.Sprint(*f.Min)
	}
	if f.Max != nil {
		v.Max = fmt.Sprint(*f.Max)
	}
	if f.Type == fields.TypeDate && f.OmitYear {
		month, day, _ := fields.MonthDay(value)
		v.Months = append(v.Months, option{Value: "", Label: l.T("field_month"), Selected: month == 0})
		for m := 1; m <= 12; m++ {
			v.Months = append(v.Months, option{Value: fmt.Sprintf("%02d", m), Label: l.T(fmt.Sprintf("month_%d", m)), Selected: int(month) == m})
		}
		v.Days = append(v.Days, option{Value: "", Label: l.T("field_day"), Selected: day == 0})
		for d := 1; d <= 31; d++ {
			v.Days = append(v.Days, option{Value: fmt.Sprintf("%02d", d), Label: fmt.Sprint(d), Selected: day == d})
		}
	}
	if f.Type == fields.TypeChoice {
		v.Choices = append(v.Choices, option{Value: "", Label: l.T("field_choose"), Selected: value == ""})
		for _, ch := range f.Choices {
			v.Choices = append(v.Choices, option{Value: ch, Label: ch, Selected: ch == value})
		}
	}
	return v
}

// fieldInput reads a field's input from a form; present is false when the
// form did not carry it (not on the page, or disabled because no purpose
// needing it was switched on).
func fieldInput(form url.Values, f fields.Field) (value string, present bool) {
	name := "field." + f.Key
	if f.Type == fields.TypeDate && f.OmitYear {
		m, okm := form[name+".month"]
		d, okd := form[name+".day"]
		if !okm && !okd {
			return "", false
		}
		mv, dv := strings.TrimSpace(strings.Join(m, "")), strings.TrimSpace(strings.Join(d, ""))
		if mv == "" && dv == "" {
			return "", true
		}
		return "--" + mv + "-" + dv, true
	}
	v, ok := form[name]
	if !ok {
		return "", false
	}
	return strings.Join(v, ""), true
}

// ownFields reads the merchant's fields and the signed-in subject's values.
func (a *API) ownFields(c *gin.Context) ([]fields.Field, map[string]string, error) {
	if a.Fields == nil {
		return nil, nil, nil
	}
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	fs, err := a.Fields.List(ctx, m.ID)
	if err != nil {
		return nil, nil, err
	}
	own, err := a.Fields.Own(ctx, m.ID, sess.SubjectID, fs)
	return fs, own, err
}

// firstNeeding is the first of the merchant's purposes that needs f.
func firstNeeding(ps []consent.Purpose, f fields.Field) string {
	for _, p := range ps {
		if f.Needs(p.Key) {
			return p.Key
		}
	}
	return ""
}
