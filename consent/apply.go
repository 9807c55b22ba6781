package consent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
)

// Shown is how a page or a device showed a purpose when the subject chose:
// a request from a page changes only what the subject changed from that.
type Shown int

// How a purpose was shown.
const (
	// NotShown: the request does not come from a page (API, GPC,
	// unsubscribe link); it applies to the state as it is.
	NotShown Shown = iota
	// ShownOn: the purpose was shown allowed (switched on).
	ShownOn
	// ShownOff: the purpose was shown not allowed (switched off; a page that
	// draws a purpose never decided as off says so too).
	ShownOff
	// ShownUndecided: the purpose was shown as never decided (the widget
	// opens for such purposes).
	ShownUndecided
)

// Condition limits when a request applies, judged under the subject's lock
// against the state as it is then.
type Condition int

// Conditions of a request.
const (
	// Always applies the request.
	Always Condition = iota
	// IfUndecided applies it only to a purpose the subject never decided:
	// an anonymous device's choices carried over to the subject.
	IfUndecided
	// IfNoGPCSignal applies it only if no Global Privacy Control signal was
	// recorded for the purpose yet, and then always records one: one signal
	// withdraws once, and a grant after it is the subject opting in again.
	IfNoGPCSignal
	// IfGranted applies a refusal only to a purpose whose latest decision
	// is a grant ("turn everything off" leaves undecided purposes undecided).
	IfGranted
)

// Request is one purpose's part of a set of choices.
type Request struct {
	Purpose string
	State   State
	// Explicit says the subject switched this very purpose on themselves;
	// a sensitive purpose is granted only so.
	Explicit bool
	// NoticeVersion is the published version the subject accepted when
	// they were shown one (re-accepting changed terms before they take
	// effect); 0 records the version in force.
	NoticeVersion int
	// Shown is how the purpose was shown when the subject chose.
	Shown Shown
	// When limits when the request applies.
	When Condition
}

// Choices is everything one subject decides at once, through one channel:
// decisions on purposes and the values they volunteer with them.
type Choices struct {
	MerchantID string
	SubjectID  string
	Channel    Channel
	// Actor names who recorded it: "api_key:<id>", "session:<id>", ...
	Actor string
	// IdempotencyKey, when set, makes a retried request return the first result.
	IdempotencyKey string
	Requests       []Request
	// Level, when set, is the privacy level the subject chooses; LevelShown
	// is the level a page showed them ("" when the request does not come
	// from a page): a level left as shown is not a choice, and leaves a
	// level changed elsewhere meanwhile as it is.
	Level      Level
	LevelShown Level
	// Values are volunteered values by field key ("" removes one), checked
	// by the Keeper before anything is written and kept after the decisions.
	Values map[string]string
	// Locale is the language the subject was asked in (a BCP 47 tag), ""
	// when the channel does not know it; the decisions carry it.
	Locale string
}

// Elsewhere is a purpose a page left alone because its state changed since
// the page was shown: the subject did not touch it, and someone else did.
type Elsewhere struct {
	Purpose string
	State   PurposeState
	// Allowed is the decision on the purpose now.
	Allowed bool
}

// Applied is what applying a set of choices did.
type Applied struct {
	// Events are the events appended, in chain order: decisions first, then
	// what the Keeper recorded (values given, values erased).
	Events []Event
	// State is the subject's state after them.
	State SubjectState
	// Decisions are the decisions on the requested purposes now, in the
	// order requested.
	Decisions []Decision
	// Elsewhere lists the purposes changed elsewhere since they were shown.
	Elsewhere []Elsewhere
	// Kept says what happened to volunteered values.
	Kept Kept
	// Replayed is true when an Idempotency-Key matched an earlier request
	// and nothing new was written; Events then holds that request's event.
	Replayed bool
}

// Decided returns the consent decisions appended (not the field events):
// what a receipt lists as changed.
func (a Applied) Decided() []Event {
	var out []Event
	for _, e := range a.Events {
		if e.Field == "" {
			out = append(out, e)
		}
	}
	return out
}

