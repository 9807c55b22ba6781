package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/signin"
)

// page adapts a center page handler that returns an error: the error is
// rendered as a localized page in one place, so no handler can show an
// error and carry on.
func (a *API) page(fn func(c *gin.Context) error) gin.HandlerFunc { return failWith(a.renderError, fn) }

// step adapts a center middleware that returns an error: an error stops
// the chain with its page, nil goes on to the next handler.
func (a *API) step(fn func(c *gin.Context) error) gin.HandlerFunc { return stepWith(a.renderError, fn) }

// failWith adapts a page handler: an error it returns is shown by fail.
func failWith(fail func(*gin.Context, error), fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			fail(c, err)
		}
	}
}

// stepWith adapts a middleware: an error it returns is shown by fail and
// stops the chain.
func stepWith(fail func(*gin.Context, error), fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			fail(c, err)
			return
		}
		c.Next()
	}
}

type langLink struct {
	Code, Name, URL string
	Current         bool
}

// base is what every center page shows.
type base struct {
	L            *locales.Localizer
	MerchantName string
	Base         string
	Languages    []langLink
	SignedIn     bool
	// Awaiting shows the banner: changed terms wait for the shopper.
	Awaiting bool
}

func (a *API) newPage(c *gin.Context) base {
	l := localizer(c)
	p := base{L: l, MerchantName: merchant(c).Name, Base: basePath(c)}
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
	p.Languages = languageLinks(c, basePath(c))
	return p
}

// languageLinks are the language switcher's links: this page in each
// language. A page answering a POST (a refused form, a refused link) has
// no address of its own to come back to: it switches on home. The
// confirmation of a done form (?done=) is not carried over.
func languageLinks(c *gin.Context, home string) []langLink {
	l := localizer(c)
	var out []langLink
	for _, code := range locales.Supported() {
		target, q := home, url.Values{}
		if c.Request.Method == http.MethodGet {
			target, q = c.Request.URL.Path, c.Request.URL.Query()
			q.Del("done")
		}
		q.Set("lang", code)
		out = append(out, langLink{Code: code, Name: locales.Name(code), Current: code == l.Lang, URL: target + "?" + q.Encode()})
	}
	return out
}

// render renders a page into memory first and only then writes the status
// and the page: a template that fails becomes the error page, never the
// intended status with half a body.
func (a *API) render(c *gin.Context, status int, name string, data any) error {
	b, err := a.Center.Pages.Render(name, data)
	if err != nil {
		return apperr.Wrap(err, "render page %s", name)
	}
	c.Data(status, "text/html; charset=utf-8", b)
	return nil
}

type errorPage struct {
	base
	Title, Message, Next, NextText string
}

// retryAfter is what a 503 asks callers to wait, in seconds.
const retryAfter = 5

// explain readies an error page for err: the page's language (a page
// refused before its language was picked gets the visitor's), and the
// error's code, detail and HTTP status.
func (a *API) explain(c *gin.Context, err error) (ae *apperr.Error, code apperr.Code, detail string, status int) {
	if localizer(c) == nil {
		c.Set(ctxLocalizer, a.Center.Locales.For(a.Center.Locales.Pick("", cookieValue(c, cookieLang), c.GetHeader("Accept-Language"))))
	}
	errors.As(err, &ae)
	code = apperr.CodeOf(err)
	if ae != nil {
		detail = ae.Detail
	}
	return ae, code, detail, statusOf(code)
}

