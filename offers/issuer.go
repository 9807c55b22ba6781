package offers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/signin"
	"github.com/fineline/fineline/web"
)

// Issuer issues birthday rewards and emails them. Any number of issuers may
// run at once: a reward's unique key (subject, offer, period) lets one
// issue it, and a lease lets one email it.
type Issuer struct {
	Offers    *Service
	Fields    *fields.Service
	Subjects  *consent.Subjects
	Purposes  *consent.Purposes
	Merchants merchants.Store
	Signin    *signin.Service
	Locales   *locales.Bundle
	Mails     *web.Mails
	Mailer    mail.Sender
	BaseURL   string
	// Poll is how often the issuer looks for birthdays due: every stored
	// birthday is opened, so this is a pass over all members.
	Poll time.Duration
	// MailPoll is how often it sends the rewards' emails (and retries); 0: a minute.
	MailPoll time.Duration
	// Lease is how long a claimed email is this issuer's.
	Lease time.Duration
	// MaxAttempts ends an email as failed after that many failed sends.
	MaxAttempts int
	Now         func() time.Time
	Log         *slog.Logger

	once  sync.Once
	owner string

	// dueMu guards what the last delivery pass saw: how many emails were
	// due, and since when the oldest of them.
	dueMu     sync.Mutex
	due       int
	oldestDue time.Time
}

// Due reports what the last delivery pass found due (counted up to 100,
// the pass's page): how many reward emails, and since when the oldest
// (zero when none was).
func (j *Issuer) Due() (int, time.Time) {
	j.dueMu.Lock()
	defer j.dueMu.Unlock()
	return j.due, j.oldestDue
}