// Volunteered is a value a subject gives or removes, checked by the Keeper.
type Volunteered struct {
	Field string
	// Value is normalized; "" removes the subject's value.
	Value string
	// Purposes are the purposes that need the field: a value is kept only
	// while one of them is granted.
	Purposes []string
}

// Kept is what a Keeper did with volunteered values.
type Kept struct {
	// Stored and Erased are field keys.
	Stored []string
	Erased []string
}

// Keeper keeps the data subjects volunteer for purposes (the fields
// package). Apply calls it before writing anything, and under the
// subject's lock after the decisions.
type Keeper interface {
	// Prepare checks and normalizes values before anything is written.
	Prepare(ctx context.Context, merchantID string, values map[string]string) ([]Volunteered, error)
	// Keep stores vs and erases every value of the subject that needs one
	// of the purposes turnedOff and that no purpose granted in tx.State()
	// needs any more. It records both in the chain through tx.
	Keep(ctx context.Context, tx *Tx, vs []Volunteered, turnedOff []string, channel Channel, actor string) (Kept, error)
}

// FieldNeedsPurposeError refuses a value whose purposes would all be off
// after the choices: data is volunteered for a purpose, never on its own.
type FieldNeedsPurposeError struct {
	Field    string
	Purposes []string
}

// Error implements error.
func (e *FieldNeedsPurposeError) Error() string {
	return fmt.Sprintf("field %q is kept only while one of %s is granted", e.Field, strings.Join(e.Purposes, ", "))
}

// AppErr is the error as the HTTP layer shows it.
func (e *FieldNeedsPurposeError) AppErr() *apperr.Error {
	return &apperr.Error{Code: apperr.Invalid, Message: e.Error(), Detail: CodeFieldNeedsPurpose, Err: e}
}

// CodeFieldNeedsPurpose refuses a value without a granted purpose.
const CodeFieldNeedsPurpose = "field_needs_purpose"

// MaxRequests is the most purposes one set of choices may name.
const MaxRequests = 100

// resolved is a request with its purpose read.
type resolved struct {
	Request
	p Purpose
}

