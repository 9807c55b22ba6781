package demo

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
)

// shopPage is a small shop on another origin that embeds the widget the
// way a merchant would: one script tag with a token its server minted.
//
//go:embed shop.html
var shopPage string

//go:embed shop.js
var shopScript []byte

var shopTemplate = template.Must(template.New("shop").Parse(shopPage))

// ShopHandler serves the demo shop: its page (a fresh widget token for
// alice on each view, minted by mint) and its own script, under a strict
// CSP that allows scripts and requests only from itself and Fineline.
func ShopHandler(fineline, slug string, mint func() (string, error)) http.Handler {
	mux := http.NewServeMux()
	csp := "default-src 'none'; script-src 'self' " + fineline + "; connect-src " + fineline + "; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		token, err := mint()
		if err != nil {
			http.Error(w, "could not mint a widget token", http.StatusInternalServerError)
			return
		}
		var buf bytes.Buffer
		if err := shopTemplate.Execute(&buf, struct{ Fineline, Slug, Token string }{fineline, slug, token}); err != nil {
			http.Error(w, "could not render the page", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = buf.WriteTo(w)
	})
	mux.HandleFunc("GET /shop.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(shopScript)
	})
	return mux
}
