package handlers

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/receipts"
)

// The merchant's public pages: no sign-in needed.

type protectField struct{ Label, Purposes string }

type protectPage struct {
	base
	Fields     []protectField
	Recipients []dataRecipientView
	// Readers and FieldReaders count the merchant's active API keys that
	// may read choices, and volunteered values.
	Readers, FieldReaders int
	HTTPS                 bool
	AskedDays             int
}

// protect says how the merchant's data is protected, from the real
// configuration: what is encrypted, how long it is kept, who can see it.
func (a *API) protect(c *gin.Context) error {
	ctx := c.Request.Context()
	m := merchant(c)
	p := protectPage{base: a.newPage(c), HTTPS: a.secureCookies(), AskedDays: askedDays}
	l := p.L
	ps, err := a.offeredPurposes(ctx, m.ID)
	if err != nil {
		return err
	}
	if a.Fields != nil {
		fs, err := a.Fields.List(ctx, m.ID)
		if err != nil {
			return err
		}
		for _, f := range fs {
			p.Fields = append(p.Fields, protectField{Label: f.TextFor(l.Lang).Label, Purposes: purposeNames(l, ps, f.Purposes)})
		}
	}
	if p.Recipients, err = a.recipientViews(c, ps); err != nil {
		return err
	}
	keys, err := a.Merchants.Keys(ctx, m.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !k.RevokedAt.IsZero() {
			continue
		}
		if k.Has(merchants.ScopeConsentRead) {
			p.Readers++
		}
		if k.Has(merchants.ScopeFieldsRead) {
			p.FieldReaders++
		}
	}
	return a.render(c, http.StatusOK, "protect", p)
}

// cookieDevice names the anonymous visitor of the center's public pages,
// whose "do not sell or share" is recorded against it.
const cookieDevice = "fl_device"

type saleView struct{ Name, Status string }

type doNotSellPage struct {
	base
	Purposes []saleView
	// OptedOut is true when every sale/share purpose is off for this
	// visitor; GPC when their browser's signal was just honoured.
	OptedOut, GPC, Done bool
}

// saleSubject is who a do-not-sell choice is about: the signed-in shopper,
// else the visitor's device (made when create is set and there is none).
func (a *API) saleSubject(c *gin.Context, create bool) (string, error) {
	if sess, ok := session(c); ok {
		return sess.SubjectID, nil
	}
	if v := cookieValue(c, cookieDevice); deviceIDPattern.MatchString(v) {
		return "device:" + v, nil
	}
	if !create {
		return "", nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b)
	http.SetCookie(c.Writer, &http.Cookie{Name: cookieDevice, Value: id, Path: basePath(c), MaxAge: 365 * 24 * 3600, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: a.secureCookies()})
	return "device:" + id, nil
}

// optOutOfSale records "do not sell or share" for the visitor, through the
// one place choices are applied.
func (a *API) optOutOfSale(c *gin.Context, channel consent.Channel) (string, error) {
	ctx := c.Request.Context()
	m := merchant(c)
	subject, err := a.saleSubject(c, true)
	if err != nil {
		return "", err
	}
	ps, err := a.offeredPurposes(ctx, m.ID)
	if err != nil {
		return "", err
	}
	actor := "do-not-sell"
	if sess, ok := session(c); ok {
		actor = actorOf(sess)
	}
	var choices consent.Choices
	if channel == consent.ChannelGPC {
		choices, _ = consent.GPCChoices(m.ID, subject, ps)
	} else {
		choices = consent.OptOutOfSale(m.ID, subject, ps, channel, actor)
	}
	if len(choices.Requests) == 0 {
		return subject, nil
	}
	choices.Locale = askedIn(c)
	_, err = a.Ledger.Apply(ctx, choices)
	return subject, err
}