// Apply decides and records a set of choices, the one place every channel
// calls (center, review page, offers, widget, API, GPC, unsubscribe links,
// device links): it validates everything first (unknown purposes, states,
// sensitive purposes only by explicit choice, notice versions, values) and
// writes nothing if anything is wrong; then, under the subject's lock and
// against the state it re-reads there, it decides which events to append
// (see plan), appends them, lets the Keeper keep or erase volunteered data,
// and returns what happened.
func (l *Ledger) Apply(ctx context.Context, c Choices) (Applied, error) {
	var err error
	if c.Locale, err = CanonicalLocale(c.Locale); err != nil {
		return Applied{}, err
	}
	reqs, err := l.validate(ctx, c)
	if err != nil {
		return Applied{}, err
	}
	var vs []Volunteered
	if len(c.Values) > 0 {
		if l.keeper == nil {
			return Applied{}, apperr.New(apperr.Invalid, "this merchant keeps no volunteered data")
		}
		if vs, err = l.keeper.Prepare(ctx, c.MerchantID, c.Values); err != nil {
			return Applied{}, err
		}
	}
	if c.IdempotencyKey != "" {
		res, done, err := l.claim(ctx, c, reqs)
		if err != nil || done {
			return res, err
		}
	}
	var out Applied
	events, st, err := l.Locked(ctx, c.MerchantID, c.SubjectID, func(tx *Tx) error {
		if tx.st.Seq == 0 {
			// A subject with events exists; one without may not yet.
			if err := l.ensureSubject(ctx, c.MerchantID, c.SubjectID); err != nil {
				return err
			}
		}
		inForce := tx.terms.InForce(tx.now)
		decisions, elsewhere := plan(tx.st, reqs, tx.terms, tx.now, inForce)
		out.Elsewhere = elsewhere
		for i := range decisions {
			decisions[i].Channel, decisions[i].Actor, decisions[i].IdempotencyKey, decisions[i].Locale = c.Channel, c.Actor, c.IdempotencyKey, c.Locale
		}
		next := tx.st
		for _, e := range decisions {
			e.Seq = next.Seq + 1
			next = next.Next(e)
		}
		if e, ok := planLevel(tx.st, c.Level, c.LevelShown); ok {
			e.Channel, e.Actor, e.IdempotencyKey, e.NoticeVersion = c.Channel, c.Actor, c.IdempotencyKey, inForce
			decisions = append(decisions, e)
		}
		for _, v := range vs {
			if v.Value != "" && !slices.ContainsFunc(v.Purposes, next.Granted) {
				return (&FieldNeedsPurposeError{Field: v.Field, Purposes: v.Purposes}).AppErr()
			}
		}
		if err := tx.Append(ctx, decisions...); err != nil {
			return err
		}
		if l.keeper == nil {
			return nil
		}
		var off []string
		for _, e := range decisions {
			if e.Purpose != "" && e.State != Granted {
				off = append(off, e.Purpose)
			}
		}
		if len(vs) == 0 && len(off) == 0 {
			return nil
		}
		// Data kept for a purpose goes with it, before the caller answers.
		kept, err := l.keeper.Keep(ctx, tx, vs, off, c.Channel, c.Actor)
		out.Kept.Stored = append(out.Kept.Stored, kept.Stored...)
		out.Kept.Erased = append(out.Kept.Erased, kept.Erased...)
		return err
	})
	out.Events, out.State = events, st
	if err != nil {
		return out, err
	}
	if c.IdempotencyKey != "" {
		seq := st.LevelSeq
		if len(reqs) > 0 {
			seq = st.Purposes[reqs[0].Purpose].Seq
		}
		if err := l.store.CompleteIdempotencyKey(ctx, c.MerchantID, c.IdempotencyKey, seq); err != nil {
			l.log.WarnContext(ctx, "idempotency key not completed; a retry finds the event in the chain", "err", err)
		}
	}
	out.Decisions = l.decideRequested(ctx, st, reqs)
	return out, nil
}

// decideRequested decides the requested purposes for st now.
func (l *Ledger) decideRequested(ctx context.Context, st SubjectState, reqs []resolved) []Decision {
	terms, err := l.notices.Terms(ctx, st.MerchantID)
	if err != nil {
		// The decisions were taken; report them under no terms rather than
		// fail a write that succeeded. Checks read the terms again.
		terms = Terms{}
	}
	now := l.now()
	out := make([]Decision, len(reqs))
	for i, r := range reqs {
		out[i] = Decide(st, r.p, terms, now)
	}
	return out
}

