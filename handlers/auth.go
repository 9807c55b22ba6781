package handlers

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/merchants"
)

const ctxKey = "fineline.api_key"

// maxAuthHeader caps the Authorization header we are willing to parse.
const maxAuthHeader = 512

func bearer(c *gin.Context) (string, bool) {
	h := c.GetHeader("Authorization")
	if h == "" || len(h) > maxAuthHeader {
		return "", false
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// requireKey authenticates the merchant's API key. The merchant of every
// request below it comes from the key, never from the path, query or body.
func (a *API) requireKey(c *gin.Context) {
	token, ok := bearer(c)
	if !ok {
		a.writeError(c, apperr.New(apperr.Unauthorized, "send your API key as Authorization: Bearer fl_...").WithDetail("unauthorized"))
		return
	}
	k, err := a.Merchants.Authenticate(c.Request.Context(), token)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.Set(ctxKey, k)
	c.Next()
}

// requireScope lets the request through only if its key carries s.
func (a *API) requireScope(s merchants.Scope) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !apiKey(c).Has(s) {
			a.writeError(c, apperr.New(apperr.Forbidden, "this API key lacks the %s scope", s).WithDetail("insufficient_scope"))
			return
		}
		c.Next()
	}
}

func apiKey(c *gin.Context) merchants.APIKey {
	k, _ := c.Get(ctxKey)
	key, _ := k.(merchants.APIKey)
	return key
}

// merchantID is the authenticated merchant.
func merchantID(c *gin.Context) string { return apiKey(c).MerchantID }

// actor names the key that made the request, for the ledger.
func actor(c *gin.Context) string { return "api_key:" + apiKey(c).ID }

// requireAdmin checks the operator token; the routes behind it answer 404
// when no token is configured.
func (a *API) requireAdmin(c *gin.Context) {
	if a.AdminToken == "" {
		a.writeError(c, apperr.New(apperr.NotFound, "not found").WithDetail("not_found"))
		return
	}
	token, ok := bearer(c)
	want := sha256.Sum256([]byte(a.AdminToken))
	got := sha256.Sum256([]byte(token))
	if !ok || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		a.writeError(c, apperr.New(apperr.Unauthorized, "send the operator token as Authorization: Bearer ...").WithDetail("unauthorized"))
		return
	}
	c.Next()
}