// doNotSell shows the sale/share purposes and the visitor's choice on them;
// a Global Privacy Control signal is honoured on sight.
func (a *API) doNotSell(c *gin.Context) error {
	p := doNotSellPage{base: a.newPage(c), Done: c.Query("done") == "1"}
	var subject string
	var err error
	if c.GetHeader("Sec-GPC") == "1" {
		if subject, err = a.optOutOfSale(c, consent.ChannelGPC); err != nil {
			return err
		}
		p.GPC = true
	} else if subject, err = a.saleSubject(c, false); err != nil {
		return err
	}
	ctx := c.Request.Context()
	m := merchant(c)
	ps, err := a.offeredPurposes(ctx, m.ID)
	if err != nil {
		return err
	}
	st := consent.SubjectState{MerchantID: m.ID, SubjectID: subject}
	if subject != "" {
		if st, err = a.Ledger.StateOf(ctx, m.ID, subject); err != nil {
			return err
		}
	}
	var sale []consent.Purpose
	for _, pur := range ps {
		if pur.SaleOrShare {
			sale = append(sale, pur)
		}
	}
	ds, err := a.Ledger.DecideAll(ctx, m.ID, st, sale)
	if err != nil {
		return err
	}
	p.OptedOut = len(sale) > 0
	for i, pur := range sale {
		p.Purposes = append(p.Purposes, saleView{Name: pur.TextFor(p.L.Lang).Name, Status: purposeStatus(p.L, st, pur, ds[i])})
		p.OptedOut = p.OptedOut && !ds[i].Allowed && st.Purposes[pur.Key].State != ""
	}
	return a.render(c, http.StatusOK, "do_not_sell", p)
}

// saveDoNotSell records the opt-out and shows the page again (no script
// needed).
func (a *API) saveDoNotSell(c *gin.Context) error {
	if _, err := a.optOutOfSale(c, consent.ChannelCenter); err != nil {
		return err
	}
	c.Redirect(http.StatusSeeOther, basePath(c)+"do-not-sell?done=1")
	return nil
}

type verifyPage struct {
	base
	// Checked is set once something was checked: Valid says how it went.
	Checked, Valid bool
	// Kind is "receipt" or "data".
	Kind, Subject, When string
	Rows                []receiptRow
	Problem             string
}

// verifyForm shows the form that checks a receipt.
func (a *API) verifyForm(c *gin.Context) error {
	return a.render(c, http.StatusOK, "verify", verifyPage{base: a.newPage(c)})
}

// maxVerified bounds what the check reads: a receipt or a data download.
const maxVerified = 48 << 10

// verifySubmitted checks a pasted or uploaded receipt (or signed data
// download) against the published keys and words what it says.
func (a *API) verifySubmitted(c *gin.Context) error {
	p := verifyPage{base: a.newPage(c), Checked: true}
	l := p.L
	text := strings.TrimSpace(c.PostForm("receipt"))
	if fh, err := c.FormFile("file"); err == nil && fh.Size > 0 {
		f, err := fh.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(f, maxVerified+1))
		f.Close()
		if err != nil {
			return err
		}
		text = strings.TrimSpace(string(b))
	} else if err != nil && !errors.Is(err, http.ErrMissingFile) && !errors.Is(err, http.ErrNotMultipart) {
		return apperr.New(apperr.Invalid, "unreadable upload")
	}
	m := merchant(c)
	jwks := a.Center.Signer.JWKS()
	switch {
	case text == "":
		p.Problem = l.T("verify_empty")
	case len(text) > maxVerified:
		p.Problem = l.T("verify_invalid")
	case strings.HasPrefix(text, "{"):
		payload, err := receipts.VerifyDetached([]byte(text), jwks)
		var d struct {
			MerchantID  string `json:"merchant_id"`
			Subject     string `json:"subject"`
			GeneratedAt string `json:"generated_at"`
		}
		if err != nil || json.NewDecoder(bytes.NewReader(payload)).Decode(&d) != nil {
			p.Problem = l.T("verify_invalid")
			break
		}
		if d.MerchantID != m.ID {
			p.Problem = l.Tf("verify_other_merchant", "Merchant", p.MerchantName)
			break
		}
		p.Valid, p.Kind, p.Subject, p.When = true, "data", d.Subject, d.GeneratedAt
	default:
		claims, err := receipts.Verify(text, jwks, a.Center.Signer.Issuer())
		if err != nil {
			p.Problem = l.T("verify_invalid")
			break
		}
		if claims.Fineline.Merchant != m.ID {
			p.Problem = l.Tf("verify_other_merchant", "Merchant", p.MerchantName)
			break
		}
		ps, err := a.Purposes.List(c.Request.Context(), m.ID)
		if err != nil {
			return err
		}
		p.Valid, p.Kind, p.Subject = true, "receipt", claims.PIIPrincipalID
		p.When = formatTime(time.Unix(claims.ConsentTimestamp, 0))
		p.Rows = receiptRows(l, ps, claims)
	}
	status := http.StatusOK
	if !p.Valid {
		status = http.StatusUnprocessableEntity
	}
	return a.render(c, status, "verify", p)
}
