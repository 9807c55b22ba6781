package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/receipts"
)

// issueReceipt has the receipts package sign the receipt of applied
// choices and keep it; it returns the receipt's id.
func (a *API) issueReceipt(c *gin.Context, channel consent.Channel, res consent.Applied) (string, error) {
	ctx := c.Request.Context()
	m := merchant(c)
	ps, err := a.Purposes.List(ctx, m.ID)
	if err != nil {
		return "", err
	}
	of := receipts.Of{
		Controller: receipts.Controller{ID: m.ID, Name: m.Name, URL: a.Center.BaseURL + basePath(c)},
		Language:   localizer(c).Lang, Channel: channel, Purposes: ps, State: res.State, Changed: res.Decided(),
	}
	if v, err := a.Notices.Current(ctx, m.ID); err == nil {
		of.PolicyURL = v.PolicyURL
	}
	issued, err := a.Center.Receipts.Issue(ctx, of)
	if err != nil {
		return "", err
	}
	return issued.ID, nil
}

// ownReceipt returns a receipt of the signed-in subject; another subject's
// receipt is not found, like one that does not exist.
func (a *API) ownReceipt(c *gin.Context, id string) (receipts.Issued, error) {
	sess, _ := session(c)
	if len(id) != 22 {
		return receipts.Issued{}, apperr.New(apperr.NotFound, "no such receipt")
	}
	r, err := a.Center.Receipts.Store.Receipt(c.Request.Context(), id)
	if err != nil {
		return receipts.Issued{}, err
	}
	if r.MerchantID != sess.MerchantID || r.SubjectID != sess.SubjectID {
		return receipts.Issued{}, apperr.New(apperr.NotFound, "no such receipt")
	}
	return r, nil
}

type receiptRow struct{ Name, Choice string }

type receiptPage struct {
	base
	ID, When, DownloadURL string
	Rows                  []receiptRow
}

// showReceipt shows a receipt in plain words, with its signed download.
func (a *API) showReceipt(c *gin.Context) error {
	r, err := a.ownReceipt(c, c.Param("id"))
	if err != nil {
		return err
	}
	claims, err := receipts.Verify(r.Token, a.Center.Signer.JWKS(), a.Center.Signer.Issuer())
	if err != nil {
		return err
	}
	ps, err := a.Purposes.List(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return err
	}
	p := receiptPage{base: a.newPage(c), ID: r.ID, When: formatTime(r.CreatedAt), DownloadURL: basePath(c) + "receipts/" + r.ID + "/download"}
	p.Rows = receiptRows(p.L, ps, claims)
	return a.render(c, http.StatusOK, "receipt", p)
}

// receiptRows words a verified receipt: the choice on each purpose, then
// the privacy level.
func receiptRows(l *locales.Localizer, ps []consent.Purpose, claims receipts.Receipt) []receiptRow {
	var rows []receiptRow
	for _, pur := range ps {
		row := receiptRow{Name: pur.TextFor(l.Lang).Name, Choice: l.T("choice_none")}
		for _, st := range claims.Fineline.States {
			if st.Purpose == pur.Key {
				row.Choice = l.T("choice_" + st.State)
			}
		}
		rows = append(rows, row)
	}
	// Receipts issued before privacy levels existed do not carry one.
	if lv, err := consent.ParseLevel(claims.Fineline.PrivacyLevel); err == nil {
		rows = append(rows, receiptRow{Name: l.T("receipt_level"), Choice: levelName(l, lv)})
	}
	return rows
}

// downloadReceipt sends the signed receipt as a file.
func (a *API) downloadReceipt(c *gin.Context) error {
	r, err := a.ownReceipt(c, c.Param("id"))
	if err != nil {
		return err
	}
	c.Header("Content-Disposition", `attachment; filename="consent-receipt-`+r.ID+`.jwt"`)
	c.Data(http.StatusOK, "application/jwt", []byte(r.Token))
	return nil
}

// jwks publishes the receipt-signing public keys.
func (a *API) jwks(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/jwk-set+json", a.Center.Signer.JWKS())
}
