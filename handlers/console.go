package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/signin"
	"github.com/fineline/fineline/staff"
)

// The merchant console lives under /m/<slug>/: its own cookie on its own
// path, its own session audience, and every action checked against the
// signed-in member's role, re-read on every request.
const (
	cookieStaff = "fl_staff"
	ctxStaff    = "fineline.staff"
)

// staffSession is the signed-in member of a console request.
type staffSession struct {
	Session signin.StaffSession
	Member  staff.Member
}

func consolePath(c *gin.Context) string { return "/m/" + merchant(c).Slug + "/" }

func signedInStaff(c *gin.Context) (staffSession, bool) {
	v, ok := c.Get(ctxStaff)
	s, _ := v.(staffSession)
	return s, ok
}

// consoleRoutes lists the console's pages: sign-in first, then the pages
// that need a member, each POST behind the cross-origin guard and the
// role it needs.
func (a *API) consoleRoutes(r *gin.Engine) {
	m := r.Group("/m/:slug", centerHeaders, limitBody(maxConsoleForm), a.consoleStep(a.withMerchant))
	m.GET("/", a.consoleStep(a.optionalStaff), a.console(a.consoleHome))
	m.GET("/signin/sent", a.console(a.consoleLinkSent))
	m.GET("/link", a.console(a.consoleShowLink))
	post := m.Group("", a.consoleStep(a.crossOriginGuard), a.consoleStep(parseForm))
	post.POST("/signin", a.console(a.consoleRequestLink))
	post.POST("/link", a.console(a.consoleUseLink))
	post.POST("/signout", a.console(a.consoleSignOut))

	in := m.Group("", a.consoleStep(a.requireStaff))
	in.GET("/purposes", a.console(a.consolePurposes))
	in.GET("/purposes/:key", a.console(a.consolePurpose))
	in.GET("/notices", a.console(a.consoleNotices))
	in.GET("/notices/:version", a.console(a.consoleNotice))
	in.GET("/fields", a.console(a.consoleFields))
	in.GET("/offers", a.console(a.consoleOffers))
	in.GET("/widget", a.console(a.consoleWidget))
	in.GET("/widget/preview", a.console(a.consoleWidgetPreview))
	in.GET("/keys", a.console(a.consoleKeys))
	in.GET("/staff", a.console(a.consoleStaff))
	in.GET("/audit", a.console(a.consoleAudit))
	if a.Reports != nil {
		in.GET("/analytics", a.console(a.consoleAnalytics))
		in.GET("/analytics.csv", a.console(a.consoleAnalyticsCSV))
	}

	// forms are the POSTs of signed-in members: guarded, read whole, and
	// allowed to the roles that may act.
	forms := func(act staff.Action) *gin.RouterGroup {
		return in.Group("", a.consoleStep(a.crossOriginGuard), a.consoleStep(parseForm), a.consoleStep(a.allow(act)))
	}
	edit := forms(staff.Configure)
	edit.POST("/purposes", a.console(a.consoleCreatePurpose))
	edit.POST("/purposes/:key", a.console(a.consoleRewordPurpose))
	edit.POST("/purposes/:key/retire", a.console(a.consoleRetirePurpose))
	edit.POST("/notices", a.console(a.consoleCreateNotice))
	edit.POST("/notices/:version", a.console(a.consoleUpdateNotice))
	edit.POST("/notices/:version/publish", a.console(a.consolePublishNotice))
	edit.POST("/notices/:version/discard", a.console(a.consoleDiscardNotice))
	edit.POST("/fields", a.console(a.consoleCreateField))
	edit.POST("/offers", a.console(a.consoleCreateOffer))
	edit.POST("/widget", a.console(a.consoleSaveWidget))

	own := forms(staff.Administer)
	own.POST("/keys", a.consoleStep(a.requireFresh), a.console(a.consoleCreateKey))
	own.POST("/keys/:id/revoke", a.consoleStep(a.requireFresh), a.console(a.consoleRevokeKey))
	own.POST("/staff", a.consoleStep(a.requireFresh), a.console(a.consoleInvite))
	own.POST("/staff/:id/remove", a.consoleStep(a.requireFresh), a.console(a.consoleRemoveStaff))
}

// maxConsoleForm bounds a console form: a notice's texts in four
// languages fit.
const maxConsoleForm = 2 << 20

