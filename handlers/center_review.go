package handlers

import (
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/receipts"
	"github.com/fineline/fineline/web"
)

// awaiting lists what the subject is asked to re-accept.
func (a *API) awaiting(c *gin.Context, subjectID string) ([]consent.Awaiting, error) {
	ctx := c.Request.Context()
	rec, err := a.Ledger.State(ctx, merchant(c).ID, subjectID)
	if err != nil {
		return nil, err
	}
	return a.Ledger.AwaitingReview(ctx, merchant(c).ID, rec)
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
	// Answer is the shopper's choice when the form comes back incomplete.
	Answer string
}

type reviewPage struct {
	page
	Summary, When, FullURL, Error string
	Old, New                      int
	Diff                          []diffPara
	Purposes                      []reviewPurpose
}

// review shows the newest material change awaiting the shopper: the summary
// first, then what changed since the version they accepted, then per
// affected purpose "accept again" or "decline", side by side.
func (a *API) review(c *gin.Context) {
	p, status, err := a.reviewPage(c)
	if err != nil {
		a.renderError(c, err)
		return
	}
	a.render(c, status, "review", p)
}

func (a *API) reviewPage(c *gin.Context) (reviewPage, int, error) {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	p := reviewPage{page: a.newPage(c)}
	aw, err := a.awaiting(c, sess.SubjectID)
	if err != nil || len(aw) == 0 {
		return p, http.StatusOK, err
	}
	newest := aw[0].Version
	oldest := aw[0].Accepted
	for _, w := range aw {
		if w.Version.Number > newest.Number {
			newest = w.Version
		}
		oldest = min(oldest, w.Accepted)
	}
	nv, err := a.Notices.Get(ctx, m.ID, newest.Number)
	if err != nil {
		return p, 0, err
	}
	var oldText string
	if ov, err := a.Notices.Get(ctx, m.ID, oldest); err == nil {
		oldText = textFor(ov, p.L.Lang).Text
	}
	now := time.Now()
	p.Old, p.New, p.Summary = oldest, nv.Number, textFor(nv, p.L.Lang).Summary
	p.FullURL = basePath(c) + "notices/" + strconv.Itoa(nv.Number)
	switch {
	case now.Before(nv.EffectiveAt):
		p.When = p.L.Tf("review_future", "When", formatTime(nv.EffectiveAt)) + " " + p.L.Tf("review_by", "When", formatTime(nv.Deadline))
	case now.Before(nv.Deadline):
		p.When = p.L.Tf("review_by", "When", formatTime(nv.Deadline))
	default:
		p.When = p.L.Tf("review_passed", "When", formatTime(nv.Deadline))
	}
	for _, para := range notices.Compare(oldText, textFor(nv, p.L.Lang).Text) {
		p.Diff = append(p.Diff, diffPara{Change: string(para.Change), HTML: web.Markdown(para.Text)})
	}
	ps, err := a.Purposes.List(ctx, m.ID)
	if err != nil {
		return p, 0, err
	}
	for _, pur := range ps {
		if slices.ContainsFunc(aw, func(w consent.Awaiting) bool { return w.Purpose == pur.Key }) {
			t := pur.TextFor(p.L.Lang)
			p.Purposes = append(p.Purposes, reviewPurpose{Key: pur.Key, Name: t.Name, Statement: t.Statement})
		}
	}
	return p, http.StatusOK, nil
}

