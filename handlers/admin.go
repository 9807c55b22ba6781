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
)

type merchantJSON struct {
	ID            string    `json:"id"`
	Slug          string    `json:"slug"`
	Name          string    `json:"name"`
	DefaultLocale string    `json:"default_locale"`
	CreatedAt     time.Time `json:"created_at"`
	// SuspendedAt is set while the merchant is suspended.
	SuspendedAt *time.Time `json:"suspended_at,omitempty"`
}

func toMerchantJSON(m merchants.Merchant) merchantJSON {
	out := merchantJSON{ID: m.ID, Slug: m.Slug, Name: m.Name, DefaultLocale: m.DefaultLocale, CreatedAt: m.CreatedAt}
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

func (a *API) suspendMerchant(c *gin.Context) error { return a.merchantAction(c, a.Merchants.Suspend) }

func (a *API) resumeMerchant(c *gin.Context) error { return a.merchantAction(c, a.Merchants.Resume) }

// merchantAction runs an operator's action on the merchant in the path and
// answers with the merchant as it is after it.
func (a *API) merchantAction(c *gin.Context, act func(context.Context, string) (merchants.Merchant, error)) error {
	m, err := act(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
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
	return out
}

type createMerchantRequest struct {
	Slug          string `json:"slug"`
	Name          string `json:"name"`
	DefaultLocale string `json:"default_locale"`
}

func (a *API) createMerchant(c *gin.Context) error {
	var req createMerchantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request.Context()
	m, k, secret, err := a.Merchants.Create(ctx, merchants.NewMerchant{Slug: req.Slug, Name: req.Name, DefaultLocale: req.DefaultLocale})
	if err != nil {
		return err
	}
	if _, err := a.Notices.PublishFirst(ctx, m.ID, nil, ""); err != nil {
		return errors.Join(err, a.Merchants.Abandon(ctx, m))
	}
	c.JSON(http.StatusCreated, gin.H{
		"merchant": toMerchantJSON(m),
		"api_key":  toKeyJSON(k, secret),
	})
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
