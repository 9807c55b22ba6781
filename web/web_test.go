package web

import (
	"strings"
	"testing"
)

func TestMarkdownDropsHTMLAndScriptLinks(t *testing.T) {
	got := string(Markdown("# Title\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1)) and <b>bold</b> **strong**"))
	for _, bad := range []string{"<script", "javascript:", "<b>"} {
		if strings.Contains(got, bad) {
			t.Errorf("rendered %q, which contains %q", got, bad)
		}
	}
	for _, good := range []string{"<h1>Title</h1>", "<strong>strong</strong>"} {
		if !strings.Contains(got, good) {
			t.Errorf("rendered %q, which lacks %q", got, good)
		}
	}
}

func TestEveryPageAndMailParses(t *testing.T) {
	if _, err := LoadPages(); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMails(); err != nil {
		t.Fatal(err)
	}
}
