package handlers

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// changeJSON is an event as the feed gives it: with its change type.
type changeJSON struct {
	Type string `json:"type"`
	eventJSON
}

// listChanges is the merchant's change feed: its events in the order they
// were written, from an opaque cursor.
func (a *API) listChanges(c *gin.Context) error {
	for k, v := range c.Request.URL.Query() {
		if k != "after" && k != "limit" && k != "types" {
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
	keep, err := typesFilter(c.Query("types"))
	if err != nil {
		return err
	}
	page, err := a.Ledger.Changes(c.Request.Context(), merchantID(c), after, int(limit), keep)
	if err != nil {
		return err
	}
	out := make([]changeJSON, 0, len(page.Events))
	for _, e := range page.Events {
		out = append(out, changeJSON{Type: e.Type(), eventJSON: toEventJSON(e)})
	}
	c.JSON(http.StatusOK, gin.H{"changes": out, "next": page.Next.String(), "has_more": page.More})
	return nil
}

// typesFilter parses types= (comma-separated change types; empty: all).
func typesFilter(s string) (func(consent.Event) bool, error) {
	if s == "" {
		return nil, nil
	}
	want := map[string]bool{}
	for _, t := range strings.Split(s, ",") {
		if !slices.Contains(consent.FeedTypes(), t) {
			return nil, apperr.New(apperr.Invalid, "types: %q is not one of %s", t, strings.Join(consent.FeedTypes(), ", ")).WithDetail("invalid_query")
		}
		want[t] = true
	}
	return func(e consent.Event) bool { return want[e.Type()] }, nil
}
