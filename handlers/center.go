package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/ratelimit"
	"github.com/fineline/fineline/receipts"
	"github.com/fineline/fineline/signin"
	"github.com/fineline/fineline/web"
)

// Center is what the hosted preference center needs beside the API's services.
type Center struct {
	Locales  *locales.Bundle
	Pages    *web.Pages
	Mails    *web.Mails
	Mailer   mail.Sender
	Signin   *signin.Service
	Signer   *receipts.Signer
	Receipts receipts.Store
	// BaseURL is the public URL, without a trailing slash; links in emails
	// start with it, and cookies are Secure when it is https.
	BaseURL string
	// Jurisdiction goes in receipts (e.g. "EU").
	Jurisdiction string
	// EmailLimit and ClientLimit bound sign-in requests per address and per
	// client address.
	EmailLimit  *ratelimit.Limiter
	ClientLimit *ratelimit.Limiter
}

const (
	ctxMerchant  = "fineline.merchant"
	ctxLocalizer = "fineline.localizer"
	ctxSession   = "fineline.session"
	cookieLang   = "fl_lang"
	cookieSess   = "fl_session"
)

// centerHeaders are the headers of every center page: a strict CSP with no
// inline script, no framing, no referrer (links carry tokens), no caching
// of pages that show personal choices.
func centerHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// withMerchant resolves the merchant of /c/:slug/ and the page language.
func (a *API) withMerchant(c *gin.Context) {
	lang := a.Center.Locales.Pick(c.Query("lang"), cookieValue(c, cookieLang), c.GetHeader("Accept-Language"))
	if q := c.Query("lang"); q == lang {
		http.SetCookie(c.Writer, &http.Cookie{Name: cookieLang, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.secureCookies()})
	}
	c.Set(ctxLocalizer, a.Center.Locales.For(lang))
	slug := c.Param("slug")
	if !merchants.ValidSlug(slug) {
		a.renderError(c, apperr.New(apperr.NotFound, "no such merchant"))
		return
	}
	m, err := a.Merchants.Store.MerchantBySlug(c.Request.Context(), slug)
	if err != nil {
		a.renderError(c, err)
		return
	}
	c.Set(ctxMerchant, m)
	c.Next()
}

// crossOriginGuard refuses state-changing requests sent from other sites.
func (a *API) crossOriginGuard(c *gin.Context) {
	if err := a.cop.Check(c.Request); err != nil {
		a.renderError(c, apperr.New(apperr.Forbidden, "cross-origin request").WithDetail("cross_origin"))
		return
	}
	c.Next()
}

// requireSession loads the signed-in subject, or shows the sign-in page.
func (a *API) requireSession(c *gin.Context) {
	sess, err := a.Center.Signin.ParseSession(c.Request.Context(), merchant(c).ID, cookieValue(c, cookieSess))
	if err != nil {
		a.renderError(c, err)
		return
	}
	c.Set(ctxSession, sess)
	if err := a.honourGPC(c, sess.SubjectID); err != nil {
		a.renderError(c, err)
		return
	}
	c.Next()
}

// optionalSession loads the session when there is one, for pages anyone
// may read that show the signed-in shopper a little more.
func (a *API) optionalSession(c *gin.Context) {
	if sess, err := a.Center.Signin.ParseSession(c.Request.Context(), merchant(c).ID, cookieValue(c, cookieSess)); err == nil {
		c.Set(ctxSession, sess)
		if err := a.honourGPC(c, sess.SubjectID); err != nil {
			a.renderError(c, err)
			return
		}
	}
	c.Next()
}

func cookieValue(c *gin.Context, name string) string {
	v, err := c.Cookie(name)
	if err != nil || len(v) > 4096 {
		return ""
	}
	return v
}

func merchant(c *gin.Context) merchants.Merchant {
	m, _ := c.Get(ctxMerchant)
	mm, _ := m.(merchants.Merchant)
	return mm
}

func localizer(c *gin.Context) *locales.Localizer {
	l, _ := c.Get(ctxLocalizer)
	ll, _ := l.(*locales.Localizer)
	return ll
}

func session(c *gin.Context) (signin.Session, bool) {
	s, ok := c.Get(ctxSession)
	sess, _ := s.(signin.Session)
	return sess, ok
}

func (a *API) secureCookies() bool { return strings.HasPrefix(a.Center.BaseURL, "https://") }

// basePath is the center's root for the merchant: /c/<slug>/.
func basePath(c *gin.Context) string { return "/c/" + merchant(c).Slug + "/" }

type langLink struct {
	Code, Name, URL string
	Current         bool
}

// page is what every center page shows.
type page struct {
	L            *locales.Localizer
	MerchantName string
	Base         string
	Languages    []langLink
	SignedIn     bool
	// Awaiting shows the banner: changed terms wait for the shopper.
	Awaiting bool
}

