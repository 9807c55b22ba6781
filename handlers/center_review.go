package handlers

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/web"
)

// awaiting lists what the subject is asked to re-accept.
func (a *API) awaiting(c *gin.Context, subjectID string) ([]consent.Awaiting, error) {
	ctx := c.Request.Context()
	st, err := a.Ledger.StateOf(ctx, merchant(c).ID, subjectID)
	if err != nil {
		return nil, err
	}
	return a.Ledger.AwaitingReview(ctx, merchant(c).ID, st)
}

// textFor picks a version's wording in lang, falling back to English.
func textFor(v notices.Version, lang string) notices.Summary {
	if t, ok := v.Texts[lang]; ok {
		return t
	}
	return v.Texts["en"]
}

type diffPara struct {
	Change string
	HTML   template.HTML
}

type reviewPurpose struct {
	Key, Name, Statement string
	// Version is the version the answer is about, sent back with it.
	Version int
	// Answer is the shopper's choice when the form comes back incomplete.
	Answer string
}

// reviewVersion is one changed version and the purposes awaiting it: its
// own summary, its own deadline, what changed since the version accepted.
type reviewVersion struct {
	L                      *locales.Localizer
	Preview                bool
	Summary, When, FullURL string
	Old, New               int
	Diff                   []diffPara
	Purposes               []reviewPurpose
}

type reviewPage struct {
	base
	Versions []reviewVersion
	Error    string
}

// review shows every material change awaiting the shopper, one section
// per version: the summary first, then when it counts from (each version
// with its own deadline), then what changed since the version they
// accepted, then per affected purpose "accept again" or "decline", side by side.
func (a *API) review(c *gin.Context) error {
	p, err := a.reviewPage(c, nil)
	if err != nil {
		return err
	}
	return a.render(c, http.StatusOK, "review", p)
}

// when says, for a version, when its change counts from.
func reviewWhen(l *locales.Localizer, v notices.Version, now time.Time) string {
	switch {
	case now.Before(v.EffectiveAt):
		return l.Tf("review_future", "When", formatTime(v.EffectiveAt)) + " " + l.Tf("review_by", "When", formatTime(v.Deadline))
	case now.Before(v.Deadline):
		return l.Tf("review_by", "When", formatTime(v.Deadline))
	default:
		return l.Tf("review_passed", "When", formatTime(v.Deadline))
	}
}

// describeVersion fills in what the review page says of version nv
// against the version rv.Old: its summary, when it counts from, the
// paragraph diff and the link to its full text under center.
func (a *API) describeVersion(ctx context.Context, rv *reviewVersion, nv notices.Version, center string, now time.Time) {
	lang := rv.L.Lang
	rv.Summary, rv.When = textFor(nv, lang).Summary, reviewWhen(rv.L, nv, now)
	rv.FullURL = center + "notices/" + strconv.Itoa(nv.Number)
	var oldText string
	if ov, err := a.Notices.Get(ctx, nv.MerchantID, rv.Old); err == nil {
		oldText = textFor(ov, lang).Text
	}
	for _, para := range notices.Compare(oldText, textFor(nv, lang).Text) {
		rv.Diff = append(rv.Diff, diffPara{Change: string(para.Change), HTML: web.Markdown(para.Text)})
	}
}

// reviewPage builds the review page; answers, when the form came back
// incomplete, keeps what the shopper picked.
func (a *API) reviewPage(c *gin.Context, answers url.Values) (reviewPage, error) {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	p := reviewPage{base: a.newPage(c)}
	aw, err := a.awaiting(c, sess.SubjectID)
	if err != nil || len(aw) == 0 {
		return p, err
	}
	ps, err := a.offeredPurposes(ctx, m.ID)
	if err != nil {
		return p, err
	}
	now := time.Now()
	var numbers []int
	for _, w := range aw {
		if !slices.Contains(numbers, w.Version.Number) {
			numbers = append(numbers, w.Version.Number)
		}
	}
	slices.Sort(numbers)
	for _, n := range numbers {
		nv, err := a.Notices.Get(ctx, m.ID, n)
		if err != nil {
			return p, err
		}
		rv := reviewVersion{L: p.L, New: n}
		for _, pur := range ps {
			i := slices.IndexFunc(aw, func(w consent.Awaiting) bool { return w.Purpose == pur.Key && w.Version.Number == n })
			if i < 0 {
				continue
			}
			if rv.Old == 0 || aw[i].Accepted < rv.Old {
				rv.Old = aw[i].Accepted
			}
			t := pur.TextFor(p.L.Lang)
			rv.Purposes = append(rv.Purposes, reviewPurpose{Key: pur.Key, Name: t.Name, Statement: t.Statement, Version: n, Answer: answers.Get("answer-" + pur.Key)})
		}
		a.describeVersion(ctx, &rv, nv, basePath(c), now)
		p.Versions = append(p.Versions, rv)
	}
	return p, nil
}

