package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/erasure"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
)

type erasedJSON struct {
	Subject  string    `json:"subject"`
	ErasedAt time.Time `json:"erased_at"`
	// Seq is the subject_erased event's place in the subject's chain.
	Seq int64 `json:"seq"`
	// Already is true when the subject had been erased before.
	Already bool `json:"already_erased"`
}

// deleteSubject erases everything the merchant holds about the subject.
func (a *API) deleteSubject(c *gin.Context) error {
	res, err := a.Erasure.Erase(c.Request.Context(), merchantID(c), c.Param("subject"), consent.ChannelAPI, actor(c))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, erasedJSON{Subject: res.SubjectID, ErasedAt: res.ErasedAt, Seq: res.Seq, Already: res.Already})
	return nil
}

// showErase asks the signed-in shopper to confirm the erasure.
func (a *API) showErase(c *gin.Context) error {
	return a.render(c, http.StatusOK, "erase", a.newPage(c))
}

type erasedPage struct {
	base
	When string
}

// erase erases the signed-in shopper, ends their session and shows what
// was done. The confirmation box must be ticked.
func (a *API) erase(c *gin.Context) error {
	if c.PostForm("confirm") != "yes" {
		return apperr.New(apperr.Invalid, "tick the box to confirm").WithDetail(codeEraseUnconfirmed)
	}
	sess, _ := session(c)
	ctx := c.Request.Context()
	res, err := a.Erasure.Erase(ctx, merchant(c).ID, sess.SubjectID, consent.ChannelCenter, actorOf(sess))
	if err != nil {
		return err
	}
	if err := a.Center.Signin.End(ctx, sess); err != nil {
		a.Log.WarnContext(ctx, "session not ended after an erasure", "request_id", requestID(c), "err", err)
	}
	a.dropSessionCookie(c)
	c.Set(ctxSession, nil)
	p := erasedPage{base: a.newPage(c), When: formatTime(res.ErasedAt)}
	return a.render(c, http.StatusOK, "erased", p)
}

// codeEraseUnconfirmed refuses an erasure form sent without its box ticked.
const codeEraseUnconfirmed = "erase_unconfirmed"

// ErasedMail tells a shopper, in their language, that a merchant erased
// everything it held about them.
type ErasedMail struct {
	Center    *Center
	Merchants merchants.Store
}

var _ erasure.Notifier = (*ErasedMail)(nil)

// Erased implements erasure.Notifier.
func (m *ErasedMail) Erased(ctx context.Context, p erasure.Pending) error {
	mer, err := m.Merchants.Merchant(ctx, p.MerchantID)
	if err != nil {
		return err
	}
	l := m.Center.Locales.For(p.Locale)
	data := struct {
		L            any
		MerchantName string
		When         string
	}{L: l, MerchantName: mer.Name, When: formatTime(p.RequestedAt)}
	text, html, err := m.Center.Mails.Render("erased", data)
	if err != nil {
		return err
	}
	return m.Center.Mailer.Send(ctx, mail.Message{To: p.Email, Subject: l.Tf("mail_erased_subject", "Merchant", mer.Name), Text: text, HTML: html})
}
