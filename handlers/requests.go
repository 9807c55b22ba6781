package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/requests"
)

type requestJSON struct {
	ID          string     `json:"id"`
	Subject     string     `json:"subject"`
	Kind        string     `json:"kind"`
	Status      string     `json:"status"`
	ReceivedAt  time.Time  `json:"received_at"`
	DueAt       time.Time  `json:"due_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	Note        string     `json:"note,omitempty"`
}

func toRequestJSON(r requests.Request) requestJSON {
	out := requestJSON{ID: r.ID, Subject: r.SubjectID, Kind: string(r.Kind), Status: string(r.Status), ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, Note: r.Note}
	if !r.CompletedAt.IsZero() {
		at := r.CompletedAt
		out.CompletedAt = &at
	}
	return out
}

// listRequests answers GET /v1/requests: the merchant's requests in the
// order received, a page at a time.
func (a *API) listRequests(c *gin.Context) error {
	limit := 100
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return apperr.New(apperr.Invalid, "limit must be a number")
		}
		limit = n
	}
	rs, err := a.Requests.List(c.Request.Context(), merchantID(c), c.Query("after"), limit)
	if err != nil {
		return err
	}
	out := struct {
		Requests []requestJSON `json:"requests"`
		Next     string        `json:"next,omitempty"`
	}{Requests: make([]requestJSON, 0, len(rs))}
	for _, r := range rs {
		out.Requests = append(out.Requests, toRequestJSON(r))
	}
	if len(rs) == limit {
		out.Next = rs[len(rs)-1].ID
	}
	c.JSON(http.StatusOK, out)
	return nil
}

type completeRequestBody struct {
	Note string `json:"note"`
}

// completeRequest answers POST /v1/requests/{id}/complete.
func (a *API) completeRequest(c *gin.Context) error {
	var body completeRequestBody
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	r, err := a.Requests.Complete(c.Request.Context(), merchantID(c), c.Param("id"), body.Note)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toRequestJSON(r))
	return nil
}

// askRequest records the signed-in shopper's request about data held
// elsewhere and shows it on their data page.
func (a *API) askRequest(c *gin.Context) error {
	kind, err := requests.ParseKind(c.PostForm("kind"))
	if err != nil {
		return err
	}
	sess, _ := session(c)
	if _, err := a.Requests.Create(c.Request.Context(), merchant(c).ID, sess.SubjectID, kind); err != nil {
		return err
	}
	c.Redirect(http.StatusSeeOther, basePath(c)+"data?requested="+string(kind)+"#requests")
	return nil
}