// validate checks every request before anything is written.
func (l *Ledger) validate(ctx context.Context, c Choices) ([]resolved, error) {
	if err := checkSubjectID(c.SubjectID); err != nil {
		return nil, err
	}
	if len(c.Requests) == 0 && len(c.Values) == 0 && c.Level == "" {
		return nil, apperr.New(apperr.Invalid, "choices must name at least one purpose").WithDetail(CodeInvalidChoices)
	}
	if c.Level != "" && !c.Level.Valid() || c.LevelShown != "" && !c.LevelShown.Valid() {
		return nil, apperr.New(apperr.Invalid, "privacy level must be general, volunteered or full").WithDetail(CodeInvalidLevel)
	}
	if len(c.Requests) > MaxRequests {
		return nil, apperr.New(apperr.Invalid, "choices may name at most %d purposes", MaxRequests).WithDetail(CodeInvalidChoices)
	}
	if c.IdempotencyKey != "" && !validIdempotencyKey(c.IdempotencyKey) {
		return nil, apperr.New(apperr.Invalid, "Idempotency-Key must be 1-128 printable ASCII characters").WithDetail(CodeIdempotencyKeyInvalid)
	}
	var terms Terms
	if slices.ContainsFunc(c.Requests, func(r Request) bool { return r.NoticeVersion != 0 }) {
		var err error
		if terms, err = l.notices.Terms(ctx, c.MerchantID); err != nil {
			return nil, err
		}
	}
	out := make([]resolved, 0, len(c.Requests))
	for _, r := range c.Requests {
		if slices.ContainsFunc(out, func(o resolved) bool { return o.Purpose == r.Purpose }) {
			return nil, apperr.New(apperr.Invalid, "purpose %q is named twice", r.Purpose).WithDetail(CodeInvalidChoices)
		}
		p, err := l.purpose(ctx, c.MerchantID, r.Purpose)
		if err != nil {
			return nil, err
		}
		if !r.State.Valid() {
			return nil, apperr.New(apperr.Invalid, "state of %q must be granted, denied or withdrawn", r.Purpose).WithDetail(CodeInvalidState)
		}
		if p.Sensitive && r.State == Granted && !r.Explicit {
			return nil, apperr.New(apperr.Invalid, "purpose %q is sensitive: it can only be granted with explicit opt-in by the subject (\"explicit_opt_in\": true)", p.Key).WithDetail(CodeExplicitOptInRequired)
		}
		if p.Retired() && r.State == Granted {
			return nil, apperr.New(apperr.Conflict, "purpose %q is retired: it can no longer be granted", p.Key).WithDetail(CodePurposeRetired)
		}
		if r.NoticeVersion != 0 && (!terms.Has(r.NoticeVersion) || r.NoticeVersion < terms.InForce(l.now())) {
			return nil, apperr.New(apperr.Invalid, "notice version %d is not a published version at or after the one in force", r.NoticeVersion).WithDetail(CodeInvalidNoticeVersion)
		}
		out = append(out, resolved{Request: r, p: p})
	}
	return out, nil
}

// plan decides, against the subject's state st as it is under the lock,
// which decision events a set of requests appends (in purpose order), and
// which purposes a page left alone that changed since it was shown. It is
// the rule for what a choice means, on every channel:
//
//   - A request from a page (Shown set) applies only if the subject
//     changed the purpose from how it was shown; an untouched purpose is
//     left as it is, and reported if it changed meanwhile.
//   - A grant is a change unless the purpose is granted and counting now;
//     consent paused or about to be paused by a material change of the
//     notice is renewed, under the version in force (or the one accepted).
//   - A refusal (denied, withdrawn) is a change unless the purpose is
//     already off.
//   - IfUndecided, IfGranted and IfNoGPCSignal requests apply only when
//     their condition holds under the lock.
func plan(st SubjectState, reqs []resolved, terms Terms, now time.Time, inForce int) ([]Event, []Elsewhere) {
	sorted := slices.Clone(reqs)
	slices.SortFunc(sorted, func(a, b resolved) int { return strings.Compare(a.Purpose, b.Purpose) })
	var (
		events    []Event
		elsewhere []Elsewhere
	)
	for _, r := range sorted {
		cur, decided := st.Purposes[r.Purpose]
		d := Decide(st, r.p, terms, now)
		on := r.State == Granted
		switch r.When {
		case IfUndecided:
			if decided {
				continue
			}
		case IfNoGPCSignal:
			if cur.GPCSeq == 0 {
				events = append(events, Event{Purpose: r.Purpose, State: r.State, NoticeVersion: inForce})
			}
			continue
		case IfGranted:
			if cur.State != Granted {
				continue
			}
		}
		if r.Shown != NotShown {
			if (on && r.Shown == ShownOn) || (!on && r.Shown == ShownOff) {
				if shownNow(decided, d) != r.Shown && !(r.Shown == ShownOff && !decided) {
					elsewhere = append(elsewhere, Elsewhere{Purpose: r.Purpose, State: cur, Allowed: d.Allowed})
				}
				continue
			}
		}
		version := inForce
		if on {
			counting := d.Allowed && d.Reason == ReasonGranted
			if counting && (r.NoticeVersion == 0 || r.NoticeVersion <= cur.NoticeVersion) {
				continue
			}
			if r.NoticeVersion != 0 {
				version = r.NoticeVersion
			}
		} else if decided && cur.State != Granted {
			continue
		}
		events = append(events, Event{Purpose: r.Purpose, State: r.State, NoticeVersion: version})
	}
	return events, elsewhere
}

