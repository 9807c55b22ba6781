package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/receipts"
)

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

// fieldEdit is a value to store or remove after a save's consent changes.
type fieldEdit struct {
	field  fields.Field
	value  string // normalized; "" removes
	remove bool
}

// checkFieldEdits reads the fields of the preferences form and checks them
// against the purposes that will be on after the save, before anything is
// written: a value is accepted only alongside a purpose that needs it.
func (a *API) checkFieldEdits(c *gin.Context, ps []consent.Purpose, form url.Values, fs []fields.Field, own map[string]string, willBeOn func(string) bool) ([]fieldEdit, error) {
	l := localizer(c)
	var edits []fieldEdit
	for _, f := range fs {
		raw, present := fieldInput(form, f)
		if !present {
			continue
		}
		cur, has := own[f.Key]
		if strings.TrimSpace(raw) == "" {
			if has {
				edits = append(edits, fieldEdit{field: f, remove: true})
			}
			continue
		}
		v, err := a.Fields.Check(f, raw)
		if err != nil {
			return nil, refused(l, ps, f, err)
		}
		if has && v == cur {
			continue
		}
		if !slices.ContainsFunc(f.Purposes, willBeOn) {
			return nil, refused(l, ps, f, apperr.New(apperr.Invalid, "field %q needs one of its purposes on", f.Key).WithDetail("field_needs_purpose"))
		}
		edits = append(edits, fieldEdit{field: f, value: v})
	}
	return edits, nil
}

// fieldError is a value the center refused, with what the page says about it.
type fieldError struct {
	err             error
	label, purposes string
}

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

func refused(l *locales.Localizer, ps []consent.Purpose, f fields.Field, err error) error {
	return &fieldError{err: err, label: f.TextFor(l.Lang).Label, purposes: purposeNames(l, ps, f.Purposes)}
}

