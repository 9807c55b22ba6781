package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

type eventJSON struct {
	// Merchant is part of what the hash covers, so a merchant can verify
	// its chains from this API alone.
	Merchant       string    `json:"merchant_id"`
	Subject        string    `json:"subject"`
	Seq            int64     `json:"seq"`
	Purpose        string    `json:"purpose"`
	State          string    `json:"state"`
	NoticeVersion  int       `json:"notice_version"`
	Channel        string    `json:"channel"`
	Actor          string    `json:"actor"`
	RecordedAt     time.Time `json:"recorded_at"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	PrevHash       string    `json:"prev_hash"`
	Hash           string    `json:"hash"`
	// Field names the volunteered field of a provided or erased event.
	Field string `json:"field,omitempty"`
	// GivenAt, Source and Proof are set on imported decisions: when the
	// subject decided, where the merchant collected it, and its evidence.
	GivenAt *time.Time `json:"given_at,omitempty"`
	Source  string     `json:"source,omitempty"`
	Proof   string     `json:"proof,omitempty"`
	// Level is the privacy level chosen, on a privacy-level event.
	Level string `json:"level,omitempty"`
	// Prev is, on a decision, the subject's state for the purpose before
	// it ("undecided" for the first); Locale the language it was asked in.
	Prev   string `json:"prev,omitempty"`
	Locale string `json:"locale,omitempty"`
	// PrevNotice is the notice version the decision it replaces was
	// recorded under.
	PrevNotice int `json:"prev_notice,omitempty"`
}

func toEventJSON(e consent.Event) eventJSON {
	out := eventJSON{Merchant: e.MerchantID, Subject: e.SubjectID, Seq: e.Seq, Purpose: e.Purpose, State: string(e.State), NoticeVersion: e.NoticeVersion,
		Channel: string(e.Channel), Actor: e.Actor, RecordedAt: e.RecordedAt, IdempotencyKey: e.IdempotencyKey, PrevHash: e.PrevHash, Hash: e.Hash, Field: e.Field,
		Source: e.Source, Proof: e.Proof, Level: string(e.Level), Prev: string(e.Prev), Locale: e.Locale, PrevNotice: e.PrevNotice}
	if !e.GivenAt.IsZero() {
		at := e.GivenAt
		out.GivenAt = &at
	}
	return out
}

type decisionJSON struct {
	Subject       string     `json:"subject"`
	Purpose       string     `json:"purpose"`
	Allowed       bool       `json:"allowed"`
	Reason        string     `json:"reason"`
	NoticeVersion int        `json:"notice_version,omitempty"`
	Since         *time.Time `json:"since,omitempty"`
	// ReconsentBy is set with reconsent_due and reconsent_required.
	ReconsentBy *time.Time `json:"reconsent_by,omitempty"`
}

func toDecisionJSON(d consent.Decision) decisionJSON {
	out := decisionJSON{Subject: d.SubjectID, Purpose: d.Purpose, Allowed: d.Allowed, Reason: string(d.Reason), NoticeVersion: d.NoticeVersion}
	if !d.Since.IsZero() {
		since := d.Since
		out.Since = &since
	}
	if !d.ReconsentBy.IsZero() {
		by := d.ReconsentBy
		out.ReconsentBy = &by
	}
	return out
}

type putConsentRequest struct {
	State         consent.State `json:"state"`
	ExplicitOptIn bool          `json:"explicit_opt_in"`
	// Locale is the language the subject was asked in, when the merchant
	// knows it: analytics split decisions by it.
	Locale string `json:"locale"`
}

type consentResult struct {
	// Event is the event this request appended, or (when the subject's
	// state already said so) the event that decided it.
	Event    eventJSON    `json:"event"`
	Decision decisionJSON `json:"decision"`
	// Changed is false when the state already said so and nothing was appended.
	Changed bool `json:"changed"`
}

// putConsent records one decision through the ledger's one operation: 201
// with the event it appended, or 200 when the subject's state already
// said so (a PUT of the same state twice appends one event).
func (a *API) putConsent(c *gin.Context) error {
	var req putConsentRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request.Context()
	res, err := a.Ledger.Apply(ctx, consent.Choices{
		MerchantID: merchantID(c), SubjectID: c.Param("subject"), Channel: consent.ChannelAPI, Actor: actor(c),
		IdempotencyKey: c.GetHeader("Idempotency-Key"), Locale: req.Locale,
		Requests: []consent.Request{{Purpose: c.Param("purpose"), State: req.State, Explicit: req.ExplicitOptIn}},
	})
	if err != nil {
		return err
	}
	out := consentResult{Decision: toDecisionJSON(res.Decisions[0])}
	status := http.StatusOK
	switch decided := res.Decided(); {
	case res.Replayed:
		c.Header("Idempotent-Replayed", "true")
		out.Event, out.Changed = toEventJSON(res.Events[0]), true
	case len(decided) > 0:
		status, out.Event, out.Changed = http.StatusCreated, toEventJSON(decided[len(decided)-1]), true
	default:
		e, err := a.Ledger.Event(ctx, merchantID(c), c.Param("subject"), res.State.Purposes[c.Param("purpose")].Seq)
		if err != nil {
			return err
		}
		out.Event = toEventJSON(e)
	}
	c.JSON(status, out)
	return nil
}

type consentStateJSON struct {
	Purpose       string     `json:"purpose"`
	State         string     `json:"state,omitempty"`
	Allowed       bool       `json:"allowed"`
	Reason        string     `json:"reason"`
	Sensitive     bool       `json:"sensitive"`
	NoticeVersion int        `json:"notice_version,omitempty"`
	Channel       string     `json:"channel,omitempty"`
	Seq           int64      `json:"seq,omitempty"`
	UpdatedAt     *time.Time `json:"updated_at,omitempty"`
}

func (a *API) listConsents(c *gin.Context) error {
	ctx := c.Request.Context()
	rec, err := a.Ledger.StateOf(ctx, merchantID(c), c.Param("subject"))
	if err != nil {
		return err
	}
	ps, err := a.Purposes.List(ctx, merchantID(c))
	if err != nil {
		return err
	}
	ds, err := a.Ledger.DecideAll(ctx, merchantID(c), rec, ps)
	if err != nil {
		return err
	}
	out := make([]consentStateJSON, 0, len(ps))
	for i, p := range ps {
		d := ds[i]
		row := consentStateJSON{Purpose: p.Key, Allowed: d.Allowed, Reason: string(d.Reason), Sensitive: p.Sensitive}
		if st, ok := rec.Purposes[p.Key]; ok {
			at := st.At
			row.State, row.NoticeVersion, row.Channel, row.Seq, row.UpdatedAt = string(st.State), st.NoticeVersion, string(st.Channel), st.Seq, &at
		}
		out = append(out, row)
	}
	c.JSON(http.StatusOK, gin.H{"subject": rec.SubjectID, "seq": rec.Seq, "consents": out})
	return nil
}

func queryInt(c *gin.Context, name string, def int64) (int64, error) {
	v, ok := c.GetQuery(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, apperr.New(apperr.Invalid, "%s must be a whole number", name).WithDetail("invalid_query")
	}
	return n, nil
}

func (a *API) listEvents(c *gin.Context) error {
	after, err := queryInt(c, "after", 0)
	if err != nil {
		return err
	}
	if after < 0 {
		return apperr.New(apperr.Invalid, "after must be 0 or a sequence number").WithDetail("invalid_query")
	}
	limit, err := queryInt(c, "limit", 50)
	if err != nil {
		return err
	}
	if limit < 1 || limit > consent.MaxPage {
		return apperr.New(apperr.Invalid, "limit must be between 1 and %d", consent.MaxPage).WithDetail("invalid_query")
	}
	events, next, err := a.Ledger.Events(c.Request.Context(), merchantID(c), c.Param("subject"), after, int(limit))
	if err != nil {
		return err
	}
	out := make([]eventJSON, 0, len(events))
	for _, e := range events {
		out = append(out, toEventJSON(e))
	}
	body := gin.H{"events": out, "next_after": nil}
	if next > 0 {
		body["next_after"] = next
	}
	c.JSON(http.StatusOK, body)
	return nil
}