// planLevel decides, under the lock, whether a privacy level chosen
// appends an event: a level left as the page showed it is no choice (a
// level changed elsewhere meanwhile stands), and choosing the level the
// subject already chose changes nothing. Choosing the default level when
// none was chosen is recorded: it is now the subject's own choice.
func planLevel(st SubjectState, level, shown Level) (Event, bool) {
	if level == "" || (shown != "" && level == shown) || level == st.Level {
		return Event{}, false
	}
	return Event{State: LevelChosen, Level: level}, true
}

// shownNow is how a page would show a purpose now.
func shownNow(decided bool, d Decision) Shown {
	switch {
	case !decided:
		return ShownUndecided
	case d.Allowed:
		return ShownOn
	default:
		return ShownOff
	}
}

// GPCChoices are the choices a Global Privacy Control signal makes: every
// sale/share purpose withdrawn (channel gpc), once per purpose; a grant the
// subject makes after a signal stands.
func GPCChoices(merchantID, subjectID string, ps []Purpose) (Choices, bool) {
	c := OptOutOfSale(merchantID, subjectID, ps, ChannelGPC, "gpc-signal")
	for i := range c.Requests {
		c.Requests[i].When = IfNoGPCSignal
	}
	return c, len(c.Requests) > 0
}

// OptOutOfSale are the choices of "Do not sell or share my personal
// information": every sale/share purpose withdrawn, whatever was chosen
// before (a shopper asking is as explicit as it gets).
func OptOutOfSale(merchantID, subjectID string, ps []Purpose, channel Channel, actor string) Choices {
	c := Choices{MerchantID: merchantID, SubjectID: subjectID, Channel: channel, Actor: actor}
	for _, p := range ps {
		if p.SaleOrShare {
			c.Requests = append(c.Requests, Request{Purpose: p.Key, State: Withdrawn})
		}
	}
	return c
}

