package handlers

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/reach"
)

type purposeView struct {
	Key, Name, Statement, Data, SwitchLabel, Status string
	On, Sensitive                                   bool
	// Fields are the volunteered fields this purpose needs (each shown
	// under the first purpose that needs it).
	Fields []fieldView
}

// levelView is one answer of the "how personal may we be?" control.
type levelView struct {
	Value, Label, Hint string
	Checked            bool
}

type prefsPage struct {
	base
	Offers   []offerView
	Purposes []purposeView
	// Levels are the privacy levels, the subject's own checked; LevelShown
	// is that level, sent back with the form so that a level left as shown
	// leaves one changed elsewhere meanwhile as it is.
	Levels     []levelView
	LevelShown string
	Saved      bool
	Changes    []string
	ReceiptURL string
	// Elsewhere tells what changed elsewhere while the page was open, and
	// was left as it is.
	Elsewhere []string
}

// choices reads the merchant's purposes, the signed-in subject's state
// and the decision on each purpose now.
func (a *API) choices(c *gin.Context) ([]consent.Purpose, consent.SubjectState, []consent.Decision, error) {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	ps, err := a.offeredPurposes(ctx, m.ID)
	if err != nil {
		return nil, consent.SubjectState{}, nil, err
	}
	st, err := a.Ledger.StateOf(ctx, m.ID, sess.SubjectID)
	if err != nil {
		return nil, consent.SubjectState{}, nil, err
	}
	ds, err := a.Ledger.DecideAll(ctx, m.ID, st, ps)
	return ps, st, ds, err
}

// purposeStatus says, in the page's language, where the subject stands on
// a purpose: never asked, on or off since when, paused by changed terms.
func purposeStatus(l *locales.Localizer, st consent.SubjectState, pur consent.Purpose, d consent.Decision) string {
	cur, ok := st.Purposes[pur.Key]
	switch {
	case !ok:
		return l.T("status_never")
	case d.Reason == consent.ReasonReconsentRequired:
		return l.Tf("status_paused", "When", formatTime(d.ReconsentBy))
	case d.Reason == consent.ReasonReconsentDue:
		return l.Tf("status_due", "When", formatTime(d.ReconsentBy))
	case cur.State == consent.Granted:
		return l.Tf("status_on", "When", formatTime(cur.At), "Version", cur.NoticeVersion)
	}
	return l.Tf("status_off", "When", formatTime(cur.At), "Version", cur.NoticeVersion)
}