// parseForm reads a form whole before anything acts on it: a form over
// the limit is refused (413), never read as an empty one.
func parseForm(c *gin.Context) error {
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return apperr.New(apperr.TooLarge, "the form is over %d MiB", maxConsoleForm>>20).WithDetail("payload_too_large")
		}
		return apperr.New(apperr.Invalid, "the form could not be read").WithDetail("invalid_form")
	}
	return nil
}

// console adapts a console page handler that returns an error: the error
// becomes the console's error page in one place.
func (a *API) console(fn func(c *gin.Context) error) gin.HandlerFunc {
	return failWith(a.consoleError, fn)
}

// consoleStep adapts a console middleware that returns an error.
func (a *API) consoleStep(fn func(c *gin.Context) error) gin.HandlerFunc {
	return stepWith(a.consoleError, fn)
}

// staffOf reads the console session of the request and the member it
// names, as the member is now (a removed member or a lowered role counts
// at once).
func (a *API) staffOf(c *gin.Context) (staffSession, error) {
	ctx := c.Request.Context()
	sess, err := a.Center.Signin.ParseStaffSession(ctx, merchant(c).ID, cookieValue(c, cookieStaff))
	if err != nil {
		return staffSession{}, err
	}
	m, err := a.Staff.Session(ctx, sess.MerchantID, sess.StaffID, sess.IssuedAt)
	if err != nil {
		return staffSession{}, err
	}
	return staffSession{Session: sess, Member: m}, nil
}

// requireStaff loads the signed-in member, or shows the sign-in page.
func (a *API) requireStaff(c *gin.Context) error {
	s, err := a.staffOf(c)
	if err != nil {
		return err
	}
	c.Set(ctxStaff, s)
	return nil
}

// optionalStaff loads the member when there is one (the console's home is
// the sign-in form otherwise).
func (a *API) optionalStaff(c *gin.Context) error {
	s, err := a.staffOf(c)
	if err == nil {
		c.Set(ctxStaff, s)
		return nil
	}
	if apperr.CodeOf(err) == apperr.Unauthorized {
		return nil
	}
	return err
}

// allow refuses, on the server, what the member's role does not allow.
func (a *API) allow(act staff.Action) func(c *gin.Context) error {
	return func(c *gin.Context) error {
		s, _ := signedInStaff(c)
		return s.Member.Allow(act)
	}
}

// requireFresh asks for a recent sign-in before keys are made or staff invited.
func (a *API) requireFresh(c *gin.Context) error {
	s, _ := signedInStaff(c)
	return a.Staff.RequireFresh(s.Session.IssuedAt)
}

// audit records what the signed-in member just did. The change is made
// by then: an entry the store refuses is logged in full (no secrets are
// in entries) rather than turning a done change into an error page.
func (a *API) audit(c *gin.Context, action, target, detail string) {
	s, _ := signedInStaff(c)
	a.record(c, s.Member.Email, action, target, detail)
}

func (a *API) record(c *gin.Context, actor, action, target, detail string) {
	if err := a.Staff.Record(c.Request.Context(), merchant(c).ID, actor, action, target, detail); err != nil {
		a.Log.ErrorContext(c.Request.Context(), "audit entry not recorded", "request_id", requestID(c), "merchant_id", merchant(c).ID,
			"actor", actor, "action", action, "target", target, "detail", detail, "err", err)
	}
}

// navItem is one entry of the console's navigation.
type navItem struct {
	URL, Label string
	Current    bool
}

// consoleBase is what every console page shows.
type consoleBase struct {
	L            *locales.Localizer
	MerchantName string
	Base         string
	// Center is the merchant's preference center, for previews.
	Center    string
	Languages []langLink
	Nav       []navItem
	// Me is the signed-in member (nil on the sign-in pages).
	Me                      *staff.Member
	RoleName                string
	CanConfigure, CanManage bool
	// Flash says what the last action did.
	Flash string
}

// consoleSections are the console's pages, in the navigation's order.
func consoleSections() []string {
	return []string{"overview", "analytics", "purposes", "notices", "fields", "offers", "widget", "keys", "staff", "audit"}
}

// doneMessages are the confirmations a redirect may ask for (?done=).
func doneMessages() []string {
	return []string{"purpose_created", "purpose_retired", "draft_created", "draft_saved", "published", "discarded",
		"key_revoked", "invited", "invite_unsent", "removed", "widget_saved", "field_created", "offer_created"}
}

