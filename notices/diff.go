package notices

import "strings"

// Change marks a paragraph in a comparison of two texts.
type Change string

// Paragraph changes.
const (
	Same    Change = "same"
	Added   Change = "added"
	Removed Change = "removed"
)

// Paragraph is one paragraph of a comparison.
type Paragraph struct {
	Change Change
	Text   string
}

// Paragraphs splits a Markdown text at blank lines.
func Paragraphs(text string) []string {
	var out []string
	for _, p := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Compare returns the paragraphs of new in order, with the paragraphs of
// old that new dropped in their place, each marked: a longest common
// subsequence of paragraphs, so a reader sees exactly what changed.
func Compare(old, new string) []Paragraph {
	a, b := Paragraphs(old), Paragraphs(new)
	// lcs[i][j] is the length of the longest common subsequence of a[i:], b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []Paragraph
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, Paragraph{Same, b[j]})
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, Paragraph{Removed, a[i]})
			i++
		default:
			out = append(out, Paragraph{Added, b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		out = append(out, Paragraph{Removed, a[i]})
	}
	for ; j < len(b); j++ {
		out = append(out, Paragraph{Added, b[j]})
	}
	return out
}
