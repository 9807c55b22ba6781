package handlers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/recipients"
)

type recipientJSON struct {
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Purposes []string `json:"purposes"`
	Country  string   `json:"country,omitempty"`
}

type putRecipientsRequest struct {
	Recipients []recipientJSON `json:"recipients"`
}

type recipientListJSON struct {
	Recipients []recipientJSON `json:"recipients"`
	// UpdatedAt is null while the merchant never declared a list.
	UpdatedAt *time.Time `json:"updated_at"`
}

func toRecipientListJSON(l recipients.List) recipientListJSON {
	out := recipientListJSON{Recipients: make([]recipientJSON, 0, len(l.Recipients))}
	for _, r := range l.Recipients {
		out.Recipients = append(out.Recipients, recipientJSON{Name: r.Name, Role: string(r.Role), Purposes: r.Purposes, Country: r.Country})
	}
	if !l.UpdatedAt.IsZero() {
		at := l.UpdatedAt
		out.UpdatedAt = &at
	}
	return out
}

// putRecipients answers PUT /v1/recipients: the merchant's whole list,
// replaced.
func (a *API) putRecipients(c *gin.Context) error {
	var req putRecipientsRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Recipients == nil {
		// An omitted list is more likely a mistake than a wish to clear it.
		return apperr.New(apperr.Invalid, "send the whole list as recipients; [] clears it").WithDetail(recipients.CodeInvalidRecipient)
	}
	rs := make([]recipients.Recipient, 0, len(req.Recipients))
	for _, r := range req.Recipients {
		rs = append(rs, recipients.Recipient{Name: r.Name, Role: recipients.Role(r.Role), Purposes: r.Purposes, Country: r.Country})
	}
	l, err := a.Recipients.Put(c.Request.Context(), merchantID(c), rs)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toRecipientListJSON(l))
	return nil
}

func (a *API) listRecipients(c *gin.Context) error {
	l, err := a.Recipients.Get(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toRecipientListJSON(l))
	return nil
}
