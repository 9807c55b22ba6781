package handlers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/reach"
)

// reachRequest is one anonymous signal of the widget: no device id, token
// or cookie comes with it (see the reach package).
type reachRequest struct {
	Event       string `json:"event"`
	Button      string `json:"button"`
	Layer       int    `json:"layer"`
	AfterBanner bool   `json:"after_banner"`
	Clicks      int    `json:"clicks"`
	Granted     bool   `json:"granted"`
	Withdrew    bool   `json:"withdrew"`
}

// widgetReach answers POST /w/v1/{slug}/reach: it counts what the banner
// met on the merchant's day. The client's address bounds how many signals
// it may send (in memory, for a minute) and is never stored.
func (a *API) widgetReach(c *gin.Context) error {
	m := merchant(c)
	if isPreview(c) {
		c.Status(http.StatusNoContent) // the console's preview is no visit
		return nil
	}
	if !a.Center.ReachLimit.Allow(m.ID + "/" + c.ClientIP()) {
		return apperr.New(apperr.TooManyRequests, "too many signals from this address; try again in a minute")
	}
	var req reachRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	s := reach.Signal{Event: reach.Event(req.Event), Button: reach.Button(req.Button), Layer: req.Layer, AfterBanner: req.AfterBanner,
		Clicks: req.Clicks, Granted: req.Granted, Withdrew: req.Withdrew}
	if err := s.Validate(); err != nil {
		return err
	}
	a.Reach.Add(m.ID, time.Now().In(m.Location()), s)
	c.Status(http.StatusNoContent)
	return nil
}
