package handlers

import (
	"context"
	"io/fs"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/web"
)

// The consent widget runs on merchants' own sites and calls /w/v1/{slug}/...
// Only pages from the merchant's allowed origins get an answer (CORS), and
// only they can use a widget token.

var deviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9-]{8,64}$`)

const ctxWidgetSubject = "fineline.widget_subject"

// widgetCORS resolves the merchant and refuses any origin it did not allow.
func (a *API) widgetCORS(c *gin.Context) {
	slug, preview := strings.CutSuffix(c.Param("slug"), previewSuffix)
	if !merchants.ValidSlug(slug) {
		a.writeError(c, apperr.New(apperr.NotFound, "no such merchant"))
		return
	}
	m, err := a.Merchants.Store.MerchantBySlug(c.Request.Context(), slug)
	if err != nil {
		a.writeError(c, err)
		return
	}
	if preview {
		a.widgetPreview(c, m)
		return
	}
	origin := c.GetHeader("Origin")
	h := c.Writer.Header()
	h.Add("Vary", "Origin")
	if origin == "" || !slices.Contains(m.AllowedOrigins, origin) {
		// The refusal of the config, the widget's first request (a simple
		// GET, no preflight), is readable by the page, so the widget can
		// name the setting to change. Nothing else is: no methods or
		// headers are allowed, so every other request fails its preflight.
		if origin != "" && c.Request.Method == http.MethodGet && c.FullPath() == "/w/v1/:slug/config" {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		a.writeError(c, apperr.New(apperr.Forbidden, "the origin %s is not among the widget's allowed origins (allowed_origins in the widget settings)", origin).WithDetail("origin_not_allowed"))
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if err := m.Active(); err != nil {
		a.writeError(c, err) // readable by the merchant's own sites, so the widget can say so
		return
	}
	h.Set("Access-Control-Allow-Methods", "GET, PUT, POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Fineline-Device, X-Fineline-GPC")
	h.Set("Access-Control-Max-Age", "600")
	if c.Request.Method == http.MethodOptions {
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	c.Set(ctxMerchant, m)
	lang := a.Center.Locales.Pick(c.Query("lang"), "", c.GetHeader("Accept-Language"))
	c.Set(ctxLocalizer, a.Center.Locales.For(lang))
	c.Next()
}

// previewSuffix turns a merchant's slug into the handle of its widget's
// preview ("demo-shop~preview"), the one the console's preview page gives
// the widget: the same script and calls, answered without recording.
const previewSuffix = "~preview"

const (
	ctxPreview      = "fineline.widget_preview"
	ctxPreviewState = "fineline.widget_preview_state"
	// codePreviewOrigin refuses a preview call from another site.
	codePreviewOrigin = "preview_same_origin_only"
)

// widgetPreview admits a call of the console's widget preview. The preview
// page is on Fineline's own origin, so only same-origin calls are taken
// (no CORS headers); it answers as for a newcomer and records nothing, so
// it needs no session and tells nothing that the config does not.
func (a *API) widgetPreview(c *gin.Context, m merchants.Merchant) {
	if site := c.GetHeader("Sec-Fetch-Site"); site != "" && site != "same-origin" || a.cop.Check(c.Request) != nil {
		a.writeError(c, apperr.New(apperr.Forbidden, "the widget preview runs in the console only").WithDetail(codePreviewOrigin))
		return
	}
	if err := m.Active(); err != nil {
		a.writeError(c, err)
		return
	}
	if c.Request.Method == http.MethodOptions {
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	c.Set(ctxMerchant, m)
	c.Set(ctxPreview, true)
	c.Set(ctxLocalizer, a.Center.Locales.For(a.Center.Locales.Pick(c.Query("lang"), "", c.GetHeader("Accept-Language"))))
	c.Next()
}

func isPreview(c *gin.Context) bool { return c.GetBool(ctxPreview) }

// widgetSubject names who the widget speaks for: the subject of a widget
// token, or an anonymous device ("device:<id>"). In the preview it is a
// newcomer whose choices are never recorded, and a GPC signal is not
// honoured (honouring it records a refusal).
func (a *API) widgetSubject(c *gin.Context) {
	if isPreview(c) {
		c.Set(ctxWidgetSubject, "device:preview")
		c.Next()
		return
	}
	m := merchant(c)
	if token, ok := bearer(c); ok {
		subject, err := a.Center.Signin.ParseWidgetToken(m.ID, token)
		if err != nil {
			a.writeError(c, err)
			return
		}
		c.Set(ctxWidgetSubject, subject)
	} else {
		dev := c.GetHeader("X-Fineline-Device")
		if !deviceIDPattern.MatchString(dev) {
			a.writeError(c, apperr.New(apperr.Unauthorized, "send a widget token or a device id").WithDetail("unauthorized"))
			return
		}
		c.Set(ctxWidgetSubject, "device:"+dev)
	}
	if c.GetHeader("Sec-GPC") == "1" || c.GetHeader("X-Fineline-GPC") == "1" {
		c.Request.Header.Set("Sec-GPC", "1")
		if err := a.honourGPC(c, c.GetString(ctxWidgetSubject)); err != nil {
			a.writeError(c, err)
			return
		}
	}
	c.Next()
}

type widgetPurposeJSON struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Statement   string `json:"statement"`
	Sensitive   bool   `json:"sensitive"`
	SaleOrShare bool   `json:"sale_or_share"`
}

// widgetLevelJSON is one answer of the widget's "how personal may we be?"
// control.
type widgetLevelJSON struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	Hint string `json:"hint"`
}

// widgetConfig gives the widget the merchant's purposes, the privacy
// levels and its texts in the page's language.
func (a *API) widgetConfig(c *gin.Context) error {
	l := localizer(c)
	ps, err := a.offeredPurposes(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return err
	}
	out := make([]widgetPurposeJSON, 0, len(ps))
	for _, p := range ps {
		t := p.TextFor(l.Lang)
		out = append(out, widgetPurposeJSON{Key: p.Key, Name: t.Name, Statement: t.Statement, Sensitive: p.Sensitive, SaleOrShare: p.SaleOrShare})
	}
	texts := map[string]string{}
	for _, k := range []string{"title", "intro", "accept", "decline", "save", "sensitive", "receipt", "close", "saved", "renew", "level",
		"banner", "renew_banner", "choose", "details", "button", "reload", "retry", "error", "sensitive_badge"} {
		texts[k] = l.T("widget_" + k)
	}
	m := merchant(c)
	mode := m.ConsentMode
	if mode == nil {
		mode = map[string][]string{}
	}
	levels := make([]widgetLevelJSON, 0, len(consent.Levels()))
	for _, lv := range consent.Levels() {
		levels = append(levels, widgetLevelJSON{Key: string(lv), Name: levelName(l, lv), Hint: l.T("level_" + string(lv) + "_hint")})
	}
	c.JSON(http.StatusOK, gin.H{"lang": l.Lang, "purposes": out, "levels": levels, "texts": texts, "consent_mode": mode,
		"details_url": a.Center.BaseURL + "/c/" + m.Slug + "/notices?lang=" + l.Lang})
	return nil
}

type widgetDecisionJSON struct {
	State   string `json:"state,omitempty"`
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

type widgetStateJSON struct {
	Consents map[string]widgetDecisionJSON `json:"consents"`
	// PrivacyLevel is the level the subject's messages are held to (the
	// default until they choose one); an anonymous device has none.
	PrivacyLevel string  `json:"privacy_level,omitempty"`
	ReceiptURL   *string `json:"receipt_url"`
	// Elsewhere lists the purposes a save left alone because they changed
	// elsewhere since the widget showed them.
	Elsewhere []string `json:"elsewhere,omitempty"`
}

func (a *API) widgetState(c *gin.Context, receiptURL *string, elsewhere []string) error {
	ctx := c.Request.Context()
	m := merchant(c)
	subject := c.GetString(ctxWidgetSubject)
	var (
		rec consent.SubjectState
		err error
	)
	if isPreview(c) {
		v, _ := c.Get(ctxPreviewState)
		rec, _ = v.(consent.SubjectState) // a newcomer until a choice is previewed
		rec.MerchantID, rec.SubjectID = m.ID, subject
	} else {
		rec, err = a.Ledger.StateOf(ctx, m.ID, subject)
	}
	if apperr.Is(err, apperr.NotFound) {
		rec, err = consent.SubjectState{MerchantID: m.ID, SubjectID: subject}, nil
	}
	if err != nil {
		return err
	}
	ps, err := a.offeredPurposes(ctx, m.ID)
	if err != nil {
		return err
	}
	ds, err := a.Ledger.DecideAll(ctx, m.ID, rec, ps)
	if err != nil {
		return err
	}
	out := widgetStateJSON{Consents: map[string]widgetDecisionJSON{}, ReceiptURL: receiptURL, Elsewhere: elsewhere}
	if !isDevice(subject) {
		out.PrivacyLevel = string(rec.PrivacyLevel())
	}
	// Purposes never decided are left out: the widget opens for them.
	for i, p := range ps {
		st, ok := rec.Purposes[p.Key]
		if !ok {
			continue
		}
		out.Consents[p.Key] = widgetDecisionJSON{State: string(st.State), Allowed: ds[i].Allowed, Reason: string(ds[i].Reason)}
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func (a *API) getWidgetState(c *gin.Context) error { return a.widgetState(c, nil, nil) }

type widgetChoicesRequest struct {
	Choices  map[string]consent.State `json:"choices"`
	Explicit []string                 `json:"explicit"`
	// Shown is how the widget showed each purpose when the visitor chose:
	// "on", "off" or "undecided". A purpose it names changes only if the
	// visitor changed it from that.
	Shown map[string]string `json:"shown"`
	// PrivacyLevel, when set, is the level the shopper chooses, and
	// PrivacyLevelShown the level the widget showed: a level left as shown
	// leaves one changed elsewhere meanwhile as it is.
	PrivacyLevel      string `json:"privacy_level"`
	PrivacyLevelShown string `json:"privacy_level_shown"`
}

// codeLevelNeedsSubject refuses a privacy level from an anonymous device.
const codeLevelNeedsSubject = "privacy_level_needs_subject"

// widgetLevel reads the privacy level of a widget request and the level
// the widget showed ("" when not given). An anonymous device cannot choose
// one: the level says how personal messages to a known shopper may be, and
// an anonymous device receives none. Nor would a device's level reach the
// shopper: consent.CarryOver carries a device's decisions on purposes over
// only where the subject made none, and a level has no such condition, so
// carrying one over could undo the subject's own. The widget shows the
// control only with a widget token.
func widgetLevel(req widgetChoicesRequest, subject string) (level, shown consent.Level, err error) {
	if req.PrivacyLevel == "" && req.PrivacyLevelShown == "" {
		return "", "", nil
	}
	if isDevice(subject) {
		return "", "", apperr.New(apperr.Invalid, "a privacy level is chosen by a known shopper (a widget token), not by an anonymous device").WithDetail(codeLevelNeedsSubject)
	}
	if req.PrivacyLevel == "" {
		return "", "", apperr.New(apperr.Invalid, "privacy_level_shown without privacy_level").WithDetail(consent.CodeInvalidLevel)
	}
	if level, err = consent.ParseLevel(req.PrivacyLevel); err != nil {
		return "", "", err
	}
	if req.PrivacyLevelShown != "" {
		if shown, err = consent.ParseLevel(req.PrivacyLevelShown); err != nil {
			return "", "", err
		}
	}
	return level, shown, nil
}

// widgetShown reads how the widget showed a purpose.
func widgetShown(s map[string]string, key string) (consent.Shown, error) {
	v, ok := s[key]
	if !ok {
		return consent.NotShown, nil
	}
	switch v {
	case "on":
		return consent.ShownOn, nil
	case "off":
		return consent.ShownOff, nil
	case "undecided":
		return consent.ShownUndecided, nil
	}
	return consent.NotShown, apperr.New(apperr.Invalid, "shown.%s must be on, off or undecided", key).WithDetail(consent.CodeInvalidChoices)
}

// putWidgetConsents hands the visitor's choices (channel widget), and the
// shopper's privacy level, to the ledger's one operation. A sensitive
// purpose is granted only when the visitor switched it on themselves
// ("explicit"); Accept never lists it.
func (a *API) putWidgetConsents(c *gin.Context) error {
	var req widgetChoicesRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	m := merchant(c)
	subject := c.GetString(ctxWidgetSubject)
	level, shown, err := widgetLevel(req, subject)
	if err != nil {
		return err
	}
	if (len(req.Choices) == 0 && level == "") || len(req.Choices) > consent.MaxRequests {
		return apperr.New(apperr.Invalid, "choices must name 1 to %d purposes, or privacy_level be set", consent.MaxRequests).WithDetail(consent.CodeInvalidChoices)
	}
	choices := consent.Choices{MerchantID: m.ID, SubjectID: subject, Channel: consent.ChannelWidget, Actor: "widget", Level: level, LevelShown: shown,
		Locale: askedIn(c)}
	for k, st := range req.Choices {
		shown, err := widgetShown(req.Shown, k)
		if err != nil {
			return err
		}
		choices.Requests = append(choices.Requests, consent.Request{Purpose: k, State: st, Explicit: slices.Contains(req.Explicit, k), Shown: shown})
	}
	if isPreview(c) {
		st, err := a.Ledger.Preview(c.Request.Context(), choices)
		if err != nil {
			return err
		}
		c.Set(ctxPreviewState, st)
		return a.widgetState(c, nil, nil)
	}
	res, err := a.Ledger.Apply(c.Request.Context(), choices)
	if err != nil {
		return err
	}
	var receiptURL *string
	if len(res.Decided()) > 0 && !isDevice(subject) {
		id, err := a.issueReceipt(c, consent.ChannelWidget, res)
		if err != nil {
			return err
		}
		u := a.Center.BaseURL + basePath(c) + "receipts/" + id
		receiptURL = &u
	}
	var elsewhere []string
	for _, e := range res.Elsewhere {
		elsewhere = append(elsewhere, e.Purpose)
	}
	return a.widgetState(c, receiptURL, elsewhere)
}

func isDevice(subject string) bool { return strings.HasPrefix(subject, "device:") }

type widgetSessionRequest struct {
	Subject  string `json:"subject"`
	DeviceID string `json:"device_id"`
}

// createWidgetSession mints a widget token for one subject. With a device
// id, the choices that anonymous device made are carried over to the
// subject for every purpose the subject has not decided (consent.CarryOver,
// judged under the subject's lock, so a decision made meanwhile stands).
func (a *API) createWidgetSession(c *gin.Context) error {
	var req widgetSessionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request.Context()
	sub, err := a.Subjects.Live(ctx, merchantID(c), req.Subject)
	if err != nil {
		return err
	}
	if req.DeviceID != "" {
		if !deviceIDPattern.MatchString(req.DeviceID) {
			return apperr.New(apperr.Invalid, "device_id must be 8-64 letters, digits or hyphens").WithDetail("invalid_device")
		}
		device := "device:" + req.DeviceID
		dev, err := a.Ledger.StateOf(ctx, merchantID(c), device)
		switch {
		case apperr.Is(err, apperr.NotFound):
		case err != nil:
			return err
		case len(dev.Purposes) > 0:
			offered, err := a.offeredPurposes(ctx, merchantID(c))
			if err != nil {
				return err
			}
			if carry := consent.CarryOver(merchantID(c), sub.ID, device, dev, offered); len(carry.Requests) > 0 {
				if _, err := a.Ledger.Apply(ctx, carry); err != nil {
					return err
				}
			}
		}
	}
	tok, exp, err := a.Center.Signin.NewWidgetToken(merchantID(c), sub.ID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, gin.H{"token": tok, "expires_at": exp})
	return nil
}

type widgetSettingsJSON struct {
	AllowedOrigins []string `json:"allowed_origins"`
	// ConsentMode maps Google Consent Mode types to the purposes each needs.
	ConsentMode map[string][]string `json:"consent_mode"`
}

func widgetSettingsOut(ws merchants.WidgetSettings) widgetSettingsJSON {
	out := widgetSettingsJSON{AllowedOrigins: ws.AllowedOrigins, ConsentMode: ws.ConsentMode}
	if out.AllowedOrigins == nil {
		out.AllowedOrigins = []string{}
	}
	if out.ConsentMode == nil {
		out.ConsentMode = map[string][]string{}
	}
	return out
}

func (a *API) getWidgetSettings(c *gin.Context) error {
	m, err := a.Merchants.Store.Merchant(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, widgetSettingsOut(merchants.WidgetSettings{AllowedOrigins: m.AllowedOrigins, ConsentMode: m.ConsentMode}))
	return nil
}

// putWidgetSettings replaces the widget settings: a member left out is
// emptied (no origins; every Consent Mode type denied).
func (a *API) putWidgetSettings(c *gin.Context) error {
	var req widgetSettingsJSON
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ws, err := a.setWidgetSettings(c.Request.Context(), merchantID(c), merchants.WidgetSettings{AllowedOrigins: req.AllowedOrigins, ConsentMode: req.ConsentMode})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, widgetSettingsOut(ws))
	return nil
}

// setWidgetSettings validates and stores the widget settings against the
// merchant's purposes: the API and the console both save them this way.
func (a *API) setWidgetSettings(ctx context.Context, merchantID string, ws merchants.WidgetSettings) (merchants.WidgetSettings, error) {
	ps, err := a.Purposes.List(ctx, merchantID)
	if err != nil {
		return merchants.WidgetSettings{}, err
	}
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = p.Key
	}
	return a.Merchants.SetWidgetSettings(ctx, merchantID, ws, keys)
}

// widgetScript serves the widget, for one script tag on a merchant's page.
func widgetScript(c *gin.Context) {
	b, err := fs.ReadFile(web.Static(), "widget.js")
	if err != nil {
		c.Status(http.StatusNotFound)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Header("Cross-Origin-Resource-Policy", "cross-origin")
	c.Data(http.StatusOK, "text/javascript; charset=utf-8", b)
}