// Run issues every Poll and delivers every MailPoll until ctx ends.
func (j *Issuer) Run(ctx context.Context) {
	mailEvery := j.MailPoll
	if mailEvery <= 0 {
		mailEvery = time.Minute
	}
	t := time.NewTicker(min(mailEvery, j.Poll))
	defer t.Stop()
	var issued time.Time
	for {
		if issued.IsZero() || time.Since(issued) >= j.Poll {
			issued = time.Now()
			if n, err := j.Issue(ctx); err != nil && ctx.Err() == nil {
				j.Log.WarnContext(ctx, "rewards: issuing failed", "err", err)
			} else if n > 0 {
				j.Log.InfoContext(ctx, "rewards: issued", "count", n)
			}
		}
		if _, err := j.Deliver(ctx); err != nil && ctx.Err() == nil {
			j.Log.WarnContext(ctx, "rewards: delivery failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Issue issues every birthday reward due now and reports how many it
// issued. Running it again, or on two instances at once, issues nothing twice.
func (j *Issuer) Issue(ctx context.Context) (int, error) {
	all, err := j.Offers.Store.AllOffers(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range all {
		if o.Birthday == nil {
			continue
		}
		f, err := j.Fields.Get(ctx, o.MerchantID, o.Birthday.Field)
		var vals []fields.Value
		if err == nil {
			vals, err = j.Fields.Store.Values(ctx, o.MerchantID, o.Birthday.Field)
		}
		if err != nil {
			// One offer's trouble does not hold up the others.
			j.Log.WarnContext(ctx, "rewards: offer skipped this pass", "offer", o.Key, "err", err)
			continue
		}
		for _, v := range vals {
			if ctx.Err() != nil {
				return n, nil
			}
			ok, err := j.issueOne(ctx, o, f, v)
			if err != nil {
				j.Log.WarnContext(ctx, "rewards: not issued", "offer", o.Key, "err", err)
				continue
			}
			if ok {
				n++
			}
		}
	}
	return n, nil
}

// extremes are the earliest and latest local times on Earth: a birthday due
// in no time zone between them is due nowhere, and is passed over without
// reading the subject.
func extremes() []*time.Location {
	return []*time.Location{time.FixedZone("UTC-12", -12*3600), time.UTC, time.FixedZone("UTC+14", 14*3600)}
}

func (j *Issuer) issueOne(ctx context.Context, o Offer, f fields.Field, v fields.Value) (bool, error) {
	// The same rule as the merchant API: the birthday is read for this
	// purpose only while it is allowed.
	bday, ok, err := j.Fields.OpenFor(ctx, f, v, o.Purpose)
	if err != nil || !ok {
		return false, err
	}
	month, day, ok := fields.MonthDay(bday)
	if !ok {
		return false, nil
	}
	now := j.Now()
	anywhere := false
	for _, loc := range extremes() {
		if _, due := Due(month, day, *o.Birthday, loc, now); due {
			anywhere = true
		}
	}
	if !anywhere {
		return false, nil
	}
	subjectID := v.SubjectID
	sub, err := j.Subjects.Get(ctx, o.MerchantID, subjectID)
	if err != nil {
		return false, err
	}
	loc := time.UTC
	if sub.TimeZone != "" {
		if l, err := time.LoadLocation(sub.TimeZone); err == nil {
			loc = l
		}
	}
	w, due := Due(month, day, *o.Birthday, loc, now)
	if !due {
		return false, nil
	}
	period := strconv.Itoa(w.Period)
	r := Reward{MerchantID: o.MerchantID, Offer: o.Key, SubjectID: subjectID, Period: period,
		Code: j.Offers.Codes.For(o.MerchantID, o.Key, subjectID, period), IssuedAt: now.UTC().Truncate(time.Millisecond),
		ValidFrom: w.From.UTC(), ValidUntil: w.Until.UTC(), Mail: MailPending, MailNextAt: now.UTC().Truncate(time.Millisecond)}
	if sub.Email == "" {
		r.Mail, r.MailReason = MailSkipped, "no email address"
	}
	issued, err := j.Offers.Store.IssueReward(ctx, r)
	if err == nil && issued {
		j.Offers.note(ctx, r.MerchantID, "reward.issued", map[string]any{"subject": r.SubjectID, "offer": r.Offer, "period": r.Period,
			"valid_from": r.ValidFrom, "valid_until": r.ValidUntil})
	}
	return issued, err
}

// Deliver emails pending rewards and reports how many it sent.
func (j *Issuer) Deliver(ctx context.Context) (int, error) {
	j.once.Do(func() {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		j.owner = hex.EncodeToString(b)
	})
	rs, err := j.Offers.Store.PendingMail(ctx, j.Now(), 100)
	if err != nil {
		return 0, err
	}
	j.dueMu.Lock()
	j.due, j.oldestDue = len(rs), time.Time{}
	if len(rs) > 0 {
		j.oldestDue = rs[0].MailNextAt
	}
	j.dueMu.Unlock()
	sent := 0
	for _, r := range rs {
		if ctx.Err() != nil {
			return sent, nil
		}
		now := j.Now()
		ok, err := j.Offers.Store.ClaimMail(ctx, r, j.owner, now, now.Add(j.Lease))
		if err != nil {
			return sent, err
		}
		if !ok {
			continue // another issuer has it
		}
		// From the claim on, finish even if asked to stop, so a stop
		// between sending and recording never sends twice.
		if j.deliver(context.WithoutCancel(ctx), r) {
			sent++
		}
	}
	return sent, nil
}

func (j *Issuer) deliver(ctx context.Context, r Reward) bool {
	err := j.send(ctx, r)
	r.LeaseOwner, r.LeaseUntil = "", time.Time{}
	now := j.Now().UTC().Truncate(time.Millisecond)
	switch {
	case err == nil:
		r.Mail, r.MailReason = MailSent, ""
	case apperr.Is(err, apperr.NotFound):
		r.Mail, r.MailReason = MailSkipped, err.Error()
	default:
		r.MailAttempts++
		r.MailReason = err.Error()
		if r.MailAttempts >= j.MaxAttempts {
			r.Mail = MailFailed
		} else {
			r.MailNextAt = now.Add(min(time.Minute<<(2*(r.MailAttempts-1)), 6*time.Hour))
		}
	}
	if err := j.Offers.Store.FinishMail(ctx, r); err != nil {
		j.Log.ErrorContext(ctx, "rewards: email outcome not recorded; its lease will run out and it may be sent again", "offer", r.Offer, "err", err)
	}
	return err == nil
}

func (j *Issuer) send(ctx context.Context, r Reward) error {
	sub, err := j.Subjects.Get(ctx, r.MerchantID, r.SubjectID)
	if err != nil {
		return err
	}
	if sub.Email == "" {
		return apperr.New(apperr.NotFound, "no email address")
	}
	m, err := j.Merchants.Merchant(ctx, r.MerchantID)
	if err != nil {
		return err
	}
	o, err := j.Offers.Get(ctx, r.MerchantID, r.Offer)
	if err != nil {
		return err
	}
	// A shopper who switched the purpose off since gets nothing more.
	if d, err := j.Offers.Ledger.Check(ctx, r.MerchantID, r.SubjectID, o.Purpose); err != nil {
		return err
	} else if !d.Allowed {
		return apperr.New(apperr.NotFound, "purpose %s no longer allowed (%s)", o.Purpose, d.Reason)
	}
	p, err := j.Purposes.Get(ctx, r.MerchantID, o.Purpose)
	if err != nil {
		return err
	}
	lang := sub.Locale
	if lang == "" {
		lang = m.DefaultLocale
	}
	l := j.Locales.For(lang)
	tok, _, err := j.Signin.NewPreferenceLink(m.ID, sub.ID)
	if err != nil {
		return err
	}
	loc := time.UTC
	if sub.TimeZone != "" {
		if tz, err := time.LoadLocation(sub.TimeZone); err == nil {
			loc = tz
		}
	}
	base := j.BaseURL + "/c/" + m.Slug + "/p?t=" + url.QueryEscape(tok)
	data := struct {
		L                                   *locales.Localizer
		MerchantName, Title, Reward, Code   string
		Until, Purpose, RewardsURL, PrefURL string
	}{L: l, MerchantName: m.Name, Title: o.TextFor(l.Lang).Title, Reward: o.TextFor(l.Lang).Reward, Code: Display(r.Code),
		Until:      r.ValidUntil.In(loc).AddDate(0, 0, -1).Format("2006-01-02"),
		Purpose:    p.TextFor(l.Lang).Name,
		RewardsURL: base + "&next=rewards", PrefURL: base}
	text, html, err := j.Mails.Render("reward", data)
	if err != nil {
		return err
	}
	return j.Mailer.Send(ctx, mail.Message{To: sub.Email, Subject: l.Tf("mail_reward_subject", "Merchant", m.Name), Text: text, HTML: html})
}
