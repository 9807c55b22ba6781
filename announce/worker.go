package announce

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/signin"
	"github.com/fineline/fineline/web"
)

// Skipped marks an item whose subject no longer needs it (already
// re-accepted or withdrew, or has no email).
const Skipped State = "skipped"

// Worker builds and delivers campaigns.
type Worker struct {
	Store Store
	// Scan reads every subject's stored state, for building campaigns.
	Scan      consent.RecordScanner
	Ledger    *consent.Ledger
	Subjects  *consent.Subjects
	Merchants merchants.Store
	Notices   *notices.Service
	Signin    *signin.Service
	Locales   *locales.Bundle
	Mails     *web.Mails
	Mailer    mail.Sender
	BaseURL   string
	// PerSecond paces sending on this instance.
	PerSecond float64
	// Lease is how long a claimed item is this worker's.
	Lease time.Duration
	// MaxAttempts ends an item as failed after that many failed sends.
	MaxAttempts int
	// Poll is how often the worker looks for work.
	Poll time.Duration
	// Backoff is the wait after the nth failed send; nil: 30 s, then
	// quadrupling, at most 6 h.
	Backoff func(n int) time.Duration
	Now     func() time.Time
	Log     *slog.Logger

	owner string
}

// Schedule queues the announcement of a published version. It is
// idempotent: scheduling twice queues one campaign.
func (w *Worker) Schedule(ctx context.Context, merchantID string, version int) error {
	return w.Store.CreateCampaign(ctx, Campaign{MerchantID: merchantID, Version: version, CreatedAt: w.Now().UTC().Truncate(time.Millisecond)})
}