// preferences shows one card per purpose with the subject's current choice.
func (a *API) preferences(c *gin.Context) error {
	ps, st, ds, err := a.choices(c)
	if err != nil {
		return err
	}
	p := prefsPage{base: a.newPage(c)}
	l := p.L
	fs, own, err := a.ownFields(c)
	if err != nil {
		return err
	}
	if p.Offers, err = a.offerViews(c, ps, ds, fs, own); err != nil {
		return err
	}
	for i, pur := range ps {
		t := pur.TextFor(l.Lang)
		v := purposeView{Key: pur.Key, Name: t.Name, Statement: t.Statement, Data: categories(l, pur), SwitchLabel: l.T("allow_purpose"), Sensitive: pur.Sensitive}
		// A switch shows what is allowed now: consent that changed terms
		// have paused is off until the shopper gives it again.
		v.On = ds[i].Allowed
		v.Status = purposeStatus(l, st, pur, ds[i])
		for _, f := range fs {
			if firstNeeding(ps, f) == pur.Key {
				v.Fields = append(v.Fields, newFieldView(l, ps, f, own[f.Key]))
			}
		}
		p.Purposes = append(p.Purposes, v)
	}
	p.LevelShown = string(st.PrivacyLevel())
	for _, lv := range consent.Levels() {
		p.Levels = append(p.Levels, levelView{Value: string(lv), Label: levelName(l, lv), Hint: l.T("level_" + string(lv) + "_hint"), Checked: lv == st.PrivacyLevel()})
	}
	if id := c.Query("receipt"); id != "" {
		r, err := a.ownReceipt(c, id)
		if err != nil {
			return err
		}
		p.Saved, p.ReceiptURL = true, basePath(c)+"receipts/"+r.ID
		for _, ch := range r.Changes {
			if ch.Purpose == "" {
				// The privacy level chosen: an event of no purpose.
				if lv, err := consent.ParseLevel(ch.Level); err == nil {
					p.Changes = append(p.Changes, l.Tf("change_level", "Level", levelName(l, lv)))
				}
				continue
			}
			name := ch.Purpose
			for _, pur := range ps {
				if pur.Key == ch.Purpose {
					name = pur.TextFor(l.Lang).Name
				}
			}
			if ch.State == string(consent.Granted) {
				p.Changes = append(p.Changes, l.Tf("change_on", "Name", name))
			} else {
				p.Changes = append(p.Changes, l.Tf("change_off", "Name", name))
			}
		}
	} else if c.Query("saved") == "1" {
		p.Saved = true
	}
	if p.Saved && c.Query("details") == "1" {
		p.Changes = append(p.Changes, l.T("change_details"))
	}
	if e := c.Query("erased"); p.Saved && e != "" {
		var labels []string
		for _, f := range fs {
			if slices.Contains(strings.Split(e, ","), f.Key) {
				labels = append(labels, f.TextFor(l.Lang).Label)
			}
		}
		if len(labels) > 0 {
			p.Changes = append(p.Changes, l.Tf("change_erased", "Fields", strings.Join(labels, ", ")))
		}
	}
	if e := c.Query("elsewhere"); p.Saved && e != "" {
		for i, pur := range ps {
			if !slices.Contains(strings.Split(e, ","), pur.Key) {
				continue
			}
			name := pur.TextFor(l.Lang).Name
			if ds[i].Allowed {
				p.Elsewhere = append(p.Elsewhere, l.Tf("elsewhere_on", "Name", name))
			} else {
				p.Elsewhere = append(p.Elsewhere, l.Tf("elsewhere_off", "Name", name))
			}
		}
	}
	if p.Saved && c.Query("elsewhere_level") == "1" {
		p.Elsewhere = append(p.Elsewhere, l.Tf("elsewhere_level", "Level", levelName(l, st.PrivacyLevel())))
	}
	return a.render(c, http.StatusOK, "preferences", p)
}

// savePreferences hands the shopper's switches and privacy level, as
// changed from what the page showed, and the details they gave to the
// ledger's one operation; it shows what that decided, with a signed
// receipt. "Turn everything off" withdraws every granted purpose and leaves
// the level alone; nothing here ever switches a purpose on except its own
// switch.
func (a *API) savePreferences(c *gin.Context) error {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	if err := c.Request.ParseForm(); err != nil {
		return apperr.New(apperr.Invalid, "unreadable form")
	}
	form := c.Request.PostForm
	action := form.Get("action")
	if action != "save" && action != "all_off" {
		return apperr.New(apperr.Invalid, "unknown action")
	}
	ps, err := a.offeredPurposes(ctx, m.ID)
	if err != nil {
		return err
	}
	on := form["on"]
	choices := consent.Choices{MerchantID: m.ID, SubjectID: sess.SubjectID, Channel: consent.ChannelCenter, Actor: actorOf(sess), Locale: askedIn(c)}
	for _, k := range on {
		if _, shown := form["was."+k]; !shown {
			return apperr.New(apperr.Invalid, "a switch for a purpose the page did not show")
		}
	}
	for _, p := range ps {
		if action == "all_off" {
			choices.Requests = append(choices.Requests, consent.Request{Purpose: p.Key, State: consent.Withdrawn, When: consent.IfGranted})
			continue
		}
		was, shown := form["was."+p.Key]
		if !shown {
			continue // not on the page the shopper saw: leave it alone
		}
		r := consent.Request{Purpose: p.Key, State: consent.Withdrawn, Shown: consent.ShownOff}
		if strings.Join(was, "") == "on" {
			r.Shown = consent.ShownOn
		}
		if slices.Contains(on, p.Key) {
			r.State, r.Explicit = consent.Granted, true
		}
		choices.Requests = append(choices.Requests, r)
	}
	if action == "save" && a.Fields != nil {
		values, err := a.changedValues(c, form)
		if err != nil {
			return err
		}
		choices.Values = values
	}
	if action == "save" {
		if choices.Level, choices.LevelShown, err = formLevel(form); err != nil {
			return err
		}
	}
	if len(choices.Requests) == 0 && len(choices.Values) == 0 && choices.Level == "" {
		c.Redirect(http.StatusSeeOther, basePath(c)+"preferences?saved=1")
		return nil
	}
	res, err := a.Ledger.Apply(ctx, choices)
	if err != nil {
		return err
	}
	a.countClicks(m, reach.ChannelCenter, centerClicks(action, choices.Requests), res)
	// Say what the save did: decisions (with their receipt), volunteered
	// details changed or erased, and what changed elsewhere meanwhile.
	q := url.Values{}
	if len(res.Kept.Erased) > 0 {
		q.Set("erased", strings.Join(res.Kept.Erased, ","))
	}
	if len(res.Kept.Stored) > 0 {
		q.Set("details", "1")
	}
	if len(res.Elsewhere) > 0 {
		var keys []string
		for _, e := range res.Elsewhere {
			keys = append(keys, e.Purpose)
		}
		q.Set("elsewhere", strings.Join(keys, ","))
	}
	if choices.LevelShown != "" && choices.Level == choices.LevelShown && res.State.PrivacyLevel() != choices.LevelShown {
		// Left as shown, and changed elsewhere meanwhile: it stands.
		q.Set("elsewhere_level", "1")
	}
	if len(res.Decided()) == 0 {
		q.Set("saved", "1")
		c.Redirect(http.StatusSeeOther, basePath(c)+"preferences?"+q.Encode())
		return nil
	}
	return a.receiptAndShow(c, consent.ChannelCenter, res, q)
}

