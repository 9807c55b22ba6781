package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/staff"
)

type merchantJSON struct {
	ID            string    `json:"id"`
	Slug          string    `json:"slug"`
	Name          string    `json:"name"`
	DefaultLocale string    `json:"default_locale"`
	TimeZone      string    `json:"time_zone"`
	CreatedAt     time.Time `json:"created_at"`
	// SuspendedAt is set while the merchant is suspended.
	SuspendedAt *time.Time `json:"suspended_at,omitempty"`
}

func toMerchantJSON(m merchants.Merchant) merchantJSON {
	out := merchantJSON{ID: m.ID, Slug: m.Slug, Name: m.Name, DefaultLocale: m.DefaultLocale, TimeZone: m.Location().String(), CreatedAt: m.CreatedAt}
	if !m.SuspendedAt.IsZero() {
		at := m.SuspendedAt
		out.SuspendedAt = &at
	}
	return out
}

// listMerchants pages through the merchants: ?after=<next of the last
// page>&limit=1..200 (default 50).
func (a *API) listMerchants(c *gin.Context) error {
	limit := 50
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return apperr.New(apperr.Invalid, "limit must be a number from 1 to %d", merchants.MaxPage).WithDetail("invalid_limit")
		}
		limit = n
	}
	ms, next, err := a.Merchants.List(c.Request.Context(), c.Query("after"), limit)
	if err != nil {
		return err
	}
	out := make([]merchantJSON, len(ms))
	for i, m := range ms {
		out[i] = toMerchantJSON(m)
	}
	c.JSON(http.StatusOK, gin.H{"merchants": out, "next": next})
	return nil
}

func (a *API) suspendMerchant(c *gin.Context) error {
	return a.merchantAction(c, a.Merchants.Suspend, "merchant.suspended")
}

func (a *API) resumeMerchant(c *gin.Context) error {
	return a.merchantAction(c, a.Merchants.Resume, "merchant.resumed")
}

// merchantAction runs an operator's action on the merchant in the path and
// answers with the merchant as it is after it.
func (a *API) merchantAction(c *gin.Context, act func(context.Context, string) (merchants.Merchant, error), action string) error {
	m, err := act(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if a.Staff != nil {
		if err := a.Staff.Record(c.Request.Context(), m.ID, staff.Operator, action, m.Slug, ""); err != nil {
			return err
		}
	}
	c.JSON(http.StatusOK, toMerchantJSON(m))
	return nil
}

type keyJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// LastUsedAt is when the key last authenticated a request (to within a
	// minute or two); absent if never.
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// Secret is present only in the response that created the key.
	Secret string `json:"secret,omitempty"`
}

func toKeyJSON(k merchants.APIKey, secret string) keyJSON {
	out := keyJSON{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt, Secret: secret, Scopes: []string{}}
	for _, s := range k.Scopes {
		out.Scopes = append(out.Scopes, string(s))
	}
	if !k.RevokedAt.IsZero() {
		at := k.RevokedAt
		out.RevokedAt = &at
	}
	if !k.LastUsedAt.IsZero() {
		at := k.LastUsedAt
		out.LastUsedAt = &at
	}
	return out
}

type createMerchantRequest struct {
	Slug          string `json:"slug"`
	Name          string `json:"name"`
	DefaultLocale string `json:"default_locale"`
	// TimeZone is the IANA zone the merchant's analytics count days in
	// ("" is UTC).
	TimeZone string `json:"time_zone"`
	// OwnerEmail, when set, becomes the merchant's first owner, who is
	// emailed a link into the console.
	OwnerEmail string `json:"owner_email"`
}

