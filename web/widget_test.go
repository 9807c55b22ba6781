package web

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// widgetBudget is the most the embeddable widget, its styles included, may
// weigh gzipped.
const widgetBudget = 10 * 1024

func readWidget(t *testing.T) string {
	t.Helper()
	src, err := fs.ReadFile(Static(), "widget.js")
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

func TestWidgetFitsTheBudget(t *testing.T) {
	src := readWidget(t)
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write([]byte(src)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("widget.js: %d bytes, %d gzipped (budget %d)", len(src), buf.Len(), widgetBudget)
	if buf.Len() > widgetBudget {
		t.Errorf("widget.js is %d bytes gzipped, over the budget of %d", buf.Len(), widgetBudget)
	}
}

// TestWidgetIsCSPSafe keeps out what a strict CSP on the host page blocks
// (eval, inline handlers, inline styles) and HTML string sinks.
func TestWidgetIsCSPSafe(t *testing.T) {
	src := readWidget(t)
	for _, bad := range []string{"eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "<style", `setAttribute("style"`, `setAttribute("on`} {
		if strings.Contains(src, bad) {
			t.Errorf("widget.js contains %q", bad)
		}
	}
	for _, tc := range []struct {
		name string
		re   *regexp.Regexp
	}{
		{"inline handler attribute", regexp.MustCompile(`(?i)\son[a-z]+\s*=\s*["'\x60]`)},
		{"handler property", regexp.MustCompile(`\.on[a-z]+\s*=[^=]`)},
		{"string timer", regexp.MustCompile(`set(?:Timeout|Interval)\(\s*["'\x60]`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m := tc.re.FindString(src); m != "" {
				t.Errorf("widget.js contains %q", m)
			}
		})
	}
}

func TestWidgetSpeaksTheContract(t *testing.T) {
	src := readWidget(t)
	for _, want := range []string{
		"/w/v1/", `"config?lang="`, `"state"`, `"consents?lang=" + lang, "PUT"`,
		"fineline:change", "adoptedStyleSheets", "replaceSync",
		"X-Fineline-Device", "X-Fineline-GPC", "Authorization",
		`credentials: "omit"`, `mode: "cors"`, "fineline_device=",
		`"fineline-consent"`, `role", "switch"`, `"role", "status"`, `"role", "dialog"`, ":focus-visible",
		`script[type="text/plain"][data-fineline-purpose]`, "iframe[data-fineline-src]", `gtag("consent", "default"`,
		`gtag("consent", "update"`, "wait_for_update = 500", "origin_not_allowed",
		`api + "reach"`, "keepalive: true", `event: "shown"`, `event: "choose"`, `event: "choice"`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("widget.js lacks %q", want)
		}
	}
}
