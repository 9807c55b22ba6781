package handlers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/webhooks"
)

type createEndpointRequest struct {
	URL          string   `json:"url"`
	Types        []string `json:"types,omitempty"`
	Label        string   `json:"label,omitempty"`
	ContactEmail string   `json:"contact_email,omitempty"`
}

type endpointJSON struct {
	ID           string    `json:"id"`
	URL          string    `json:"url"`
	Types        []string  `json:"types"`
	Label        string    `json:"label"`
	ContactEmail string    `json:"contact_email,omitempty"`
	Status       string    `json:"status"`
	CreatedAt    time.Time `json:"created_at"`
	// Delivery state.
	Delivered      int64      `json:"delivered"`
	Pending        int        `json:"pending"`
	GivenUp        int64      `json:"given_up"`
	LastSuccess    *time.Time `json:"last_success,omitempty"`
	FailingSince   *time.Time `json:"failing_since,omitempty"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	// SecretRotating is when the previous secret stops signing, while it
	// still does.
	SecretRotating *time.Time `json:"previous_secret_expires_at,omitempty"`
}

func toEndpointJSON(v webhooks.View) endpointJSON {
	out := endpointJSON{ID: v.ID, URL: v.URL, Types: v.Types, Label: v.Label, ContactEmail: v.ContactEmail, Status: string(v.Status()),
		CreatedAt: v.CreatedAt, Delivered: v.State.Delivered, Pending: len(v.State.Pending), GivenUp: v.State.GivenUp,
		LastSuccess: timePtr(v.State.LastSuccess), FailingSince: timePtr(v.State.FailingSince), DisabledAt: timePtr(v.State.DisabledAt),
		DisabledReason: v.State.DisabledReason}
	if out.Types == nil {
		out.Types = webhooks.Types()
	}
	for _, s := range v.Secrets {
		if !s.ExpiresAt.IsZero() && s.ExpiresAt.After(time.Now()) {
			out.SecretRotating = timePtr(s.ExpiresAt)
		}
	}
	return out
}

func (a *API) createEndpoint(c *gin.Context) error {
	var req createEndpointRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	e, secret, err := a.Webhooks.Create(c.Request.Context(), merchantID(c), webhooks.Registration{URL: req.URL, Types: req.Types, Label: req.Label, ContactEmail: req.ContactEmail})
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/webhook-endpoints/"+e.ID)
	c.JSON(http.StatusCreated, gin.H{"endpoint": toEndpointJSON(webhooks.View{Endpoint: e}), "secret": secret})
	return nil
}

func (a *API) listEndpoints(c *gin.Context) error {
	vs, err := a.Webhooks.List(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	out := make([]endpointJSON, 0, len(vs))
	for _, v := range vs {
		out = append(out, toEndpointJSON(v))
	}
	c.JSON(http.StatusOK, gin.H{"endpoints": out})
	return nil
}

func (a *API) getEndpoint(c *gin.Context) error {
	v, err := a.Webhooks.Get(c.Request.Context(), merchantID(c), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toEndpointJSON(v))
	return nil
}

func (a *API) deleteEndpoint(c *gin.Context) error {
	if err := a.Webhooks.Delete(c.Request.Context(), merchantID(c), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (a *API) rotateEndpointSecret(c *gin.Context) error {
	e, secret, err := a.Webhooks.RotateSecret(c.Request.Context(), merchantID(c), c.Param("id"))
	if err != nil {
		return err
	}
	v, err := a.Webhooks.Get(c.Request.Context(), merchantID(c), e.ID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"endpoint": toEndpointJSON(v), "secret": secret})
	return nil
}

type attemptJSON struct {
	MessageID string     `json:"webhook_id"`
	Type      string     `json:"type"`
	Subject   string     `json:"subject"`
	Seq       int64      `json:"seq"`
	Attempt   int        `json:"attempt"`
	At        time.Time  `json:"at"`
	Status    int        `json:"status,omitempty"`
	Error     string     `json:"error,omitempty"`
	LatencyMS float64    `json:"latency_ms"`
	NextRetry *time.Time `json:"next_retry,omitempty"`
	Replay    bool       `json:"replay,omitempty"`
}

func (a *API) listAttempts(c *gin.Context) error {
	for k, v := range c.Request.URL.Query() {
		if k != "limit" || len(v) > 1 {
			return apperr.New(apperr.Invalid, "only limit may be given, once").WithDetail("invalid_query")
		}
	}
	limit, err := queryInt(c, "limit", 100)
	if err != nil {
		return err
	}
	if limit < 1 || limit > 1000 {
		return apperr.New(apperr.Invalid, "limit must be between 1 and 1000").WithDetail("invalid_query")
	}
	as, err := a.Webhooks.AttemptLog(c.Request.Context(), merchantID(c), c.Param("id"), int(limit))
	if err != nil {
		return err
	}
	out := make([]attemptJSON, 0, len(as))
	for _, at := range as {
		out = append(out, attemptJSON{MessageID: at.MessageID, Type: at.Type, Subject: at.Subject, Seq: at.Seq, Attempt: at.N, At: at.At,
			Status: at.Status, Error: at.Error, LatencyMS: float64(at.Latency.Microseconds()) / 1000, NextRetry: timePtr(at.NextRetry), Replay: at.Replay})
	}
	c.JSON(http.StatusOK, gin.H{"attempts": out})
	return nil
}

type replayRequest struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

func (a *API) replayEndpoint(c *gin.Context) error {
	var req replayRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	r, err := a.Webhooks.Replay(c.Request.Context(), merchantID(c), c.Param("id"), req.Since, req.Until)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, gin.H{"replay": r.N, "since": r.Since, "until": r.Until, "status": "queued"})
	return nil
}