func (a *API) createMerchant(c *gin.Context) error {
	var req createMerchantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.OwnerEmail != "" {
		if a.Staff == nil || a.Center == nil {
			return apperr.New(apperr.Invalid, "this server has no merchant console: leave owner_email out").WithDetail("no_console")
		}
		if _, err := staff.CheckEmail(req.OwnerEmail); err != nil {
			return err
		}
	}
	ctx := c.Request.Context()
	m, k, secret, err := a.Merchants.Create(ctx, merchants.NewMerchant{Slug: req.Slug, Name: req.Name, DefaultLocale: req.DefaultLocale, TimeZone: req.TimeZone})
	if err != nil {
		return err
	}
	if _, err := a.Notices.PublishFirst(ctx, m.ID, nil, ""); err != nil {
		return errors.Join(err, a.Merchants.Abandon(ctx, m))
	}
	out := gin.H{"merchant": toMerchantJSON(m), "api_key": toKeyJSON(k, secret)}
	if a.Staff != nil && a.Center != nil {
		if err := a.Staff.Record(ctx, m.ID, staff.Operator, "merchant.created", m.Slug, ""); err != nil {
			return errors.Join(err, a.Merchants.Abandon(ctx, m))
		}
		if req.OwnerEmail != "" {
			owner, err := a.inviteOwner(ctx, m, req.OwnerEmail)
			if err != nil {
				return errors.Join(err, a.Merchants.Abandon(ctx, m))
			}
			out["owner"] = a.sendOwnerInvite(c, m, owner)
		}
	}
	c.JSON(http.StatusCreated, out)
	return nil
}

type staffJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	InvitedAt time.Time `json:"invited_at"`
	// Console is where the member signs in.
	Console string `json:"console"`
	// InvitationSent is false when the mail could not be sent: invite
	// again (owner-invites) once mail works.
	InvitationSent bool `json:"invitation_sent"`
}

// sendOwnerInvite sends an invited owner the invitation and describes them,
// saying whether it went out (a mail that fails is logged, not fatal).
func (a *API) sendOwnerInvite(c *gin.Context, m merchants.Merchant, owner staff.Member) staffJSON {
	out := staffJSON{ID: owner.ID, Email: owner.Email, Role: string(owner.Role), InvitedAt: owner.InvitedAt, Console: a.Center.BaseURL + "/m/" + m.Slug + "/"}
	if err := a.sendConsoleLink(c.Request.Context(), m, owner, m.DefaultLocale, true); err != nil {
		a.Log.ErrorContext(c.Request.Context(), "owner invitation not sent", "request_id", requestID(c), "merchant_id", m.ID, "err", err)
	} else {
		out.InvitationSent = true
	}
	return out
}

// inviteOwner makes email an owner of the merchant and records it.
func (a *API) inviteOwner(ctx context.Context, m merchants.Merchant, email string) (staff.Member, error) {
	owner, err := a.Staff.Invite(ctx, m.ID, email, staff.Owner, staff.Operator)
	if err != nil {
		return owner, err
	}
	return owner, a.Staff.Record(ctx, m.ID, staff.Operator, "staff.invited", owner.Email, string(owner.Role))
}

type ownerInviteRequest struct {
	Email string `json:"email"`
}

// createOwnerInvite lets the operator give a merchant back its console: the
// address becomes an owner (again) and gets an invitation.
func (a *API) createOwnerInvite(c *gin.Context) error {
	var req ownerInviteRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request.Context()
	m, err := a.Merchants.Store.Merchant(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	owner, err := a.inviteOwner(ctx, m, req.Email)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, a.sendOwnerInvite(c, m, owner))
	return nil
}

type createKeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

func (a *API) createKey(c *gin.Context) error {
	var req createKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	scopes := make([]merchants.Scope, len(req.Scopes))
	for i, s := range req.Scopes {
		scopes[i] = merchants.Scope(s)
	}
	k, secret, err := a.Merchants.CreateKey(c.Request.Context(), merchantID(c), req.Name, scopes)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, toKeyJSON(k, secret))
	return nil
}

func (a *API) listKeys(c *gin.Context) error {
	ks, err := a.Merchants.Keys(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	out := make([]keyJSON, 0, len(ks))
	for _, k := range ks {
		out = append(out, toKeyJSON(k, ""))
	}
	c.JSON(http.StatusOK, gin.H{"api_keys": out})
	return nil
}

func (a *API) revokeKey(c *gin.Context) error {
	if err := a.Merchants.Revoke(c.Request.Context(), merchantID(c), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
