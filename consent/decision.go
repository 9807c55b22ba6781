package consent

import "time"

// Reason explains a decision.
type Reason string

// Reasons a decision can give. Only ReasonGranted allows.
const (
	ReasonGranted           Reason = "granted"
	ReasonNotGranted        Reason = "not_granted"
	ReasonWithdrawn         Reason = "withdrawn"
	ReasonNoRecord          Reason = "no_record"
	ReasonReconsentRequired Reason = "reconsent_required"
	// ReasonReconsentDue allows: the notice changed materially, and consent
	// under the old version counts until ReconsentBy.
	ReasonReconsentDue  Reason = "reconsent_due"
	ReasonGPCOptOut     Reason = "gpc_opt_out"
	ReasonSubjectErased Reason = "subject_erased"
	// ReasonPurposeRetired: the merchant retired the purpose; nothing is
	// allowed for it any more, whatever was decided.
	ReasonPurposeRetired Reason = "purpose_retired"
)

// Decision answers "may the merchant use this subject's data for this purpose now?".
type Decision struct {
	SubjectID     string
	Purpose       string
	Allowed       bool
	Reason        Reason
	NoticeVersion int       // notice version the deciding event was recorded under; 0 without one
	Since         time.Time // when the deciding event was recorded; zero without one
	// ReconsentBy is, for reconsent_due and reconsent_required, when
	// consent under the old notice stops (or stopped) counting.
	ReconsentBy time.Time
	// Recorded is true when the subject has events (on any purpose): the
	// merchant knows them.
	Recorded bool
}

// AboutKnownSubject reports whether the decision is about a subject the
// merchant has (one with events) and who was not erased: only such a
// subject's "who asked about me" counts a question about them.
func (d Decision) AboutKnownSubject() bool { return d.Recorded && d.Reason != ReasonSubjectErased }

// Decide derives a decision from a subject's record under the merchant's
// terms at now. It is default deny: only an explicit granted event for this
// very purpose allows, and only while no material change of the notice
// since that event has passed its deadline.
func Decide(st SubjectState, p Purpose, t Terms, now time.Time) Decision {
	if st.Erased() {
		return erasedDecision(st.SubjectID, p.Key)
	}
	ps, ok := st.Purposes[p.Key]
	d := decideOne(st.SubjectID, ps, ok, p, t, now)
	d.Recorded = st.Seq > 0
	return d
}

// erasedDecision is the decision on any purpose of an erased subject.
func erasedDecision(subjectID, purpose string) Decision {
	return Decision{SubjectID: subjectID, Purpose: purpose, Reason: ReasonSubjectErased}
}

// decideOne is Decide from the purpose's own state (decided false: none).
func decideOne(subjectID string, ps PurposeState, decided bool, p Purpose, t Terms, now time.Time) Decision {
	d := Decision{SubjectID: subjectID, Purpose: p.Key, Reason: ReasonNoRecord}
	if !decided {
		return d
	}
	d.NoticeVersion, d.Since = ps.NoticeVersion, ps.At
	if p.Retired() {
		d.Reason = ReasonPurposeRetired
		return d
	}
	switch ps.State {
	case Granted:
		d.Allowed, d.Reason = true, ReasonGranted
		if req, ok := t.Requirement(p.Key, ps.NoticeVersion, now); ok {
			d.ReconsentBy = req.Deadline
			if now.Before(req.Deadline) {
				d.Reason = ReasonReconsentDue
			} else {
				d.Allowed, d.Reason = false, ReasonReconsentRequired
			}
		}
	case Withdrawn:
		d.Reason = ReasonWithdrawn
		if ps.Channel == ChannelGPC {
			d.Reason = ReasonGPCOptOut
		}
	default:
		d.Reason = ReasonNotGranted
	}
	return d
}
