// Package handlers is Fineline's HTTP layer: it decodes requests, calls the
// domain, and renders JSON. Every route is listed in New, grouped by who may
// call it.
package handlers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/access"
	"github.com/fineline/fineline/announce"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/erasure"
	"github.com/fineline/fineline/exports"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/guard"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/metrics"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/reach"
	"github.com/fineline/fineline/recipients"
	"github.com/fineline/fineline/requests"
	"github.com/fineline/fineline/staff"
	"github.com/fineline/fineline/web"
	"github.com/fineline/fineline/webhooks"
)

// Pinger reports whether the store is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Announcer reports how far the announcement of a published version went
// (notices.Service queues it).
type Announcer interface {
	Progress(ctx context.Context, merchantID string, version int) (announce.Progress, error)
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
	// Center serves the shopper pages; nil serves the API only.
	Center *Center
	// Announcer reports the announcement of material changes; nil shows none.
	Announcer Announcer
	// Fields keeps the data shoppers volunteer; Offers the value exchange.
	// Nil leaves their routes out.
	Fields *fields.Service
	Offers *offers.Service
	// Webhooks registers endpoints; nil leaves their routes out.
	Webhooks *webhooks.Service
	// Exports lists audiences; nil leaves their routes out.
	Exports *exports.Service
	// Guard declares attributes and answers personalization checks; nil
	// leaves their routes out.
	Guard *guard.Service
	// Recipients keeps the merchant's declared recipients; nil leaves their routes out.
	Recipients *recipients.Service

	// Erasure erases subjects (the center's "delete everything" and
	// DELETE /v1/subjects/{subject}); nil leaves those routes out.
	Erasure *erasure.Service
	// Requests keeps shoppers' requests about data held elsewhere; nil
	// leaves their routes out.
	Requests *requests.Service
	// Metrics records what operators watch; nil records nothing. /metrics
	// serves it behind the admin token (absent without one).
	Metrics *metrics.Metrics
	// Access holds the counts of who asked about each subject, for the
	// shopper's own data page; nil shows none.
	Access *access.Counter
	// Staff holds the people who run each merchant's console; with the
	// Center it serves the console under /m/<slug>/ (nil: no console).
	Staff *staff.Service
	// Reports reads the analytics rollups; nil leaves their routes out.
	Reports Reports
	// Reach counts what the widget's banner met, anonymously; nil leaves
	// the widget's signals out.
	Reach *reach.Counter

	cop *http.CrossOriginProtection
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
	a.cop = http.NewCrossOriginProtection()
	r.NoMethod(a.handle(methodNotAllowed))

	// Public.
	r.GET("/healthz", a.healthz)
	r.GET("/readyz", a.handle(a.readyz))
	r.GET("/v1/openapi.json", a.openAPI)
	if a.Metrics != nil && a.AdminToken != "" {
		r.GET("/metrics", a.requireAdmin, gin.WrapH(a.Metrics.Handler()))
	}

	// Operator.
	admin := r.Group("/admin/v1", a.requireAdmin, limitBody(maxBody))
	admin.POST("/merchants", a.handle(a.createMerchant))
	admin.GET("/merchants", a.handle(a.listMerchants))
	admin.POST("/merchants/:id/suspend", a.handle(a.suspendMerchant))
	admin.POST("/merchants/:id/resume", a.handle(a.resumeMerchant))
	if a.Staff != nil && a.Center != nil {
		admin.POST("/merchants/:id/owner-invites", a.handle(a.createOwnerInvite))
	}

	// Merchant servers, by API key.
	v1 := r.Group("/v1", a.requireKey)
	read := v1.Group("", a.requireScope(merchants.ScopeConsentRead), limitBody(maxBody))
	write := v1.Group("", a.requireScope(merchants.ScopeConsentWrite), limitBody(maxBody))
	adm := v1.Group("", a.requireScope(merchants.ScopeAdmin), limitBody(maxBody))

	read.GET("/purposes", a.handle(a.listPurposes))
	read.GET("/purposes/:key", a.handle(a.getPurpose))
	adm.POST("/purposes", a.handle(a.createPurpose))
	adm.POST("/purposes/:key/retire", a.handle(a.retirePurpose))
	adm.PATCH("/purposes/:key", a.handle(a.patchPurpose))

	write.PUT("/subjects/:subject", a.handle(a.putSubject))
	read.GET("/subjects/:subject", a.handle(a.getSubject))
	if a.Erasure != nil {
		write.DELETE("/subjects/:subject", a.handle(a.deleteSubject))
	}
	write.PUT("/subjects/:subject/consents/:purpose", a.handle(a.putConsent))
	read.GET("/subjects/:subject/consents", a.handle(a.listConsents))
	read.GET("/subjects/:subject/events", a.handle(a.listEvents))
	v1.POST("/imports", a.requireScope(merchants.ScopeConsentWrite), limitBody(maxImportBody), a.handle(a.postImport))

	read.GET("/notices", a.handle(a.listNotices))
	read.GET("/notices/current", a.handle(a.currentNotice))
	read.GET("/notices/:version", a.handle(a.getNotice))
	adm.POST("/notices", a.handle(a.createNotice))
	adm.PUT("/notices/:version", a.handle(a.updateNotice))
	adm.DELETE("/notices/:version", a.handle(a.discardNotice))
	adm.POST("/notices/:version/publish", a.handle(a.publishNotice))
	read.GET("/notices/:version/announcement", a.handle(a.noticeAnnouncement))

	read.GET("/changes", a.handle(a.listChanges))

	read.GET("/check", a.handle(a.check))
	v1.POST("/check", a.requireScope(merchants.ScopeConsentRead), limitBody(maxBatchBody), a.handle(a.checkMany))

	if a.Fields != nil {
		adm.POST("/fields", a.handle(a.createField))
		read.GET("/fields", a.handle(a.listFields))
		read.GET("/fields/:key", a.handle(a.getField))
		fieldsRead := v1.Group("", a.requireScope(merchants.ScopeFieldsRead), limitBody(maxBody))
		fieldsRead.GET("/subjects/:subject/fields", a.handle(a.subjectFields))
	}
	if a.Guard != nil {
		adm.POST("/attributes", a.handle(a.createAttribute))
		read.GET("/attributes", a.handle(a.listAttributes))
		read.GET("/attributes/:key", a.handle(a.getAttribute))
		v1.POST("/personalization/check", a.requireScope(merchants.ScopeConsentRead), limitBody(maxBatchBody), a.handle(a.personalizationCheck))
	}
	if a.Requests != nil {
		read.GET("/requests", a.handle(a.listRequests))
		write.POST("/requests/:id/complete", a.handle(a.completeRequest))
	}
	if a.Recipients != nil {
		adm.PUT("/recipients", a.handle(a.putRecipients))
		read.GET("/recipients", a.handle(a.listRecipients))
	}
	if a.Offers != nil {
		adm.POST("/offers", a.handle(a.createOffer))
		read.GET("/offers", a.handle(a.listOffers))
		read.GET("/offers/:key", a.handle(a.getOffer))
		read.GET("/rewards", a.handle(a.listRewards))
		adm.GET("/reward-code-key", a.handle(a.rewardCodeKey))
		till := v1.Group("", a.requireScope(merchants.ScopeRewardsRedeem), limitBody(maxBody))
		till.GET("/rewards/:code", a.handle(a.getReward))
		till.POST("/rewards/:code/redeem", a.handle(a.redeemReward))
	}
	if a.Reports != nil {
		read.GET("/stats/purposes", a.handle(a.purposeStats))
		read.GET("/stats/notices/:version", a.handle(a.noticeStats))
		read.GET("/stats/banner", a.handle(a.bannerStats))
		if a.Offers != nil {
			read.GET("/stats/offers/:key", a.handle(a.offerStats))
		}
	}
	if a.Exports != nil {
		read.POST("/exports", a.handle(a.createExport))
		read.GET("/exports/:id", a.handle(a.getExport))
		read.GET("/exports/:id/data", a.handle(a.exportData))
	}
	if a.Webhooks != nil {
		adm.POST("/webhook-endpoints", a.handle(a.createEndpoint))
		adm.GET("/webhook-endpoints", a.handle(a.listEndpoints))
		adm.GET("/webhook-endpoints/:id", a.handle(a.getEndpoint))
		adm.DELETE("/webhook-endpoints/:id", a.handle(a.deleteEndpoint))
		adm.POST("/webhook-endpoints/:id/rotate-secret", a.handle(a.rotateEndpointSecret))
		adm.GET("/webhook-endpoints/:id/attempts", a.handle(a.listAttempts))
		adm.POST("/webhook-endpoints/:id/replay", a.handle(a.replayEndpoint))
	}

	if a.Center != nil {
		write.POST("/subjects/:subject/preference-links", a.handle(a.createPreferenceLink))
		read.GET("/subjects/:subject/unsubscribe-headers", a.handle(a.unsubscribeHeaders))
		write.POST("/widget-sessions", a.handle(a.createWidgetSession))
		adm.GET("/widget-settings", a.handle(a.getWidgetSettings))
		adm.PUT("/widget-settings", a.handle(a.putWidgetSettings))
		a.centerRoutes(r)
		if a.Staff != nil {
			a.consoleRoutes(r)
		}
	}

	adm.GET("/api-keys", a.handle(a.listKeys))
	adm.POST("/api-keys", a.handle(a.createKey))
	adm.DELETE("/api-keys/:id", a.handle(a.revokeKey))
	return r, nil
}