func (a *API) consolePage(c *gin.Context, section string) consoleBase {
	l := localizer(c)
	p := consoleBase{L: l, MerchantName: merchant(c).Name, Base: consolePath(c), Center: basePath(c)}
	if s, ok := signedInStaff(c); ok {
		me := s.Member
		p.Me, p.RoleName = &me, l.T("role_"+string(me.Role))
		p.CanConfigure, p.CanManage = me.Role.May(staff.Configure), me.Role.May(staff.Administer)
		for _, sec := range consoleSections() {
			u := p.Base
			if sec != "overview" {
				u += sec
			}
			p.Nav = append(p.Nav, navItem{URL: u, Label: l.T("console_nav_" + sec), Current: sec == section})
		}
	}
	if d := c.Query("done"); d != "" {
		for _, k := range doneMessages() {
			if k == d {
				p.Flash = l.T("console_done_" + k)
			}
		}
	}
	p.Languages = languageLinks(c, consolePath(c))
	return p
}

// done redirects after a successful form to a page that confirms it.
func done(c *gin.Context, path, what string) {
	c.Redirect(http.StatusSeeOther, consolePath(c)+path+"?done="+what)
}

type consoleSigninPage struct {
	consoleBase
	Email, Message, Error string
}

// consoleHome is the sign-in form, or the overview for a member.
func (a *API) consoleHome(c *gin.Context) error {
	if _, ok := signedInStaff(c); ok {
		return a.consoleOverview(c)
	}
	p := consoleSigninPage{consoleBase: a.consolePage(c, "")}
	if c.Query("signed_out") == "1" {
		p.Message = p.L.T("signed_out")
	}
	return a.render(c, http.StatusOK, "console/signin", p)
}

// consoleRequestLink emails a console link to a member of the merchant.
// The answer is the same whether or not the address is staff, and the
// lookup and the mail happen after it.
func (a *API) consoleRequestLink(c *gin.Context) error {
	p := consoleSigninPage{consoleBase: a.consolePage(c, ""), Email: c.PostForm("email")}
	if !consent.ValidEmail(p.Email) {
		p.Error = p.L.T("email_invalid")
		return a.render(c, http.StatusBadRequest, "console/signin", p)
	}
	m := merchant(c)
	if !a.Center.ClientLimit.Allow(c.ClientIP()) || !a.Center.EmailLimit.Allow("staff/"+staff.IDFor(m.ID, p.Email)) {
		p.Error = p.L.T("err_rate_limited")
		return a.render(c, http.StatusTooManyRequests, "console/signin", p)
	}
	email, lang, rid := p.Email, p.L.Lang, requestID(c)
	ctx := context.WithoutCancel(c.Request.Context())
	go func() {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		member, err := a.Staff.ByEmail(ctx, m.ID, email)
		if err == nil {
			err = a.sendConsoleLink(ctx, m, member, lang, false)
		}
		if err != nil && !apperr.Is(err, apperr.NotFound) {
			a.Log.ErrorContext(ctx, "console sign-in link not sent", "request_id", rid, "err", err)
		}
	}()
	c.Redirect(http.StatusSeeOther, consolePath(c)+"signin/sent")
	return nil
}

// sendConsoleLink emails a member a link into the console: an invitation
// (valid seven days) or a sign-in link (fifteen minutes).
func (a *API) sendConsoleLink(ctx context.Context, m merchants.Merchant, member staff.Member, lang string, invite bool) error {
	ttl, subject := signin.StaffLinkTTL, "mail_console_signin_subject"
	if invite {
		ttl, subject = signin.InviteTTL, "mail_console_invite_subject"
	}
	secret, err := a.Center.Signin.NewStaffLink(ctx, m.ID, member.ID, ttl)
	if err != nil {
		return err
	}
	l := a.Center.Locales.For(lang)
	who := member.InvitedBy
	if who == staff.Operator {
		who = l.T("mail_console_operator")
	}
	data := struct {
		L                             any
		MerchantName, Link, Role, Who string
		Invite                        bool
		Days                          int
	}{L: l, MerchantName: m.Name, Link: a.Center.BaseURL + "/m/" + m.Slug + "/link?t=" + url.QueryEscape(secret),
		Role: l.T("role_" + string(member.Role)), Who: who, Invite: invite, Days: int(signin.InviteTTL / (24 * time.Hour))}
	text, html, err := a.Center.Mails.Render("console", data)
	if err != nil {
		return err
	}
	return a.Center.Mailer.Send(ctx, mail.Message{To: member.Email, Subject: l.Tf(subject, "Merchant", m.Name), Text: text, HTML: html})
}

func (a *API) consoleLinkSent(c *gin.Context) error {
	return a.render(c, http.StatusOK, "console/signin_sent", a.consolePage(c, ""))
}

