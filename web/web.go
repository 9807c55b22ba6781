// Package web holds the shopper-facing pages and the merchant console: templates, styles, the small
// script that enhances them, and the emails they send, all embedded. Pages
// are parsed once at start; a missing or broken template fails the start.
package web

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	texttemplate "text/template"

	"github.com/yuin/goldmark"
)

//go:embed templates/*.html templates/console/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

//go:embed mail
var mailFiles embed.FS

// Static returns the files served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}

// Pages renders the center's pages.
type Pages struct {
	pages map[string]*htmltemplate.Template
}

// PageNames lists every page template.
func PageNames() []string {
	return []string{"signin", "signin_sent", "link", "preferences", "receipt", "error", "review", "notices", "notice", "unsubscribe", "rewards", "data", "erase", "erased", "protect", "do_not_sell", "verify"}
}

// LoadPages parses the layout with each page.
func LoadPages() (*Pages, error) {
	p := &Pages{pages: map[string]*htmltemplate.Template{}}
	for _, name := range PageNames() {
		t, err := htmltemplate.New(name).ParseFS(templateFiles, "templates/layout.html", "templates/fields.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		p.pages[name] = t
	}
	for _, name := range ConsolePageNames() {
		t, err := htmltemplate.New(name).ParseFS(templateFiles, "templates/console/layout.html", "templates/parts.html", "templates/console/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse console page %s: %w", name, err)
		}
		p.pages["console/"+name] = t
	}
	return p, nil
}

// ConsolePageNames lists every page of the merchant console, rendered as
// "console/<name>".
func ConsolePageNames() []string {
	return []string{"signin", "signin_sent", "link", "error", "overview", "purposes", "purpose", "notices", "notice", "keys", "key_created", "staff", "audit", "widget", "preview", "fields", "offers", "analytics"}
}

// Render returns page name rendered with data, whole: a template error
// never leaves half a page, and the caller writes its status only once the
// page exists.
func (p *Pages) Render(name string, data any) ([]byte, error) {
	t, ok := p.pages[name]
	if !ok {
		return nil, fmt.Errorf("no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// Mails renders emails: a plain-text and an HTML body per message.
type Mails struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// MailNames lists every email.
func MailNames() []string { return []string{"signin", "announce", "reward", "erased", "console"} }

// LoadMails parses every email's two bodies.
func LoadMails() (*Mails, error) {
	m := &Mails{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, name := range MailNames() {
		t, err := texttemplate.ParseFS(mailFiles, "mail/"+name+".txt")
		if err != nil {
			return nil, fmt.Errorf("parse mail %s: %w", name, err)
		}
		h, err := htmltemplate.ParseFS(mailFiles, "mail/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse mail %s: %w", name, err)
		}
		m.text[name], m.html[name] = t, h
	}
	return m, nil
}

// Render returns the text and HTML bodies of email name.
func (m *Mails) Render(name string, data any) (text, html string, err error) {
	t, ok := m.text[name]
	if !ok {
		return "", "", fmt.Errorf("no mail %q", name)
	}
	var tb, hb bytes.Buffer
	if err := t.Execute(&tb, data); err != nil {
		return "", "", fmt.Errorf("render mail %s: %w", name, err)
	}
	if err := m.html[name].Execute(&hb, data); err != nil {
		return "", "", fmt.Errorf("render mail %s: %w", name, err)
	}
	return tb.String(), hb.String(), nil
}

// markdown renders merchant-written Markdown. Raw HTML in the source is
// dropped and dangerous link schemes (javascript:, ...) are neutralised:
// goldmark does both unless told it is unsafe, which it is not here.
var markdown = goldmark.New()

// Markdown renders src as safe HTML.
func Markdown(src string) htmltemplate.HTML {
	var buf bytes.Buffer
	if err := markdown.Convert([]byte(src), &buf); err != nil {
		return htmltemplate.HTML(htmltemplate.HTMLEscapeString(src))
	}
	return htmltemplate.HTML(buf.String()) // #nosec: goldmark escapes text and drops raw HTML
}