// renderError shows a localized error page for err and stops the chain.
func (a *API) renderError(c *gin.Context, err error) {
	_, code, detail, status := a.explain(c, err)
	p := errorPage{base: a.newPage(c)}
	l := p.L
	switch {
	case detail == signin.CodeLinkExpired || detail == signin.CodeLinkUsed || detail == signin.CodeLinkInvalid:
		p.Title, p.Message = l.T("err_link_title"), l.T("err_"+detail)
		p.Next, p.NextText = p.Base, l.T("next_signin")
		status = http.StatusGone
		if detail == signin.CodeLinkInvalid {
			status = http.StatusNotFound
		}
	case detail == signin.CodeNoSession:
		p.Title, p.Message = l.T("err_session_title"), l.T("err_session")
		p.Next, p.NextText = p.Base, l.T("next_signin")
	case detail == codeCrossOrigin:
		p.Title, p.Message = l.T("err_forbidden_title"), l.T("err_cross_origin")
	case detail == fields.CodeInvalidValue || detail == consent.CodeFieldNeedsPurpose:
		field, purposes := a.fieldWords(c, err)
		p.Title, p.Message = l.T("err_field_title"), l.Tf("err_"+detail, "Field", field, "Purposes", purposes)
		p.Next, p.NextText = p.Base+"preferences", l.T("next_prefs")
		status = http.StatusBadRequest
	case detail == codeEraseUnconfirmed:
		p.Title, p.Message = l.T("erase_title"), l.T("err_erase_unconfirmed")
		p.Next, p.NextText = p.Base+"erase", l.T("next_erase")
		status = http.StatusBadRequest
	case detail == consent.CodeSubjectErased:
		p.Title, p.Message = l.T("erased_title"), l.Tf("err_subject_erased", "Merchant", p.MerchantName)
		status = http.StatusConflict
	case detail == merchants.CodeSuspended:
		p.Title, p.Message = l.T("err_suspended_title"), l.T("err_suspended")
	case code == apperr.NotFound:
		p.Title, p.Message = l.T("err_not_found_title"), l.T("err_not_found")
	case code == apperr.Invalid || code == apperr.TooLarge:
		p.Title, p.Message = l.T("err_forbidden_title"), l.T("err_bad_form")
		status = http.StatusBadRequest
	case code == apperr.TooManyRequests:
		p.Title, p.Message = l.T("err_rate_title"), l.T("err_rate_limited")
	default:
		p.Title, p.Message, status = a.serverFault(c, "center", err)
	}
	a.abortWithPage(c, status, "error", p)
}

// serverFault logs an error a page cannot explain (the store is away, or
// a fault of ours), counts a store error, and says what the page tells:
// its title, its message and its status.
func (a *API) serverFault(c *gin.Context, where string, err error) (title, message string, status int) {
	l := localizer(c)
	if apperr.CodeOf(err) == apperr.Unavailable {
		if a.Metrics != nil {
			a.Metrics.StoreError()
		}
		a.Log.ErrorContext(c.Request.Context(), where+" request failed: store unavailable", "request_id", requestID(c), "route", c.FullPath(), "err", err)
		c.Header("Retry-After", strconv.Itoa(retryAfter))
		return l.T("err_unavailable_title"), l.T("err_unavailable"), http.StatusServiceUnavailable
	}
	a.Log.ErrorContext(c.Request.Context(), where+" request failed", "request_id", requestID(c), "route", c.FullPath(), "err", err)
	return l.T("err_internal_title"), l.T("err_internal"), http.StatusInternalServerError
}

// abortWithPage stops the chain with an error page (a bare status if the
// page itself fails to render).
func (a *API) abortWithPage(c *gin.Context, status int, name string, p any) {
	b, err := a.Center.Pages.Render(name, p)
	if err != nil {
		a.Log.ErrorContext(c.Request.Context(), "render error page", "request_id", requestID(c), "page", name, "err", err)
		c.AbortWithStatus(status)
		return
	}
	c.Abort()
	c.Data(status, "text/html; charset=utf-8", b)
}

// fieldWords names, in the page's language, the field a refused value is
// for and the purposes it needs.
func (a *API) fieldWords(c *gin.Context, err error) (field, purposes string) {
	key, needs := "", []string(nil)
	var ve *fields.ValueError
	var ne *consent.FieldNeedsPurposeError
	switch {
	case errors.As(err, &ve):
		key = ve.Field
	case errors.As(err, &ne):
		key, needs = ne.Field, ne.Purposes
	}
	field, purposes = "…", "…"
	if key == "" || a.Fields == nil {
		return field, purposes
	}
	l := localizer(c)
	ctx := c.Request.Context()
	if f, ferr := a.Fields.Get(ctx, merchant(c).ID, key); ferr == nil {
		field = f.TextFor(l.Lang).Label
		if needs == nil {
			needs = f.Purposes
		}
	}
	if ps, perr := a.Purposes.List(ctx, merchant(c).ID); perr == nil && len(needs) > 0 {
		purposes = purposeNames(l, ps, needs)
	}
	return field, purposes
}