// centerClicks is what a save of the preferences page took: the switches
// it changed and the button that saved (the page works without script,
// so nothing between is seen); "all off" is one button.
func centerClicks(action string, reqs []consent.Request) int {
	if action == "all_off" {
		return 1
	}
	clicks := 1
	for _, r := range reqs {
		if (r.State == consent.Granted) != (r.Shown == consent.ShownOn) {
			clicks++
		}
	}
	return clicks
}

// countClicks counts, for the parity of granting and withdrawing, a choice
// on channel that took clicks, if it switched a purpose on or one that was
// on off.
func (a *API) countClicks(m merchants.Merchant, channel string, clicks int, res consent.Applied) {
	if a.Reach == nil {
		return
	}
	if granted, withdrew := reach.Switched(res.Decided()); granted || withdrew {
		a.Reach.AddChoice(m.ID, time.Now().In(m.Location()), channel, clicks, granted, withdrew)
	}
}

// formLevel reads the privacy level the form chose and the level the page
// showed; both are empty for a form without the control.
func formLevel(form url.Values) (level, shown consent.Level, err error) {
	if _, ok := form["level"]; !ok {
		return "", "", nil
	}
	if level, err = consent.ParseLevel(form.Get("level")); err != nil {
		return "", "", err
	}
	if shown, err = consent.ParseLevel(form.Get("level_shown")); err != nil {
		return "", "", apperr.New(apperr.Invalid, "a privacy level without the level the page showed").WithDetail(consent.CodeInvalidLevel)
	}
	return level, shown, nil
}

// levelName is a privacy level in the shopper's words ("Keep it general").
func levelName(l *locales.Localizer, lv consent.Level) string { return l.T("level_" + string(lv)) }

// changedValues reads the volunteered details of the form that differ
// from what the subject holds: an emptied one removes the value.
func (a *API) changedValues(c *gin.Context, form url.Values) (map[string]string, error) {
	fs, own, err := a.ownFields(c)
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	for _, f := range fs {
		raw, present := fieldInput(form, f)
		if !present {
			continue
		}
		cur, has := own[f.Key]
		if strings.TrimSpace(raw) == "" {
			if has {
				values[f.Key] = ""
			}
			continue
		}
		if v, err := a.Fields.Check(f, raw); err == nil && has && v == cur {
			continue // unchanged
		}
		values[f.Key] = raw
	}
	return values, nil
}

// receiptAndShow issues a receipt for applied choices and shows the
// preferences with it (and, in q, what else the save did).
func (a *API) receiptAndShow(c *gin.Context, channel consent.Channel, res consent.Applied, q url.Values) error {
	id, err := a.issueReceipt(c, channel, res)
	if err != nil {
		return err
	}
	q.Set("receipt", id)
	c.Redirect(http.StatusSeeOther, basePath(c)+"preferences?"+q.Encode())
	return nil
}
