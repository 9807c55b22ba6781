package notices

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompareMarksChangedParagraphs(t *testing.T) {
	old := "# Privacy\n\nWe send a newsletter.\n\nWe never share data.\n\nContact us."
	new := "# Privacy\n\nWe send a newsletter.\r\n\r\nWe share purchases with one delivery partner.\n\nContact us.\n\nThis version applies from June."
	want := []Paragraph{
		{Same, "# Privacy"},
		{Same, "We send a newsletter."},
		{Removed, "We never share data."},
		{Added, "We share purchases with one delivery partner."},
		{Same, "Contact us."},
		{Added, "This version applies from June."},
	}
	if diff := cmp.Diff(want, Compare(old, new)); diff != "" {
		t.Fatalf("(-want +got)\n%s", diff)
	}
	if got := Compare("", "One.\n\nTwo."); len(got) != 2 || got[0].Change != Added {
		t.Fatalf("from nothing: %+v", got)
	}
}
