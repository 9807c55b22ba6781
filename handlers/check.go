package handlers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/access"
	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

func (a *API) check(c *gin.Context) error {
	subject, purpose := c.Query("subject"), c.Query("purpose")
	if subject == "" || purpose == "" {
		return apperr.New(apperr.Invalid, "give both ?subject= and ?purpose=").WithDetail("invalid_query")
	}
	d, err := a.Ledger.Check(c.Request.Context(), merchantID(c), subject, purpose)
	if err != nil {
		return err
	}
	a.countAccess(c, access.Check, d, time.Now())
	if a.Metrics != nil {
		a.Metrics.Check(d.Reason)
	}
	c.JSON(http.StatusOK, toDecisionJSON(d))
	return nil
}

// countAccess counts, for the subject's "who asked about me", that the
// calling key asked about them. A subject without events (perhaps not one
// the merchant has at all) or erased is not counted: the counts would hold
// an id and nothing else.
func (a *API) countAccess(c *gin.Context, kind access.Kind, d consent.Decision, at time.Time) {
	if a.Access == nil || !d.AboutKnownSubject() {
		return
	}
	a.Access.Of(kind).Count(merchantID(c), d.SubjectID, actor(c), d.Purpose, at)
}

type checkManyRequest struct {
	Purpose  string   `json:"purpose"`
	Subjects []string `json:"subjects"`
}

type batchDecisionJSON struct {
	Subject     string     `json:"subject"`
	Allowed     bool       `json:"allowed"`
	Reason      string     `json:"reason"`
	ReconsentBy *time.Time `json:"reconsent_by,omitempty"`
}

func (a *API) checkMany(c *gin.Context) error {
	var req checkManyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ds, err := a.Ledger.CheckMany(c.Request.Context(), merchantID(c), req.Purpose, req.Subjects)
	if err != nil {
		return err
	}
	out := make([]batchDecisionJSON, len(ds))
	now := time.Now()
	for i, d := range ds {
		a.countAccess(c, access.Check, d, now)
		if a.Metrics != nil {
			a.Metrics.Check(d.Reason)
		}
		out[i] = batchDecisionJSON{Subject: d.SubjectID, Allowed: d.Allowed, Reason: string(d.Reason)}
		if !d.ReconsentBy.IsZero() {
			by := d.ReconsentBy
			out[i].ReconsentBy = &by
		}
	}
	c.JSON(http.StatusOK, gin.H{"purpose": req.Purpose, "decisions": out})
	return nil
}