func (a *API) newPage(c *gin.Context) page {
	l := localizer(c)
	p := page{L: l, MerchantName: merchant(c).Name, Base: basePath(c)}
	if p.MerchantName == "" {
		p.MerchantName = "Fineline"
	}
	if sess, ok := session(c); ok {
		p.SignedIn = true
		aw, err := a.awaiting(c, sess.SubjectID)
		if err != nil {
			a.Log.WarnContext(c.Request.Context(), "changed-terms banner unavailable", "request_id", requestID(c), "err", err)
		}
		p.Awaiting = len(aw) > 0
	}
	for _, code := range locales.Supported() {
		// A page answering a POST (a refused form, a refused link) has no
		// address of its own to come back to: switch on the center's home.
		target, q := basePath(c), url.Values{}
		if c.Request.Method == http.MethodGet {
			target, q = c.Request.URL.Path, c.Request.URL.Query()
		}
		q.Set("lang", code)
		p.Languages = append(p.Languages, langLink{Code: code, Name: locales.Name(code), Current: code == l.Lang, URL: target + "?" + q.Encode()})
	}
	return p
}

// render writes a page; a template failure becomes a logged 500.
func (a *API) render(c *gin.Context, status int, name string, data any) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(status)
	if err := a.Center.Pages.Render(c.Writer, name, data); err != nil {
		a.Log.ErrorContext(c.Request.Context(), "render page", "request_id", requestID(c), "page", name, "err", err)
	}
}

type errorPage struct {
	page
	Title, Message, Next, NextText string
}

// renderError shows a localized error page for err and stops the chain.
func (a *API) renderError(c *gin.Context, err error) {
	if localizer(c) == nil {
		c.Set(ctxLocalizer, a.Center.Locales.For(a.Center.Locales.Pick("", cookieValue(c, cookieLang), c.GetHeader("Accept-Language"))))
	}
	p := errorPage{page: a.newPage(c)}
	l := p.L
	var ae *apperr.Error
	errors.As(err, &ae)
	code, detail := apperr.CodeOf(err), ""
	if ae != nil {
		detail = ae.Detail
	}
	status := statusOf(code)
	switch {
	case detail == "link_expired" || detail == "link_used" || detail == "link_invalid":
		p.Title, p.Message = l.T("err_link_title"), l.T("err_"+detail)
		p.Next, p.NextText = p.Base, l.T("next_signin")
		status = http.StatusGone
		if detail == "link_invalid" {
			status = http.StatusNotFound
		}
	case detail == "no_session":
		p.Title, p.Message = l.T("err_session_title"), l.T("err_session")
		p.Next, p.NextText = p.Base, l.T("next_signin")
	case detail == "cross_origin":
		p.Title, p.Message = l.T("err_forbidden_title"), l.T("err_cross_origin")
	case detail == "invalid_value" || detail == "field_needs_purpose":
		field, purposes := "…", "…"
		var fe *fieldError
		if errors.As(err, &fe) {
			field, purposes = fe.label, fe.purposes
		}
		p.Title, p.Message = l.T("err_field_title"), l.Tf("err_"+detail, "Field", field, "Purposes", purposes)
		p.Next, p.NextText = p.Base+"preferences", l.T("next_prefs")
		status = http.StatusBadRequest
	case code == apperr.NotFound:
		p.Title, p.Message = l.T("err_not_found_title"), l.T("err_not_found")
	case code == apperr.Invalid || code == apperr.TooLarge:
		p.Title, p.Message = l.T("err_forbidden_title"), l.T("err_bad_form")
		status = http.StatusBadRequest
	case code == apperr.TooManyRequests:
		p.Title, p.Message = l.T("err_rate_title"), l.T("err_rate_limited")
	case code == apperr.Unavailable:
		p.Title, p.Message = l.T("err_internal_title"), l.T("err_unavailable")
	default:
		a.Log.ErrorContext(c.Request.Context(), "center request failed", "request_id", requestID(c), "route", c.FullPath(), "err", err)
		p.Title, p.Message = l.T("err_internal_title"), l.T("err_internal")
		status = http.StatusInternalServerError
	}
	a.render(c, status, "error", p)
	c.Abort()
}

// formatTime shows a time the same way in every language: ISO date and UTC.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// categories lists a purpose's data in plain words.
func categories(l *locales.Localizer, p consent.Purpose) string {
	names := make([]string, 0, len(p.DataCategories))
	for _, k := range p.DataCategories {
		names = append(names, l.Category(k))
	}
	return strings.Join(names, ", ")
}

// honourGPC applies a Global Privacy Control signal (Sec-GPC: 1) from the
// signed-in shopper: every sale/share purpose not already withdrawn is
// withdrawn (channel gpc), unless a signal was recorded for it before and
// the shopper has opted in again since, which is their explicit choice.
func (a *API) honourGPC(c *gin.Context, subjectID string) error {
	if c.GetHeader("Sec-GPC") != "1" {
		return nil
	}
	ctx := c.Request.Context()
	m := merchant(c)
	ps, err := a.Purposes.List(ctx, m.ID)
	if err != nil {
		return err
	}
	rec, err := a.Ledger.State(ctx, m.ID, subjectID)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if !p.SaleOrShare {
			continue
		}
		st, ok := rec.Purposes[p.Key]
		if ok && (st.GPCSeq > 0 || st.State == consent.Withdrawn) {
			continue
		}
		if _, err := a.Ledger.Record(ctx, consent.Change{MerchantID: m.ID, SubjectID: subjectID, Purpose: p.Key, State: consent.Withdrawn,
			Channel: consent.ChannelGPC, Actor: "gpc-signal"}); err != nil {
			return err
		}
	}
	return nil
}