// applyFieldEdits stores and removes values after the save's consent changes.
func (a *API) applyFieldEdits(c *gin.Context, edits []fieldEdit) error {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	for _, e := range edits {
		var err error
		if e.remove {
			err = a.Fields.Remove(ctx, m.ID, sess.SubjectID, e.field.Key, consent.ChannelCenter, "session:"+sess.ID)
		} else {
			err = a.Fields.Provide(ctx, fields.Given{MerchantID: m.ID, SubjectID: sess.SubjectID, Field: e.field.Key, Value: e.value,
				Channel: consent.ChannelCenter, Actor: "session:" + sess.ID})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// offerView is an offer's card: what you give, what you get, how to stop.
type offerView struct {
	Key, Title, Reward, Give, Stop string
	Notice                         offers.Notice
	Fields                         []fieldView
	Joined                         bool
	Action                         string
}

// offerViews builds the cards of the merchant's offers for the subject.
func (a *API) offerViews(c *gin.Context, ps []consent.Purpose, ds []consent.Decision, fs []fields.Field, own map[string]string) ([]offerView, error) {
	if a.Offers == nil {
		return nil, nil
	}
	l := localizer(c)
	os, err := a.Offers.List(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return nil, err
	}
	var out []offerView
	for _, o := range os {
		t := o.TextFor(l.Lang)
		v := offerView{Key: o.Key, Title: t.Title, Reward: t.Reward, Notice: t.Notice, Action: basePath(c) + "offers/" + o.Key, Joined: true}
		var give []string
		for _, key := range o.Fields {
			i := slices.IndexFunc(fs, func(f fields.Field) bool { return f.Key == key })
			if i < 0 {
				continue
			}
			give = append(give, fs[i].TextFor(l.Lang).Label)
			fv := newFieldView(l, ps, fs[i], own[key])
			fv.Name = "field." + key
			fv.Key = o.Key + "-" + key // ids distinct from the same field under its purpose
			v.Fields = append(v.Fields, fv)
			if _, ok := own[key]; !ok {
				v.Joined = false
			}
		}
		allowed := false
		for i, p := range ps {
			if p.Key == o.Purpose {
				allowed = ds[i].Allowed
			}
		}
		v.Joined = v.Joined && allowed
		v.Give = strings.Join(give, ", ")
		v.Stop = l.Tf("offer_stop", "Purpose", purposeNames(l, ps, []string{o.Purpose}), "Fields", v.Give)
		out = append(out, v)
	}
	return out, nil
}

// acceptOffer grants the offer's purpose and stores its fields in one step,
// issues a receipt, and shows the shopper's rewards.
func (a *API) acceptOffer(c *gin.Context) {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	if err := c.Request.ParseForm(); err != nil {
		a.renderError(c, apperr.New(apperr.Invalid, "unreadable form"))
		return
	}
	o, err := a.Offers.Get(ctx, m.ID, c.Param("key"))
	if err != nil {
		a.renderError(c, err)
		return
	}
	ps, err := a.Purposes.List(ctx, m.ID)
	if err != nil {
		a.renderError(c, err)
		return
	}
	values := map[string]string{}
	for _, key := range o.Fields {
		f, err := a.Fields.Get(ctx, m.ID, key)
		if err != nil {
			a.renderError(c, err)
			return
		}
		values[key], _ = fieldInput(c.Request.PostForm, f)
		if _, err := a.Fields.Check(f, values[key]); err != nil {
			a.renderError(c, refused(localizer(c), ps, f, err))
			return
		}
	}
	_, err = a.Offers.Accept(ctx, offers.Acceptance{MerchantID: m.ID, SubjectID: sess.SubjectID, Offer: o.Key, Values: values,
		Channel: consent.ChannelCenter, Actor: "session:" + sess.ID})
	if err != nil {
		a.renderError(c, err)
		return
	}
	a.rememberPlace(c, c.Request.PostForm.Get("tz"))
	ps, rec, _, err := a.choices(c)
	if err != nil {
		a.renderError(c, err)
		return
	}
	id, err := a.issueReceipt(c, ps, rec, []receipts.Change{{Purpose: o.Purpose, State: string(consent.Granted)}})
	if err != nil {
		a.renderError(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, basePath(c)+"rewards?joined="+url.QueryEscape(o.Key)+"&receipt="+id)
}

// rememberPlace keeps, for a subject who has none yet, the time zone the
// browser reports (it places their birthday) and the language of the page
// (their reward email speaks it). Settings the shopper or the merchant made
// are kept; a malformed time zone is ignored. It is best effort: the offer
// is joined either way.
func (a *API) rememberPlace(c *gin.Context, tz string) {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	sub, err := a.Subjects.Get(ctx, m.ID, sess.SubjectID)
	if err != nil {
		a.Log.WarnContext(ctx, "offer joined; time zone and language not kept", "request_id", requestID(c), "err", err)
		return
	}
	var u consent.SubjectUpdate
	if sub.TimeZone == "" && tz != "" {
		if _, err := time.LoadLocation(tz); err == nil && !strings.EqualFold(tz, "local") {
			u.TimeZone = &tz
		}
	}
	if sub.Locale == "" {
		lang := localizer(c).Lang
		u.Locale = &lang
	}
	if u.TimeZone == nil && u.Locale == nil {
		return
	}
	if _, _, err := a.Subjects.Put(ctx, m.ID, sess.SubjectID, u); err != nil {
		a.Log.WarnContext(ctx, "offer joined; time zone and language not kept", "request_id", requestID(c), "err", err)
	}
}

type rewardView struct {
	Title, Reward, Code, From, Until, Status string
	Usable                                   bool
}

type joinedView struct{ Title, Next string }

type rewardsPage struct {
	page
	Joined     string
	ReceiptURL string
	Rewards    []rewardView
	Active     []joinedView
	HasOffers  bool
}

// rewards shows the subject's rewards and the offers they joined.
func (a *API) rewards(c *gin.Context) {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	p := rewardsPage{page: a.newPage(c)}
	l := p.L
	os, err := a.Offers.List(ctx, m.ID)
	if err != nil {
		a.renderError(c, err)
		return
	}
	p.HasOffers = len(os) > 0
	title := func(key string) (offers.Offer, string) {
		for _, o := range os {
			if o.Key == key {
				return o, o.TextFor(l.Lang).Title
			}
		}
		return offers.Offer{}, key
	}
	if j := c.Query("joined"); j != "" {
		_, p.Joined = title(j)
	}
	if id := c.Query("receipt"); id != "" {
		if r, err := a.ownReceipt(c, id); err == nil {
			p.ReceiptURL = basePath(c) + "receipts/" + r.ID
		}
	}
	sub, err := a.Subjects.Get(ctx, m.ID, sess.SubjectID)
	if err != nil {
		a.renderError(c, err)
		return
	}
	loc := time.UTC
	if sub.TimeZone != "" {
		if tz, err := time.LoadLocation(sub.TimeZone); err == nil {
			loc = tz
		}
	}
	rs, err := a.Offers.Rewards(ctx, m.ID, sess.SubjectID)
	if err != nil {
		a.renderError(c, err)
		return
	}
	now := time.Now()
	for _, r := range rs {
		o, t := title(r.Offer)
		v := rewardView{Title: t, Code: offers.Display(r.Code), From: r.ValidFrom.In(loc).Format(time.DateOnly),
			Until: r.ValidUntil.In(loc).AddDate(0, 0, -1).Format(time.DateOnly)}
		if o.Key != "" {
			v.Reward = o.TextFor(l.Lang).Reward
		}
		switch {
		case !r.RedeemedAt.IsZero():
			v.Status = l.Tf("reward_redeemed", "When", r.RedeemedAt.In(loc).Format(time.DateOnly))
		case !now.Before(r.ValidUntil):
			v.Status = l.T("reward_expired")
		default:
			v.Status, v.Usable = l.T("reward_ready"), true
		}
		p.Rewards = append(p.Rewards, v)
	}
	for _, o := range os {
		if o.Birthday == nil {
			continue
		}
		bday, ok, err := a.Fields.ValueFor(ctx, m.ID, sess.SubjectID, o.Birthday.Field, o.Purpose)
		if err != nil {
			a.renderError(c, err)
			return
		}
		if !ok {
			continue
		}
		month, day, ok := fields.MonthDay(bday)
		if !ok {
			continue
		}
		next := offers.Next(month, day, *o.Birthday, loc, now)
		for _, r := range rs {
			if r.Offer == o.Key && r.Period == strconv.Itoa(next.Year()) {
				// This year's reward is out: the next is a year on.
				next = offers.Next(month, day, *o.Birthday, loc, next.AddDate(0, 0, 1))
			}
		}
		p.Active = append(p.Active, joinedView{Title: o.TextFor(l.Lang).Title, Next: next.Format(time.DateOnly)})
	}
	a.render(c, http.StatusOK, "rewards", p)
}