// CarryOver are the choices an anonymous device made, carried over to the
// subject it turns out to be: every purpose the device decided and the
// subject did not (judged under the subject's lock). A device's grant of a
// sensitive purpose was made explicitly (the widget grants one no other way).
// Only purposes among offered (Offered: not retired) are carried over.
func CarryOver(merchantID, subjectID, device string, dev SubjectState, offered []Purpose) Choices {
	c := Choices{MerchantID: merchantID, SubjectID: subjectID, Channel: ChannelWidget, Actor: device}
	keys := make([]string, 0, len(dev.Purposes))
	for k := range dev.Purposes {
		if slices.ContainsFunc(offered, func(p Purpose) bool { return p.Key == k }) {
			keys = append(keys, k) // a retired purpose carries nothing over
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		st := dev.Purposes[k].State
		c.Requests = append(c.Requests, Request{Purpose: k, State: st, Explicit: st == Granted, When: IfUndecided})
	}
	return c
}

// inFlightWindow is how long a claimed Idempotency-Key without an event is
// treated as a request still in progress.
const inFlightWindow = 30 * time.Second

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func fingerprint(c Choices) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", c.SubjectID, c.Channel)
	for _, r := range c.Requests {
		fmt.Fprintf(h, "%s\x00%s\x00%t\x00%d\x00", r.Purpose, r.State, r.Explicit, r.NoticeVersion)
	}
	if c.Level != "" {
		fmt.Fprintf(h, "level\x00%s\x00", c.Level)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// claim takes the choices' Idempotency-Key. done is true when the key was
// used before and res (or err) is the answer to give.
func (l *Ledger) claim(ctx context.Context, c Choices, reqs []resolved) (res Applied, done bool, err error) {
	now := l.now().UTC().Truncate(time.Millisecond)
	claim := IdempotencyClaim{MerchantID: c.MerchantID, Key: c.IdempotencyKey, Fingerprint: fingerprint(c), SubjectID: c.SubjectID, CreatedAt: now}
	prev, created, err := l.store.ClaimIdempotencyKey(ctx, claim)
	if err != nil || created {
		return Applied{}, false, err
	}
	if prev.Fingerprint != claim.Fingerprint {
		return Applied{}, true, apperr.New(apperr.Unprocessable, "this Idempotency-Key was already used with a different request").WithDetail(CodeIdempotencyKeyReused)
	}
	seq := prev.Seq
	if seq == 0 {
		// The first request may have appended its event without completing
		// the claim: look for it near the head of the chain.
		seq, err = l.findByIdempotencyKey(ctx, c.MerchantID, c.SubjectID, c.IdempotencyKey)
		if err != nil {
			return Applied{}, true, err
		}
		if seq == 0 {
			if now.Sub(prev.CreatedAt) < inFlightWindow {
				return Applied{}, true, apperr.New(apperr.Conflict, "a request with this Idempotency-Key is still in progress; retry shortly").WithDetail(CodeRequestInProgress)
			}
			return Applied{}, false, nil // the first attempt died before writing: take over
		}
		if err := l.store.CompleteIdempotencyKey(ctx, c.MerchantID, c.IdempotencyKey, seq); err != nil {
			return Applied{}, true, err
		}
	}
	e, err := l.store.Event(ctx, c.MerchantID, c.SubjectID, seq)
	if err != nil {
		return Applied{}, true, err
	}
	st, err := l.current(ctx, c.MerchantID, c.SubjectID)
	if err != nil {
		return Applied{}, true, err
	}
	l.refreshWith(st)
	return Applied{Events: []Event{e}, State: st, Decisions: l.decideRequested(ctx, st, reqs), Replayed: true}, true, nil
}

// findByIdempotencyKey scans back from the head of the chain (at most 100
// events) for the event written with key; 0 if none.
func (l *Ledger) findByIdempotencyKey(ctx context.Context, merchantID, subjectID, key string) (int64, error) {
	st, err := l.current(ctx, merchantID, subjectID)
	if err != nil {
		return 0, err
	}
	for seq := st.Seq; seq > 0 && seq > st.Seq-100; seq-- {
		e, err := l.store.Event(ctx, merchantID, subjectID, seq)
		if err != nil {
			return 0, err
		}
		if e.IdempotencyKey == key {
			return seq, nil
		}
	}
	return 0, nil
}

// Preview decides choices as Apply would for a newcomer (a subject with no
// record), without writing anything: the same validation, the same plan,
// folded into a state kept only in memory. The console's preview of the
// widget answers with it, so a merchant trying its banner records nothing.
// Choices that would store volunteered values are refused: a preview keeps
// no data.
func (l *Ledger) Preview(ctx context.Context, c Choices) (SubjectState, error) {
	var err error
	if c.Locale, err = CanonicalLocale(c.Locale); err != nil {
		return SubjectState{}, err
	}
	if len(c.Values) > 0 {
		return SubjectState{}, apperr.New(apperr.Invalid, "a preview keeps no volunteered data").WithDetail(CodeInvalidChoices)
	}
	reqs, err := l.validate(ctx, c)
	if err != nil {
		return SubjectState{}, err
	}
	terms, err := l.notices.Terms(ctx, c.MerchantID)
	if err != nil {
		return SubjectState{}, err
	}
	now := l.now()
	st := SubjectState{MerchantID: c.MerchantID, SubjectID: c.SubjectID}
	inForce := terms.InForce(now)
	events, _ := plan(st, reqs, terms, now, inForce)
	if e, ok := planLevel(st, c.Level, c.LevelShown); ok {
		e.NoticeVersion = inForce
		events = append(events, e)
	}
	for _, e := range events {
		e.MerchantID, e.SubjectID, e.Seq, e.RecordedAt = c.MerchantID, c.SubjectID, st.Seq+1, now
		e.Channel, e.Actor, e.Locale = c.Channel, c.Actor, c.Locale
		st = st.Next(e)
	}
	return st, nil
}
