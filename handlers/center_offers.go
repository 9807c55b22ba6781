package handlers

import (
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
	"github.com/fineline/fineline/offers"
)

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
		if !slices.ContainsFunc(ps, func(p consent.Purpose) bool { return p.Key == o.Purpose }) {
			continue // its purpose is not offered (retired)
		}
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

// acceptOffer grants the offer's purpose and stores its fields in one step
// (offers.Accept, through the ledger's one operation), issues a receipt,
// and shows the shopper's rewards.
func (a *API) acceptOffer(c *gin.Context) error {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	if err := c.Request.ParseForm(); err != nil {
		return apperr.New(apperr.Invalid, "unreadable form")
	}
	o, err := a.Offers.Get(ctx, m.ID, c.Param("key"))
	if err != nil {
		return err
	}
	values := map[string]string{}
	for _, key := range o.Fields {
		f, err := a.Fields.Get(ctx, m.ID, key)
		if err != nil {
			return err
		}
		values[key], _ = fieldInput(c.Request.PostForm, f)
	}
	res, err := a.Offers.Accept(ctx, offers.Acceptance{MerchantID: m.ID, SubjectID: sess.SubjectID, Offer: o.Key, Values: values,
		Channel: consent.ChannelCenter, Actor: actorOf(sess)})
	if err != nil {
		return err
	}
	a.rememberPlace(c, c.Request.PostForm.Get("tz"))
	q := url.Values{"joined": {o.Key}}
	if len(res.Decided()) > 0 {
		id, err := a.issueReceipt(c, consent.ChannelCenter, res)
		if err != nil {
			return err
		}
		q.Set("receipt", id)
	}
	c.Redirect(http.StatusSeeOther, basePath(c)+"rewards?"+q.Encode())
	return nil
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
	base
	Joined     string
	ReceiptURL string
	Rewards    []rewardView
	Active     []joinedView
	HasOffers  bool
}

// rewards shows the subject's rewards and the offers they joined.
func (a *API) rewards(c *gin.Context) error {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	p := rewardsPage{base: a.newPage(c)}
	l := p.L
	os, err := a.Offers.List(ctx, m.ID)
	if err != nil {
		return err
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
		return err
	}
	loc := time.UTC
	if sub.TimeZone != "" {
		if tz, err := time.LoadLocation(sub.TimeZone); err == nil {
			loc = tz
		}
	}
	rs, err := a.Offers.Rewards(ctx, m.ID, sess.SubjectID)
	if err != nil {
		return err
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
			return err
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
	return a.render(c, http.StatusOK, "rewards", p)
}
