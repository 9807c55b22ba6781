package consent

import (
	"slices"
	"strings"
	"time"
)

// PublishedVersion is what decisions need to know of a published notice
// version.
type PublishedVersion struct {
	Number int
	// Material versions make consent given under older versions stop
	// counting for Purposes, from Deadline (EffectiveAt plus any grace).
	Material    bool
	Purposes    []string
	EffectiveAt time.Time
	Deadline    time.Time
}

// Terms are a merchant's published notice versions.
type Terms struct {
	Published []PublishedVersion
}

// InForce returns the number of the newest version in effect at now, 0 if none.
func (t Terms) InForce(now time.Time) int {
	n := 0
	for _, v := range t.Published {
		if !v.EffectiveAt.After(now) && v.Number > n {
			n = v.Number
		}
	}
	return n
}

// Has reports whether version n was published.
func (t Terms) Has(n int) bool {
	return slices.ContainsFunc(t.Published, func(v PublishedVersion) bool { return v.Number == n })
}

// Requirement returns, among the material versions in effect at now that
// affect purpose and are newer than accepted (the version the consent was
// given under), the one whose deadline comes first: once any of them has
// passed its deadline, that consent no longer counts, whatever grace a
// later version gives.
func (t Terms) Requirement(purpose string, accepted int, now time.Time) (PublishedVersion, bool) {
	var first PublishedVersion
	found := false
	for _, v := range t.Published {
		if v.Material && v.Number > accepted && !v.EffectiveAt.After(now) && slices.Contains(v.Purposes, purpose) && (!found || v.Deadline.Before(first.Deadline)) {
			first, found = v, true
		}
	}
	return first, found
}

// Awaiting is a purpose the subject granted under a notice version that a
// published material version replaces: the subject is asked to re-accept.
type Awaiting struct {
	Purpose string
	// Accepted is the version the subject's grant was recorded under.
	Accepted int
	// Version is the newest published material version for the purpose
	// (possibly not in effect yet).
	Version PublishedVersion
}

// AwaitingReview lists the subject's granted purposes whose consent a
// published material version (in effect or announced) asks to renew.
func (t Terms) AwaitingReview(st SubjectState) []Awaiting {
	var out []Awaiting
	for key, ps := range st.Purposes {
		if ps.State != Granted {
			continue
		}
		var newest PublishedVersion
		found := false
		for _, v := range t.Published {
			if v.Material && slices.Contains(v.Purposes, key) && v.Number > ps.NoticeVersion && (!found || v.Number > newest.Number) {
				newest, found = v, true
			}
		}
		if found {
			out = append(out, Awaiting{Purpose: key, Accepted: ps.NoticeVersion, Version: newest})
		}
	}
	slices.SortFunc(out, func(a, b Awaiting) int { return strings.Compare(a.Purpose, b.Purpose) })
	return out
}
