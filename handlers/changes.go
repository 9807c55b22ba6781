package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// listChanges is the merchant's change feed: its events in the order they
// were written, from an opaque cursor.
func (a *API) listChanges(c *gin.Context) error {
	for k, v := range c.Request.URL.Query() {
		if k != "after" && k != "limit" {
			return apperr.New(apperr.Invalid, "unknown query parameter %q", k).WithDetail("invalid_query")
		}
		if len(v) > 1 {
			return apperr.New(apperr.Invalid, "%s is given more than once", k).WithDetail("invalid_query")
		}
	}
	limit, err := queryInt(c, "limit", 100)
	if err != nil {
		return err
	}
	if limit < 1 || limit > consent.MaxChangesPage {
		return apperr.New(apperr.Invalid, "limit must be between 1 and %d", consent.MaxChangesPage).WithDetail("invalid_query")
	}
	after, err := consent.ParseChangesCursor(merchantID(c), c.Query("after"))
	if err != nil {
		return err
	}
	page, err := a.Ledger.Changes(c.Request.Context(), merchantID(c), after, int(limit))
	if err != nil {
		return err
	}
	out := make([]eventJSON, 0, len(page.Events))
	for _, e := range page.Events {
		out = append(out, toEventJSON(e))
	}
	c.JSON(http.StatusOK, gin.H{"changes": out, "next": page.Next.String(), "has_more": page.More})
	return nil
}
