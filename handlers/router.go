// Package handlers is Fineline's HTTP layer: it decodes requests, calls the
// domain, and renders JSON. Every route is listed in New, grouped by who may
// call it.
package handlers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
)

// Pinger reports whether the store is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// API holds what the handlers need.
type API struct {
	Merchants *merchants.Service
	Purposes  *consent.Purposes
	Subjects  *consent.Subjects
	Ledger    *consent.Ledger
	Notices   *notices.Service
	Store     Pinger
	// AdminToken guards /admin; empty disables those routes.
	AdminToken string
	// TrustedProxies are the addresses whose X-Forwarded-For is believed.
	TrustedProxies []string
	Log            *slog.Logger
}

// New builds the HTTP handler with every route.
func New(a *API) (http.Handler, error) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if err := r.SetTrustedProxies(a.TrustedProxies); err != nil {
		return nil, err
	}
	r.HandleMethodNotAllowed = true
	r.Use(withRequestID, a.recoverPanics, a.logRequests, securityHeaders)
	r.NoRoute(a.handle(notFoundRoute))
	r.NoMethod(a.handle(methodNotAllowed))

	// Public.
	r.GET("/healthz", a.healthz)
	r.GET("/readyz", a.handle(a.readyz))
	r.GET("/v1/openapi.json", a.openAPI)

	// Operator.
	admin := r.Group("/admin/v1", a.requireAdmin, limitBody(maxBody))
	admin.POST("/merchants", a.handle(a.createMerchant))

	// Merchant servers, by API key.
	v1 := r.Group("/v1", a.requireKey)
	read := v1.Group("", a.requireScope(merchants.ScopeConsentRead), limitBody(maxBody))
	write := v1.Group("", a.requireScope(merchants.ScopeConsentWrite), limitBody(maxBody))
	adm := v1.Group("", a.requireScope(merchants.ScopeAdmin), limitBody(maxBody))

	read.GET("/purposes", a.handle(a.listPurposes))
	read.GET("/purposes/:key", a.handle(a.getPurpose))
	adm.POST("/purposes", a.handle(a.createPurpose))

	write.PUT("/subjects/:subject", a.handle(a.putSubject))
	read.GET("/subjects/:subject", a.handle(a.getSubject))
	write.PUT("/subjects/:subject/consents/:purpose", a.handle(a.putConsent))
	read.GET("/subjects/:subject/consents", a.handle(a.listConsents))
	read.GET("/subjects/:subject/events", a.handle(a.listEvents))

	read.GET("/check", a.handle(a.check))
	v1.POST("/check", a.requireScope(merchants.ScopeConsentRead), limitBody(maxBatchBody), a.handle(a.checkMany))

	adm.GET("/api-keys", a.handle(a.listKeys))
	adm.POST("/api-keys", a.handle(a.createKey))
	adm.DELETE("/api-keys/:id", a.handle(a.revokeKey))
	return r, nil
}
