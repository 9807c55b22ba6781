package demo

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"html/template"
	"net/http"
	"slices"
)

// shopPage is a small shop on another origin that embeds the widget the
// way a merchant would: one script tag with a token its server minted, and
// tags that wait for consent.
//
//go:embed shop.html
var shopPage string

//go:embed shop.js
var shopScript []byte

//go:embed recommendations.js
var recommendationsScript []byte

//go:embed partner.html
var partnerPage []byte

//go:embed shop.css
var shopStyle []byte

var shopTemplate = template.Must(template.New("shop").Parse(shopPage))

// ShopHandler serves the demo shop: its page (a fresh widget token on each
// view, minted by mint; ?lang=en|es|de|fr picks the widget's language, ?privacy_button=off
// leaves the opening to the shop's own button), its scripts and its partner frame, under a strict
// CSP that allows scripts only from itself and Fineline (and the page's one
// gated inline script by its nonce) and requests only to Fineline.
func ShopHandler(fineline, slug string, mint func() (string, error)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		token, err := mint()
		if err != nil {
			http.Error(w, "could not mint a widget token", http.StatusInternalServerError)
			return
		}
		lang := r.URL.Query().Get("lang")
		if !slices.Contains([]string{"en", "es", "de", "fr"}, lang) {
			lang = "en"
		}
		nonce := rand.Text()
		var buf bytes.Buffer
		if err := shopTemplate.Execute(&buf, struct {
			Fineline, Slug, Token, Nonce, Lang string
			NoButton                           bool
		}{fineline, slug, token, nonce, lang, r.URL.Query().Get("privacy_button") == "off"}); err != nil {
			http.Error(w, "could not render the page", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self' "+fineline+" 'nonce-"+nonce+"'; connect-src "+fineline+
			"; style-src 'self'; img-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = buf.WriteTo(w)
	})
	static := func(path, contentType string, body []byte) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			if contentType == "text/html; charset=utf-8" {
				w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'self'")
			}
			_, _ = w.Write(body)
		})
	}
	static("/shop.js", "text/javascript; charset=utf-8", shopScript)
	static("/recommendations.js", "text/javascript; charset=utf-8", recommendationsScript)
	static("/partner.html", "text/html; charset=utf-8", partnerPage)
	static("/shop.css", "text/css; charset=utf-8", shopStyle)
	return mux
}