// centerRoutes lists the shopper pages: public ones, then those that need a
// session. Every POST passes the cross-origin guard.
func (a *API) centerRoutes(r *gin.Engine) {
	r.GET("/.well-known/jwks.json", a.jwks)
	r.GET("/.well-known/gpc.json", gpcPolicy)
	r.GET("/widget.js", widgetScript)
	w := r.Group("/w/v1/:slug", limitBody(maxBody), a.widgetCORS)
	w.OPTIONS("/config")
	w.OPTIONS("/state")
	w.OPTIONS("/consents")
	w.GET("/config", a.handle(a.widgetConfig))
	w.GET("/state", a.widgetSubject, a.handle(a.getWidgetState))
	w.PUT("/consents", a.widgetSubject, a.handle(a.putWidgetConsents))
	if a.Reach != nil {
		w.OPTIONS("/reach")
		w.POST("/reach", a.handle(a.widgetReach))
	}
	// One-click unsubscribe: the token is the authority, and mail providers
	// post without cookies or Origin, so there is no session and no
	// cross-origin guard here (RFC 8058).
	unsub := r.Group("/u", centerHeaders, limitBody(maxBody))
	unsub.GET("/:token", a.page(a.showUnsubscribe))
	unsub.POST("/:token", a.page(a.oneClickUnsubscribe))
	static := r.Group("/static", func(c *gin.Context) { c.Header("Cache-Control", "public, max-age=3600"); c.Next() })
	static.StaticFS("/", http.FS(web.Static()))

	center := r.Group("/c/:slug", centerHeaders, limitBody(maxBody), a.step(a.withMerchant))
	center.GET("/", a.page(a.centerHome))
	center.GET("/signin/sent", a.page(a.linkSent))
	center.GET("/link", a.showLink("link"))
	center.GET("/p", a.showLink("p"))
	post := center.Group("", a.step(a.crossOriginGuard))
	post.POST("/signin", a.page(a.requestLink))
	post.POST("/link", a.page(a.useLink))
	post.POST("/p", a.page(a.usePreferenceLink))
	post.POST("/signout", a.page(a.signOut))

	in := center.Group("", a.step(a.requireSession))
	center.GET("/notices", a.step(a.optionalSession), a.page(a.noticeVersions))
	center.GET("/protect", a.step(a.optionalSession), a.page(a.protect))
	center.GET("/do-not-sell", a.step(a.optionalSession), a.page(a.doNotSell))
	post.POST("/do-not-sell", a.step(a.optionalSession), a.page(a.saveDoNotSell))
	center.GET("/verify", a.page(a.verifyForm))
	post.POST("/verify", a.page(a.verifySubmitted))
	center.GET("/notices/:version", a.step(a.optionalSession), a.page(a.noticeVersion))
	in.GET("/review", a.page(a.review))
	in.POST("/review", a.step(a.crossOriginGuard), a.page(a.saveReview))
	in.GET("/preferences", a.page(a.preferences))
	in.GET("/receipts/:id", a.page(a.showReceipt))
	in.GET("/receipts/:id/download", a.page(a.downloadReceipt))
	in.POST("/preferences", a.step(a.crossOriginGuard), a.page(a.savePreferences))
	in.GET("/data", a.page(a.yourData))
	in.GET("/data/download.json", a.page(a.downloadData))
	in.GET("/data/download.csv", a.page(a.downloadDataCSV))
	if a.Requests != nil {
		in.POST("/requests", a.step(a.crossOriginGuard), a.page(a.askRequest))
	}
	if a.Erasure != nil {
		in.GET("/erase", a.page(a.showErase))
		in.POST("/erase", a.step(a.crossOriginGuard), a.page(a.erase))
	}
	if a.Offers != nil && a.Fields != nil {
		in.GET("/rewards", a.page(a.rewards))
		in.POST("/offers/:key", a.step(a.crossOriginGuard), a.page(a.acceptOffer))
	}
}
