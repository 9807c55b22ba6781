package handlers

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/signin"
)

type unsubscribeHeadersJSON struct {
	ListUnsubscribe     string `json:"list_unsubscribe"`
	ListUnsubscribePost string `json:"list_unsubscribe_post"`
}

// unsubscribeHeaders gives the List-Unsubscribe headers (RFC 8058) for an
// email to the subject about one purpose.
func (a *API) unsubscribeHeaders(c *gin.Context) error {
	ctx := c.Request.Context()
	sub, err := a.Subjects.Live(ctx, merchantID(c), c.Param("subject"))
	if err != nil {
		return err
	}
	key := c.Query("purpose")
	if key == "" {
		return apperr.New(apperr.Invalid, "give ?purpose=").WithDetail("invalid_query")
	}
	if _, err := a.Purposes.Get(ctx, merchantID(c), key); err != nil {
		if apperr.Is(err, apperr.NotFound) {
			return apperr.New(apperr.Invalid, "unknown purpose %q", key).WithDetail(consent.CodeUnknownPurpose)
		}
		return err
	}
	tok := a.Center.Signin.UnsubscribeToken(signin.Unsubscribe{MerchantID: merchantID(c), SubjectID: sub.ID, Purpose: key})
	c.JSON(http.StatusOK, unsubscribeHeadersJSON{
		ListUnsubscribe:     "<" + a.Center.BaseURL + "/u/" + url.PathEscape(tok) + ">",
		ListUnsubscribePost: "List-Unsubscribe=One-Click",
	})
	return nil
}

type unsubscribePage struct {
	base
	PurposeName, Action string
	Done                bool
}

// unsubscribeTarget resolves a one-click token into its merchant (set on
// the request, as the center's pages expect) and purpose.
func (a *API) unsubscribeTarget(c *gin.Context) (signin.Unsubscribe, consent.Purpose, error) {
	c.Set(ctxLocalizer, a.Center.Locales.For(a.Center.Locales.Pick(c.Query("lang"), cookieValue(c, cookieLang), c.GetHeader("Accept-Language"))))
	u, err := a.Center.Signin.ParseUnsubscribe(c.Param("token"))
	if err != nil {
		return u, consent.Purpose{}, err
	}
	ctx := c.Request.Context()
	m, err := a.Merchants.Store.Merchant(ctx, u.MerchantID)
	if err != nil {
		return u, consent.Purpose{}, err
	}
	c.Set(ctxMerchant, m)
	p, err := a.Purposes.Get(ctx, u.MerchantID, u.Purpose)
	return u, p, err
}

// showUnsubscribe asks for confirmation and changes nothing: mail scanners
// fetch links.
func (a *API) showUnsubscribe(c *gin.Context) error {
	_, p, err := a.unsubscribeTarget(c)
	if err != nil {
		return err
	}
	pg := unsubscribePage{base: a.newPage(c), Action: c.Request.URL.Path}
	pg.PurposeName = p.TextFor(pg.L.Lang).Name
	return a.render(c, http.StatusOK, "unsubscribe", pg)
}

// oneClickUnsubscribe withdraws exactly the token's purpose (RFC 8058): a
// POST with List-Unsubscribe=One-Click, no cookie needed, no redirect, 200.
func (a *API) oneClickUnsubscribe(c *gin.Context) error {
	u, p, err := a.unsubscribeTarget(c)
	if err != nil {
		return err
	}
	if c.PostForm("List-Unsubscribe") != "One-Click" {
		return apperr.New(apperr.Invalid, "a one-click unsubscribe posts List-Unsubscribe=One-Click")
	}
	_, err = a.Ledger.Apply(c.Request.Context(), consent.Choices{MerchantID: u.MerchantID, SubjectID: u.SubjectID, Channel: consent.ChannelUnsubscribe,
		Actor: "one-click", Requests: []consent.Request{{Purpose: u.Purpose, State: consent.Withdrawn}}})
	if err != nil {
		return err
	}
	pg := unsubscribePage{base: a.newPage(c), Done: true}
	pg.PurposeName = p.TextFor(pg.L.Lang).Name
	return a.render(c, http.StatusOK, "unsubscribe", pg)
}

// gpcPolicy is /.well-known/gpc.json: this site honours Global Privacy Control.
func gpcPolicy(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=86400")
	c.JSON(http.StatusOK, gin.H{"gpc": true, "lastUpdate": "2026-11-22"})
}