// Run builds and delivers until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	w.owner = hex.EncodeToString(b)
	limiter := rate.NewLimiter(rate.Limit(w.PerSecond), 1)
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	for {
		if err := w.step(ctx, limiter); err != nil && ctx.Err() == nil {
			w.Log.WarnContext(ctx, "announcements: step failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step builds unbuilt campaigns, then sends what is due.
func (w *Worker) step(ctx context.Context, limiter *rate.Limiter) error {
	cs, err := w.Store.UnbuiltCampaigns(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := w.build(ctx, c); err != nil {
			return err
		}
	}
	items, err := w.Store.DueItems(ctx, w.Now(), 100)
	if err != nil {
		return err
	}
	for _, it := range items {
		if ctx.Err() != nil {
			return nil
		}
		if err := limiter.Wait(ctx); err != nil {
			return nil
		}
		now := w.Now()
		ok, err := w.Store.ClaimItem(ctx, it, w.owner, now, now.Add(w.Lease))
		if err != nil {
			return err
		}
		if !ok {
			continue // another worker has it
		}
		// From the claim on, finish the item even if asked to stop, so a
		// stop between sending and recording never sends twice.
		w.deliver(context.WithoutCancel(ctx), it)
	}
	return nil
}

// build queues an item for every subject whose granted consent the version
// asks to renew. Items have unique keys, so a rebuild after a crash adds
// only what is missing.
func (w *Worker) build(ctx context.Context, c Campaign) error {
	terms, err := w.Notices.Terms(ctx, c.MerchantID)
	if err != nil {
		return err
	}
	if !terms.Has(c.Version) {
		return nil // this instance does not see the publication yet: build on a later step
	}
	var batch []Item
	err = w.Ledger.EachState(ctx, w.Scan, func(rec consent.SubjectState) error {
		if rec.MerchantID != c.MerchantID {
			return nil
		}
		if !slices.ContainsFunc(terms.AwaitingReview(rec), func(a consent.Awaiting) bool { return a.Version.Number == c.Version }) {
			return nil
		}
		batch = append(batch, Item{MerchantID: c.MerchantID, Version: c.Version, SubjectID: rec.SubjectID, State: Queued, NextAt: c.CreatedAt})
		if len(batch) < buildBatch {
			return nil
		}
		err := w.Store.AddItems(ctx, batch)
		batch = batch[:0]
		return err
	})
	if err == nil {
		err = w.Store.AddItems(ctx, batch)
	}
	if err != nil {
		return err
	}
	return w.Store.MarkBuilt(ctx, c.MerchantID, c.Version)
}

// buildBatch is how many items a campaign's build writes at once.
const buildBatch = 500

// backoff is the wait before attempt n+1.
func backoff(n int) time.Duration {
	return min(30*time.Second<<(2*(n-1)), 6*time.Hour)
}

func (w *Worker) deliver(ctx context.Context, it Item) {
	err := w.send(ctx, it)
	it.LeaseOwner, it.LeaseUntil = "", time.Time{}
	now := w.Now().UTC().Truncate(time.Millisecond)
	switch {
	case err == nil:
		it.State, it.SentAt = Sent, now
	case apperr.Is(err, apperr.NotFound):
		it.State, it.Reason = Skipped, err.Error()
	default:
		it.Attempts++
		it.Reason = err.Error()
		if it.Attempts >= w.MaxAttempts {
			it.State = Failed
		} else {
			wait := backoff
			if w.Backoff != nil {
				wait = w.Backoff
			}
			it.NextAt = now.Add(wait(it.Attempts))
		}
	}
	if err := w.Store.FinishItem(ctx, it); err != nil {
		w.Log.ErrorContext(ctx, "announcements: item not recorded; its lease will run out and it may be sent again", "version", it.Version, "err", err)
	}
}

// errSkip says the subject no longer needs the announcement.
func errSkip(why string) error { return apperr.New(apperr.NotFound, "%s", why) }

func (w *Worker) send(ctx context.Context, it Item) error {
	rec, err := w.Ledger.Latest(ctx, it.MerchantID, it.SubjectID)
	if err != nil {
		if apperr.Is(err, apperr.NotFound) {
			return errSkip("subject gone")
		}
		return err
	}
	aw, err := w.Ledger.AwaitingReview(ctx, it.MerchantID, rec)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(aw, func(a consent.Awaiting) bool { return a.Version.Number == it.Version }) {
		return errSkip("already answered")
	}
	sub, err := w.Subjects.Get(ctx, it.MerchantID, it.SubjectID)
	if err != nil {
		return err
	}
	if sub.Email == "" {
		return errSkip("no email")
	}
	m, err := w.Merchants.Merchant(ctx, it.MerchantID)
	if err != nil {
		return err
	}
	v, err := w.Notices.Get(ctx, it.MerchantID, it.Version)
	if err != nil {
		return err
	}
	lang := sub.Locale
	if lang == "" {
		lang = m.DefaultLocale
	}
	l := w.Locales.For(lang)
	tok, _, err := w.Signin.NewPreferenceLink(m.ID, sub.ID)
	if err != nil {
		return err
	}
	summary := v.Texts["en"].Summary
	if t, ok := v.Texts[l.Lang]; ok {
		summary = t.Summary
	}
	var names []string
	for _, a := range aw {
		if a.Version.Number == it.Version {
			names = append(names, a.Purpose)
		}
	}
	data := struct {
		L                             *locales.Localizer
		MerchantName, Summary, Link   string
		Deadline, Effective, Purposes string
		// Passed: the deadline is behind us, the earlier choice no longer counts.
		Passed bool
	}{L: l, MerchantName: m.Name, Summary: summary, Passed: !w.Now().Before(v.Deadline),
		Link:      w.BaseURL + "/c/" + m.Slug + "/p?next=review&t=" + url.QueryEscape(tok),
		Deadline:  v.Deadline.UTC().Format("2006-01-02 15:04 UTC"),
		Effective: v.EffectiveAt.UTC().Format("2006-01-02 15:04 UTC"),
		Purposes:  strings.Join(names, ", ")}
	text, html, err := w.Mails.Render("announce", data)
	if err != nil {
		return err
	}
	return w.Mailer.Send(ctx, mail.Message{To: sub.Email, Subject: l.Tf("mail_announce_subject", "Merchant", m.Name), Text: text, HTML: html})
}

// Progress counts a campaign's items; NotFound when the version was never
// announced.
func (w *Worker) Progress(ctx context.Context, merchantID string, version int) (Progress, error) {
	if _, err := w.Store.Campaign(ctx, merchantID, version); err != nil {
		return Progress{}, err
	}
	return w.Store.Progress(ctx, merchantID, version)
}
