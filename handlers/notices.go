package handlers

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/notices"
)

type noticeJSON struct {
	Version     int                        `json:"version"`
	Status      string                     `json:"status"`
	Texts       map[string]notices.Summary `json:"texts"`
	PolicyURL   string                     `json:"policy_url,omitempty"`
	Material    bool                       `json:"material"`
	Purposes    []string                   `json:"purposes"`
	CreatedAt   time.Time                  `json:"created_at"`
	PublishedAt *time.Time                 `json:"published_at,omitempty"`
	EffectiveAt *time.Time                 `json:"effective_at,omitempty"`
	// ReconsentBy is when consent under older versions stops counting for
	// the affected purposes (effective time plus grace period).
	ReconsentBy *time.Time `json:"reconsent_by,omitempty"`
	// Wordings are the purposes' new words this version brings.
	Wordings []wordingJSON `json:"wordings"`
}

type wordingJSON struct {
	Purpose        string                  `json:"purpose"`
	Texts          map[string]consent.Text `json:"texts"`
	DataCategories []string                `json:"data_categories,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toNoticeJSON(v notices.Version) noticeJSON {
	out := noticeJSON{Version: v.Number, Status: string(v.Status), Texts: v.Texts, PolicyURL: v.PolicyURL, Material: v.Material,
		Purposes: v.Purposes, CreatedAt: v.CreatedAt, PublishedAt: timePtr(v.PublishedAt), EffectiveAt: timePtr(v.EffectiveAt)}
	if out.Purposes == nil {
		out.Purposes = []string{}
	}
	if v.Material {
		out.ReconsentBy = timePtr(v.Deadline)
	}
	out.Wordings = []wordingJSON{}
	for _, w := range v.Wordings {
		texts := w.Texts
		if texts == nil {
			texts = map[string]consent.Text{}
		}
		out.Wordings = append(out.Wordings, wordingJSON{Purpose: w.Purpose, Texts: texts, DataCategories: w.DataCategories})
	}
	return out
}

type noticeRequest struct {
	Texts     map[string]notices.Summary `json:"texts"`
	PolicyURL string                     `json:"policy_url"`
	Material  bool                       `json:"material"`
	Purposes  []string                   `json:"purposes"`
}

func (r noticeRequest) content() notices.Content {
	return notices.Content{Texts: r.Texts, PolicyURL: r.PolicyURL, Material: r.Material, Purposes: r.Purposes}
}

// knownPurposes tells whether a key is one of the merchant's purposes.
func (a *API) knownPurposes(ctx context.Context, merchantID string) (func(string) bool, error) {
	ps, err := a.Purposes.List(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	keys := make(map[string]bool, len(ps))
	for _, p := range ps {
		keys[p.Key] = true
	}
	return func(k string) bool { return keys[k] }, nil
}

func versionParam(c *gin.Context) (int, error) {
	n, err := strconv.Atoi(c.Param("version"))
	if err != nil || n < 1 {
		return 0, apperr.New(apperr.NotFound, "no such notice version")
	}
	return n, nil
}

func (a *API) createNotice(c *gin.Context) error {
	var req noticeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	known, err := a.knownPurposes(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	v, err := a.Notices.Create(c.Request.Context(), merchantID(c), req.content(), known)
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/notices/"+strconv.Itoa(v.Number))
	c.JSON(http.StatusCreated, toNoticeJSON(v))
	return nil
}

func (a *API) updateNotice(c *gin.Context) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	var req noticeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	known, err := a.knownPurposes(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	v, err := a.Notices.Update(c.Request.Context(), merchantID(c), n, req.content(), known)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toNoticeJSON(v))
	return nil
}

func (a *API) discardNotice(c *gin.Context) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	if err := a.Notices.Discard(c.Request.Context(), merchantID(c), n); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

type publishRequest struct {
	// EffectiveAt is when the version takes effect; absent: now.
	EffectiveAt *time.Time `json:"effective_at"`
	// GracePeriodDays keeps consent under older versions counting this
	// many days after the effective time.
	GracePeriodDays int `json:"grace_period_days"`
}

func (a *API) publishNotice(c *gin.Context) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	var req publishRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var at time.Time
	if req.EffectiveAt != nil {
		at = *req.EffectiveAt
	}
	v, err := a.publishVersion(c.Request.Context(), merchantID(c), n, at, req.GracePeriodDays)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toNoticeJSON(v))
	return nil
}

// publishVersion publishes a draft, effective at at (zero: now) with a
// grace period of graceDays (bounded here, before it becomes a duration
// that could overflow): the API and the console both publish this way.
// The domain queues a material change's announcement.
func (a *API) publishVersion(ctx context.Context, merchantID string, n int, at time.Time, graceDays int) (notices.Version, error) {
	if graceDays < 0 || graceDays > 366 {
		return notices.Version{}, apperr.New(apperr.Invalid, "grace_period_days must be between 0 and 366").WithDetail("invalid_grace_period")
	}
	return a.Notices.Publish(ctx, merchantID, n, at, time.Duration(graceDays)*24*time.Hour)
}

func (a *API) listNotices(c *gin.Context) error {
	vs, err := a.Notices.List(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	out := make([]noticeJSON, 0, len(vs))
	for _, v := range vs {
		out = append(out, toNoticeJSON(v))
	}
	c.JSON(http.StatusOK, gin.H{"notices": out})
	return nil
}

func (a *API) getNotice(c *gin.Context) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	v, err := a.Notices.Get(c.Request.Context(), merchantID(c), n)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toNoticeJSON(v))
	return nil
}

func (a *API) currentNotice(c *gin.Context) error {
	v, err := a.Notices.Current(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toNoticeJSON(v))
	return nil
}

type announcementJSON struct {
	Version  int           `json:"version"`
	Built    bool          `json:"built"`
	Queued   int           `json:"queued"`
	Sent     int           `json:"sent"`
	Failed   int           `json:"failed"`
	Skipped  int           `json:"skipped"`
	Failures []failureJSON `json:"failures"`
}

type failureJSON struct {
	Subject  string `json:"subject"`
	Attempts int    `json:"attempts"`
	Reason   string `json:"reason"`
}

// noticeAnnouncement reports how the announcement of a material version
// is going.
func (a *API) noticeAnnouncement(c *gin.Context) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	if a.Announcer == nil {
		return apperr.New(apperr.NotFound, "this version was not announced")
	}
	p, err := a.Announcer.Progress(c.Request.Context(), merchantID(c), n)
	if err != nil {
		return err
	}
	out := announcementJSON{Version: n, Built: p.Built, Queued: p.Queued, Sent: p.Sent, Failed: p.Failed, Skipped: p.Skipped, Failures: []failureJSON{}}
	for _, f := range p.Failures {
		out.Failures = append(out.Failures, failureJSON{Subject: f.SubjectID, Attempts: f.Attempts, Reason: f.Reason})
	}
	c.JSON(http.StatusOK, out)
	return nil
}