// saveReview hands the answers to the ledger's one operation: accepting
// again grants under the version the shopper was shown (or the one in
// force, if that is newer), declining withdraws. The shopper gets a receipt.
func (a *API) saveReview(c *gin.Context) error {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	if err := c.Request.ParseForm(); err != nil {
		return apperr.New(apperr.Invalid, "unreadable form")
	}
	form := c.Request.PostForm
	aw, err := a.awaiting(c, sess.SubjectID)
	if err != nil {
		return err
	}
	inForce, err := a.Notices.VersionInForce(ctx, m.ID)
	if err != nil {
		return err
	}
	// Every purpose that awaits an answer is answered, whichever version
	// it awaits.
	choices := consent.Choices{MerchantID: m.ID, SubjectID: sess.SubjectID, Channel: consent.ChannelCenter, Actor: actorOf(sess), Locale: askedIn(c)}
	for _, w := range aw {
		ans := form.Get("answer-" + w.Purpose)
		if ans != "accept" && ans != "decline" {
			p, err := a.reviewPage(c, form)
			if err != nil {
				return err
			}
			p.Error = p.L.T("review_incomplete")
			return a.render(c, http.StatusBadRequest, "review", p)
		}
		r := consent.Request{Purpose: w.Purpose, State: consent.Withdrawn}
		if ans == "accept" {
			r.State, r.Explicit = consent.Granted, true
			// The version the page showed for this purpose; if a newer one
			// is in force by now, that one.
			if shown, err := strconv.Atoi(strings.TrimSpace(form.Get("version." + w.Purpose))); err == nil && shown > inForce {
				r.NoticeVersion = shown
			} else if w.Version.Number > inForce {
				r.NoticeVersion = w.Version.Number
			}
		}
		choices.Requests = append(choices.Requests, r)
	}
	if len(choices.Requests) == 0 {
		c.Redirect(http.StatusSeeOther, basePath(c)+"review")
		return nil
	}
	res, err := a.Ledger.Apply(ctx, choices)
	if err != nil {
		return err
	}
	q := url.Values{}
	if len(res.Kept.Erased) > 0 {
		q.Set("erased", strings.Join(res.Kept.Erased, ","))
	}
	if len(res.Decided()) == 0 {
		q.Set("saved", "1")
		c.Redirect(http.StatusSeeOther, basePath(c)+"preferences?"+q.Encode())
		return nil
	}
	return a.receiptAndShow(c, consent.ChannelCenter, res, q)
}

type versionItem struct {
	Number             int
	URL, When, Summary string
	Material           bool
}

type noticesPage struct {
	base
	Versions []versionItem
}

func versionWhen(l interface{ Tf(string, ...any) string }, v notices.Version) string {
	if time.Now().Before(v.EffectiveAt) {
		return l.Tf("notice_future", "When", formatTime(v.EffectiveAt))
	}
	return l.Tf("notice_effective", "When", formatTime(v.EffectiveAt))
}

// noticeVersions lists the published versions, so shoppers can read what
// they agreed to and when.
func (a *API) noticeVersions(c *gin.Context) error {
	vs, err := a.Notices.List(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return err
	}
	p := noticesPage{base: a.newPage(c)}
	for _, v := range vs {
		if v.Status != notices.Published {
			continue
		}
		p.Versions = append(p.Versions, versionItem{Number: v.Number, URL: basePath(c) + "notices/" + strconv.Itoa(v.Number),
			When: versionWhen(p.L, v), Summary: textFor(v, p.L.Lang).Summary, Material: v.Material})
	}
	return a.render(c, http.StatusOK, "notices", p)
}

type noticePage struct {
	base
	Number        int
	When, Summary string
	Material      bool
	Full          template.HTML
}

// noticeVersion shows one published version: summary, then full text.
func (a *API) noticeVersion(c *gin.Context) error {
	n, err := strconv.Atoi(c.Param("version"))
	if err != nil || n < 1 {
		return apperr.New(apperr.NotFound, "no such version")
	}
	v, err := a.Notices.Get(c.Request.Context(), merchant(c).ID, n)
	if err == nil && v.Status != notices.Published {
		err = apperr.New(apperr.NotFound, "no such version")
	}
	if err != nil {
		return err
	}
	p := noticePage{base: a.newPage(c), Number: v.Number, Material: v.Material}
	t := textFor(v, p.L.Lang)
	p.When, p.Summary = versionWhen(p.L, v), t.Summary
	if strings.TrimSpace(t.Text) != "" {
		p.Full = web.Markdown(t.Text)
	}
	return a.render(c, http.StatusOK, "notice", p)
}
