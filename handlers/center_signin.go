package handlers

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/signin"
)

type signinPage struct {
	base
	Email, Message, Error string
}

// centerHome shows the sign-in form, or the choices when signed in.
func (a *API) centerHome(c *gin.Context) error {
	if _, err := a.Center.Signin.ParseSession(c.Request.Context(), merchant(c).ID, cookieValue(c, cookieSess)); err == nil {
		c.Redirect(http.StatusSeeOther, basePath(c)+"preferences")
		return nil
	}
	p := signinPage{base: a.newPage(c)}
	if c.Query("signed_out") == "1" {
		p.Message = p.L.T("signed_out")
	}
	return a.render(c, http.StatusOK, "signin", p)
}

// requestLink emails a sign-in link if the address belongs to a subject of
// the merchant. The answer is the same either way (no enumeration), and
// the lookup and the mail happen after it, so timing tells nothing either.
func (a *API) requestLink(c *gin.Context) error {
	p := signinPage{base: a.newPage(c), Email: c.PostForm("email")}
	email := p.Email
	if !consent.ValidEmail(email) {
		p.Error = p.L.T("email_invalid")
		return a.render(c, http.StatusBadRequest, "signin", p)
	}
	if !a.Center.ClientLimit.Allow(c.ClientIP()) || !a.Center.EmailLimit.Allow(merchant(c).ID+"/"+email) {
		p.Error = p.L.T("err_rate_limited")
		return a.render(c, http.StatusTooManyRequests, "signin", p)
	}
	m, lang := merchant(c), p.L.Lang
	ctx := context.WithoutCancel(c.Request.Context())
	rid := requestID(c)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := a.sendLink(ctx, m.ID, m.Slug, m.Name, email, lang); err != nil && !apperr.Is(err, apperr.NotFound) {
			a.Log.ErrorContext(ctx, "sign-in link not sent", "request_id", rid, "err", err)
		}
	}()
	c.Redirect(http.StatusSeeOther, basePath(c)+"signin/sent")
	return nil
}

// sendLink emails one link that reaches every subject with the address;
// the link's page lets the shopper pick one when there are several.
func (a *API) sendLink(ctx context.Context, merchantID, slug, merchantName, email, lang string) error {
	subs, err := a.Subjects.ByEmail(ctx, merchantID, email)
	if err != nil {
		return err
	}
	ids := make([]string, len(subs))
	for i, sub := range subs {
		ids[i] = sub.ID
	}
	secret, err := a.Center.Signin.NewLink(ctx, merchantID, ids)
	if err != nil {
		return err
	}
	if len(subs) == 1 && subs[0].Locale != "" {
		lang = subs[0].Locale
	}
	l := a.Center.Locales.For(lang)
	data := struct {
		L            any
		MerchantName string
		Link         string
	}{L: l, MerchantName: merchantName, Link: a.Center.BaseURL + "/c/" + slug + "/link?t=" + url.QueryEscape(secret)}
	text, html, err := a.Center.Mails.Render("signin", data)
	if err != nil {
		return err
	}
	return a.Center.Mailer.Send(ctx, mail.Message{To: subs[0].Email, Subject: l.Tf("mail_signin_subject", "Merchant", merchantName), Text: text, HTML: html})
}

func (a *API) linkSent(c *gin.Context) error {
	return a.render(c, http.StatusOK, "signin_sent", a.newPage(c))
}

// profileChoice is one subject a shared address belongs to, on the link's page.
type profileChoice struct {
	ID, Since string
}

type linkPage struct {
	base
	Action, Token, Next string
	// Profiles lists, when the address belongs to several subjects, each
	// with its own sign-in button.
	Profiles []profileChoice
}

// showLink asks for a press of a button before using a link: mail scanners
// fetch links, but do not submit forms. When the address belongs to
// several of the merchant's customer records (a customer and a guest
// checkout), there is one button per record, named by the merchant's
// customer id and the date it was created.
func (a *API) showLink(action string) gin.HandlerFunc {
	return a.page(func(c *gin.Context) error {
		t := c.Query("t")
		if t == "" || len(t) > 2048 {
			return apperr.New(apperr.Invalid, "no link").WithDetail(signin.CodeLinkInvalid)
		}
		next := ""
		if q := c.Query("next"); q == "review" || q == "rewards" {
			next = q
		}
		p := linkPage{base: a.newPage(c), Action: basePath(c) + action, Token: t, Next: next}
		if action == "link" {
			lt, err := a.Center.Signin.Link(c.Request.Context(), merchant(c).ID, t)
			if err != nil {
				return err
			}
			if len(lt.SubjectIDs) > 1 {
				for _, id := range lt.SubjectIDs {
					pc := profileChoice{ID: id}
					if sub, err := a.Subjects.Get(c.Request.Context(), merchant(c).ID, id); err == nil {
						pc.Since = sub.CreatedAt.UTC().Format(time.DateOnly)
					}
					p.Profiles = append(p.Profiles, pc)
				}
			}
		}
		return a.render(c, http.StatusOK, "link", p)
	})
}

// useLink signs in with a magic link (as the profile picked, when the
// address belongs to several).
func (a *API) useLink(c *gin.Context) error {
	subject, err := a.Center.Signin.UseLink(c.Request.Context(), merchant(c).ID, c.PostForm("token"), c.PostForm("profile"))
	if err != nil {
		return err
	}
	return a.startSession(c, subject)
}

// usePreferenceLink signs in with a merchant's signed preference link.
func (a *API) usePreferenceLink(c *gin.Context) error {
	subject, err := a.Center.Signin.UsePreferenceLink(merchant(c).ID, c.PostForm("token"))
	if err != nil {
		return err
	}
	return a.startSession(c, subject)
}

func (a *API) startSession(c *gin.Context, subject string) error {
	tok, sess, err := a.Center.Signin.NewSession(merchant(c).ID, subject)
	if err != nil {
		return err
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: cookieSess, Value: tok, Path: basePath(c), Expires: sess.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.secureCookies()})
	next := "preferences"
	if f := c.PostForm("next"); f == "review" || f == "rewards" {
		next = f
	}
	c.Redirect(http.StatusSeeOther, basePath(c)+next)
	return nil
}

// dropSessionCookie tells the browser to forget the session cookie.
func (a *API) dropSessionCookie(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{Name: cookieSess, Value: "", Path: basePath(c), MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.secureCookies()})
}

// signOut ends the session on the server and drops the cookie.
func (a *API) signOut(c *gin.Context) error {
	sess, err := a.Center.Signin.ParseSession(c.Request.Context(), merchant(c).ID, cookieValue(c, cookieSess))
	if err == nil {
		if err := a.Center.Signin.End(c.Request.Context(), sess); err != nil {
			return err
		}
	}
	a.dropSessionCookie(c)
	c.Redirect(http.StatusSeeOther, basePath(c)+"?signed_out=1")
	return nil
}

type preferenceLinkJSON struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createPreferenceLink returns a signed 7-day link to the subject's choices,
// for the merchant's own emails.
func (a *API) createPreferenceLink(c *gin.Context) error {
	ctx := c.Request.Context()
	sub, err := a.Subjects.Live(ctx, merchantID(c), c.Param("subject"))
	if err != nil {
		return err
	}
	m, err := a.Merchants.Store.Merchant(ctx, merchantID(c))
	if err != nil {
		return err
	}
	tok, exp, err := a.Center.Signin.NewPreferenceLink(m.ID, sub.ID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, preferenceLinkJSON{URL: a.Center.BaseURL + "/c/" + m.Slug + "/p?t=" + url.QueryEscape(tok), ExpiresAt: exp})
	return nil
}