// saveReview records each answer: accepting again grants under the new
// version, declining withdraws. Each answer is an event (channel center),
// and the shopper gets a receipt.
func (a *API) saveReview(c *gin.Context) {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	if err := c.Request.ParseForm(); err != nil {
		a.renderError(c, apperr.New(apperr.Invalid, "unreadable form"))
		return
	}
	aw, err := a.awaiting(c, sess.SubjectID)
	if err != nil {
		a.renderError(c, err)
		return
	}
	inForce, err := a.Notices.VersionInForce(ctx, m.ID)
	if err != nil {
		a.renderError(c, err)
		return
	}
	// Every purpose that awaits an answer is answered, whichever version
	// it awaits; accepting records the version the shopper was shown when
	// it is not in force yet, else the version in force (newer or equal).
	answers := map[string]string{}
	versions := map[string]int{}
	for _, w := range aw {
		if w.Version.Number > inForce {
			versions[w.Purpose] = w.Version.Number
		}
		ans := c.Request.PostForm.Get("answer-" + w.Purpose)
		if ans != "accept" && ans != "decline" {
			p, _, err := a.reviewPage(c)
			if err != nil {
				a.renderError(c, err)
				return
			}
			p.Error = p.L.T("review_incomplete")
			for i := range p.Purposes {
				p.Purposes[i].Answer = c.Request.PostForm.Get("answer-" + p.Purposes[i].Key)
			}
			a.render(c, http.StatusBadRequest, "review", p)
			return
		}
		answers[w.Purpose] = ans
	}
	if len(answers) == 0 {
		c.Redirect(http.StatusSeeOther, basePath(c)+"review")
		return
	}
	var changes []receipts.Change
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ch := consent.Change{MerchantID: m.ID, SubjectID: sess.SubjectID, Purpose: k, Channel: consent.ChannelCenter, Actor: "session:" + sess.ID}
		if answers[k] == "accept" {
			ch.State, ch.NoticeVersion, ch.ExplicitOptIn = consent.Granted, versions[k], true
		} else {
			ch.State = consent.Withdrawn
		}
		if _, err := a.Ledger.Record(ctx, ch); err != nil {
			a.renderError(c, err)
			return
		}
		changes = append(changes, receipts.Change{Purpose: k, State: string(ch.State)})
	}
	rec, err := a.Ledger.State(ctx, m.ID, sess.SubjectID)
	if err != nil {
		a.renderError(c, err)
		return
	}
	ps, err := a.Purposes.List(ctx, m.ID)
	if err != nil {
		a.renderError(c, err)
		return
	}
	a.receiptAndShow(c, ps, rec, changes, nil)
}

type versionItem struct {
	Number             int
	URL, When, Summary string
	Material           bool
}

type noticesPage struct {
	page
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
func (a *API) noticeVersions(c *gin.Context) {
	vs, err := a.Notices.List(c.Request.Context(), merchant(c).ID)
	if err != nil {
		a.renderError(c, err)
		return
	}
	p := noticesPage{page: a.newPage(c)}
	for _, v := range vs {
		if v.Status != notices.Published {
			continue
		}
		p.Versions = append(p.Versions, versionItem{Number: v.Number, URL: basePath(c) + "notices/" + strconv.Itoa(v.Number),
			When: versionWhen(p.L, v), Summary: textFor(v, p.L.Lang).Summary, Material: v.Material})
	}
	a.render(c, http.StatusOK, "notices", p)
}

type noticePage struct {
	page
	Number        int
	When, Summary string
	Material      bool
	Full          template.HTML
}

// noticeVersion shows one published version: summary, then full text.
func (a *API) noticeVersion(c *gin.Context) {
	n, err := strconv.Atoi(c.Param("version"))
	if err != nil || n < 1 {
		a.renderError(c, apperr.New(apperr.NotFound, "no such version"))
		return
	}
	v, err := a.Notices.Get(c.Request.Context(), merchant(c).ID, n)
	if err == nil && v.Status != notices.Published {
		err = apperr.New(apperr.NotFound, "no such version")
	}
	if err != nil {
		a.renderError(c, err)
		return
	}
	p := noticePage{page: a.newPage(c), Number: v.Number, Material: v.Material}
	t := textFor(v, p.L.Lang)
	p.When, p.Summary = versionWhen(p.L, v), t.Summary
	if strings.TrimSpace(t.Text) != "" {
		p.Full = web.Markdown(t.Text)
	}
	a.render(c, http.StatusOK, "notice", p)
}
