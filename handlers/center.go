package handlers

import (
	"net/http"
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
	Locales *locales.Bundle
	Pages   *web.Pages
	Mails   *web.Mails
	Mailer  mail.Sender
	Signin  *signin.Service
	Signer  *receipts.Signer
	// Receipts issues the signed receipt of every change and keeps it.
	Receipts *receipts.Issuer
	// BaseURL is the public URL, without a trailing slash; links in emails
	// start with it, and cookies are Secure when it is https.
	BaseURL string
	// EmailLimit and ClientLimit bound sign-in requests per address and per
	// client address.
	EmailLimit  *ratelimit.Limiter
	ClientLimit *ratelimit.Limiter
	// ReachLimit bounds the widget's anonymous signals per merchant and
	// client address.
	ReachLimit *ratelimit.Limiter
}

const (
	ctxMerchant  = "fineline.merchant"
	ctxLocalizer = "fineline.localizer"
	ctxSession   = "fineline.session"
	cookieLang   = "fl_lang"
	cookieSess   = "fl_session"
)

// codeCrossOrigin refuses a form posted from another site.
const codeCrossOrigin = "cross_origin"

// pageCSP is the policy of every page, framing aside: scripts, styles
// and images from Fineline itself only, no inline script, forms posted to
// Fineline only.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'"

// centerHeaders are the headers of every center page: a strict CSP with no
// inline script, no framing, no referrer (links carry tokens), no caching
// of pages that show personal choices.
func centerHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", pageCSP+"; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// withMerchant resolves the merchant of /c/:slug/ and the page language.
func (a *API) withMerchant(c *gin.Context) error {
	lang := a.Center.Locales.Pick(c.Query("lang"), cookieValue(c, cookieLang), c.GetHeader("Accept-Language"))
	if q := c.Query("lang"); q == lang {
		http.SetCookie(c.Writer, &http.Cookie{Name: cookieLang, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.secureCookies()})
	}
	c.Set(ctxLocalizer, a.Center.Locales.For(lang))
	slug := c.Param("slug")
	if !merchants.ValidSlug(slug) {
		return apperr.New(apperr.NotFound, "no such merchant")
	}
	m, err := a.Merchants.Store.MerchantBySlug(c.Request.Context(), slug)
	if err != nil {
		return err
	}
	if err := m.Active(); err != nil {
		return err
	}
	c.Set(ctxMerchant, m)
	return nil
}

// crossOriginGuard refuses state-changing requests sent from other sites.
func (a *API) crossOriginGuard(c *gin.Context) error {
	if err := a.cop.Check(c.Request); err != nil {
		return apperr.New(apperr.Forbidden, "cross-origin request").WithDetail(codeCrossOrigin)
	}
	return nil
}

// requireSession loads the signed-in subject, or shows the sign-in page.
func (a *API) requireSession(c *gin.Context) error {
	sess, err := a.Center.Signin.ParseSession(c.Request.Context(), merchant(c).ID, cookieValue(c, cookieSess))
	if err != nil {
		return err
	}
	// A session outliving the shopper's erasure (on another device) ends.
	if st, err := a.Ledger.StateOf(c.Request.Context(), sess.MerchantID, sess.SubjectID); err != nil {
		return err
	} else if st.Erased() {
		if err := a.Center.Signin.End(c.Request.Context(), sess); err != nil {
			return err
		}
		a.dropSessionCookie(c)
		return consent.ErrSubjectErased()
	}
	c.Set(ctxSession, sess)
	return a.honourGPC(c, sess.SubjectID)
}

// optionalSession loads the session when there is one, for pages anyone
// may read that show the signed-in shopper a little more.
func (a *API) optionalSession(c *gin.Context) error {
	sess, err := a.Center.Signin.ParseSession(c.Request.Context(), merchant(c).ID, cookieValue(c, cookieSess))
	if err != nil {
		return nil
	}
	c.Set(ctxSession, sess)
	return a.honourGPC(c, sess.SubjectID)
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

// askedIn is the language the page or widget asked the shopper in, as a
// decision records it ("" where no page asked).
func askedIn(c *gin.Context) string {
	if l := localizer(c); l != nil {
		return l.Lang
	}
	return ""
}

func session(c *gin.Context) (signin.Session, bool) {
	s, ok := c.Get(ctxSession)
	sess, _ := s.(signin.Session)
	return sess, ok
}

func (a *API) secureCookies() bool { return strings.HasPrefix(a.Center.BaseURL, "https://") }

// basePath is the center's root for the merchant: /c/<slug>/.
func basePath(c *gin.Context) string { return "/c/" + merchant(c).Slug + "/" }

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
// shopper: the domain decides what it withdraws (consent.GPCChoices).
func (a *API) honourGPC(c *gin.Context, subjectID string) error {
	if c.GetHeader("Sec-GPC") != "1" {
		return nil
	}
	ctx := c.Request.Context()
	m := merchant(c)
	ps, err := a.offeredPurposes(ctx, m.ID)
	if err != nil {
		return err
	}
	choices, ok := consent.GPCChoices(m.ID, subjectID, ps)
	if !ok {
		return nil
	}
	choices.Locale = askedIn(c)
	_, err = a.Ledger.Apply(ctx, choices)
	return err
}

// actorOf names the signed-in shopper's session as the actor of a change.
func actorOf(sess signin.Session) string { return "session:" + sess.ID }