type consoleLinkPage struct {
	consoleBase
	Token string
}

// consoleShowLink asks for a press of a button before a link is used
// (mail scanners fetch links but do not submit forms).
func (a *API) consoleShowLink(c *gin.Context) error {
	t := c.Query("t")
	if _, err := a.Center.Signin.StaffLink(c.Request.Context(), merchant(c).ID, t); err != nil {
		return err
	}
	return a.render(c, http.StatusOK, "console/link", consoleLinkPage{consoleBase: a.consolePage(c, ""), Token: t})
}

// consoleUseLink signs a member in: a new session every time (a session
// id from before the sign-in is never kept), the link used once.
func (a *API) consoleUseLink(c *gin.Context) error {
	ctx := c.Request.Context()
	m := merchant(c)
	link, err := a.Center.Signin.UseStaffLink(ctx, m.ID, c.PostForm("token"))
	if err != nil {
		return err
	}
	member, err := a.Staff.SignedIn(ctx, m.ID, link.StaffID, link.CreatedAt)
	if err != nil {
		return err
	}
	tok, sess, err := a.Center.Signin.NewStaffSession(m.ID, member.ID)
	if err != nil {
		return err
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: cookieStaff, Value: tok, Path: consolePath(c), Expires: sess.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: a.secureCookies()})
	a.record(c, member.Email, "staff.signed_in", member.Email, "")
	c.Redirect(http.StatusSeeOther, consolePath(c))
	return nil
}

// consoleSignOut ends the session on the server and drops the cookie.
func (a *API) consoleSignOut(c *gin.Context) error {
	sess, err := a.Center.Signin.ParseStaffSession(c.Request.Context(), merchant(c).ID, cookieValue(c, cookieStaff))
	if err == nil {
		if err := a.Center.Signin.EndStaffSession(c.Request.Context(), sess); err != nil {
			return err
		}
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: cookieStaff, Value: "", Path: consolePath(c), MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: a.secureCookies()})
	c.Redirect(http.StatusSeeOther, consolePath(c)+"?signed_out=1")
	return nil
}

type consoleErrorPage struct {
	consoleBase
	Title, Message, Detail, Next, NextText string
	// Again offers a fresh sign-in link to the signed-in member.
	Again bool
}

// consoleError shows the console's error page for err: what went wrong in
// the member's language, the domain's own words as the detail.
func (a *API) consoleError(c *gin.Context, err error) {
	ae, code, detail, status := a.explain(c, err)
	p := consoleErrorPage{consoleBase: a.consolePage(c, "")}
	l := p.L
	p.Next, p.NextText = p.Base, l.T("console_back")
	switch {
	case detail == signin.CodeLinkExpired || detail == signin.CodeLinkUsed || detail == signin.CodeLinkInvalid:
		p.Title, p.Message = l.T("err_link_title"), l.T("console_err_"+detail)
		p.NextText = l.T("next_signin")
		status = http.StatusGone
		if detail == signin.CodeLinkInvalid {
			status = http.StatusNotFound
		}
	case detail == signin.CodeNoSession || code == apperr.Unauthorized:
		p.Title, p.Message, p.NextText = l.T("err_session_title"), l.T("console_err_session"), l.T("next_signin")
		status = http.StatusUnauthorized
	case detail == codeCrossOrigin:
		p.Title, p.Message = l.T("err_forbidden_title"), l.T("err_cross_origin")
	case detail == staff.CodeForbidden:
		p.Title, p.Message = l.T("err_forbidden_title"), l.T("console_err_role")
	case detail == staff.CodeStale:
		p.Title, p.Message, p.Again = l.T("console_again_title"), l.T("console_again"), true
	case detail == merchants.CodeSuspended:
		p.Title, p.Message = l.T("console_err_suspended_title"), l.T("console_err_suspended")
		p.Next = ""
	case code == apperr.NotFound:
		p.Title, p.Message = l.T("err_not_found_title"), l.T("err_not_found")
	case code == apperr.Invalid || code == apperr.Conflict || code == apperr.TooLarge || code == apperr.Unprocessable:
		p.Title, p.Message = l.T("console_err_invalid_title"), l.T("console_err_invalid")
		if ae != nil {
			p.Detail = ae.Message
		}
	case code == apperr.TooManyRequests:
		p.Title, p.Message = l.T("err_rate_title"), l.T("err_rate_limited")
	default:
		p.Title, p.Message, status = a.serverFault(c, "console", err)
	}
	a.abortWithPage(c, status, "console/error", p)
}
