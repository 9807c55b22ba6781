package guard

import (
	"context"
	"slices"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/ttlcache"
)

// Reason explains a guard answer on one attribute. Only ReasonAllowed allows.
type Reason string

// Reasons, in the order the first one that applies is given as the reason.
const (
	ReasonAllowed           Reason = "allowed"
	ReasonSubjectErased     Reason = "subject_erased"
	ReasonUnknownAttribute  Reason = "unknown_attribute"
	ReasonPurposeNotGranted Reason = "purpose_not_granted"
	ReasonIdentifier        Reason = "identifier_never_in_messages"
	ReasonSensitive         Reason = "sensitive_needs_explicit"
	ReasonInferred          Reason = "inferred_needs_explicit"
	ReasonSpend             Reason = "spend_never_shown_back"
	ReasonPrivacyLevel      Reason = "privacy_level"
	ReasonProspectCaution   Reason = "prospect_caution"
	ReasonNotVolunteered    Reason = "not_volunteered"
	ReasonNotUsedByPurpose  Reason = "not_used_by_purpose"
)

// Channels a message may go out on.
var channels = []string{"email", "sms", "push", "web", "app", "post"}

// Limits of one request.
const (
	MaxSubjects   = 10_000
	MaxAttributes = 50
)

// Request asks about one message (one subject) or a campaign (many).
type Request struct {
	MerchantID string
	// Actor is the API key asking, for the subjects' access counts.
	Actor      string
	Subjects   []string
	Purpose    string
	Channel    string
	Attributes []string
	Template   string
	// Relationship, when set, holds for every subject named; else each
	// subject's own, and a subject the merchant never classed is a prospect.
	Relationship consent.Relationship
}

// AttributeAnswer is the answer on one attribute.
type AttributeAnswer struct {
	Attribute string
	Allowed   bool
	// Reason is the first reason that applies; Reasons all of them.
	Reason  Reason
	Reasons []Reason
	// Explain is, when allowed, the line the message may show, in the
	// subject's language.
	Explain string
}

// Answer is the answer for one subject: the message is allowed only if
// every attribute is. Subjects answered alike share Attributes: read it,
// never change it.
type Answer struct {
	SubjectID    string
	Allowed      bool
	Decision     consent.Decision
	Level        consent.Level
	Relationship consent.Relationship
	Attributes   []AttributeAnswer
}

// Counter counts guard answers per subject, API key, purpose and day, for
// the shopper's "who asked about me". It must not block: the guard calls
// it on every answer.
type Counter interface {
	Count(merchantID, subjectID, actor, purpose string, at time.Time)
}

// Service declares attributes and answers guard checks.
type Service struct {
	Store    Store
	Fields   *fields.Service
	Purposes *consent.Purposes
	Subjects *consent.Subjects
	Ledger   *consent.Ledger
	// Because words the line shown for a volunteered field: "Because you
	// told us your shoe size", with the field's label, in lang.
	Because func(lang, label string) string
	// Counter, when set, counts every answer.
	Counter Counter
	// Definitions caches each merchant's declared attributes.
	Definitions *ttlcache.Cache[string, []Attribute]
	Now         func() time.Time
}

// Create validates and stores a declared attribute; its key may not be a
// field's.
func (s *Service) Create(ctx context.Context, a Attribute) (Attribute, error) {
	if err := a.Validate(); err != nil {
		return Attribute{}, err
	}
	fs, err := s.Fields.List(ctx, a.MerchantID)
	if err != nil {
		return Attribute{}, err
	}
	if slices.ContainsFunc(fs, func(f fields.Field) bool { return f.Key == a.Key }) {
		return Attribute{}, apperr.New(apperr.Conflict, "%q is a volunteered field, an attribute already", a.Key).WithDetail(CodeAttributeExists)
	}
	a.CreatedAt = s.Now().UTC().Truncate(time.Millisecond)
	err = s.Store.CreateAttribute(ctx, a)
	if s.Definitions != nil {
		s.Definitions.Delete(a.MerchantID)
	}
	if err != nil {
		return Attribute{}, err
	}
	return a, nil
}

// Declared tells whether the merchant has declared an attribute by key, so
// that a field cannot take a declared attribute's key.
func (s *Service) Declared(ctx context.Context, merchantID, key string) (bool, error) {
	declared, err := s.declared(ctx, merchantID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(declared, func(a Attribute) bool { return a.Key == key }), nil
}

// declared returns the merchant's declared attributes, through the cache.
func (s *Service) declared(ctx context.Context, merchantID string) ([]Attribute, error) {
	declared, ok := []Attribute(nil), false
	if s.Definitions != nil {
		declared, ok = s.Definitions.Get(merchantID)
	}
	if !ok {
		var err error
		if declared, err = s.Store.Attributes(ctx, merchantID); err != nil {
			return nil, err
		}
		if s.Definitions != nil {
			s.Definitions.Put(merchantID, declared)
		}
	}
	return declared, nil
}

// List returns every attribute of the merchant: declared ones and
// volunteered fields, by key. Each key is listed once: should a field and
// a declared attribute share one (created at once on two instances), the
// declared attribute is the one listed, checked and answered by.
func (s *Service) List(ctx context.Context, merchantID string) ([]Attribute, error) {
	declared, err := s.declared(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	fs, err := s.Fields.List(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	ps, err := s.Purposes.List(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	sensitive := func(key string) bool {
		return slices.ContainsFunc(ps, func(p consent.Purpose) bool { return p.Key == key && p.Sensitive })
	}
	out := slices.Clone(declared)
	for _, f := range fs {
		if !slices.ContainsFunc(declared, func(a Attribute) bool { return a.Key == f.Key }) {
			out = append(out, fromField(f, sensitive))
		}
	}
	slices.SortFunc(out, func(a, b Attribute) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return out, nil
}

// Get returns one attribute of the merchant; NotFound if none by that key.
func (s *Service) Get(ctx context.Context, merchantID, key string) (Attribute, error) {
	all, err := s.List(ctx, merchantID)
	if err != nil {
		return Attribute{}, err
	}
	for _, a := range all {
		if a.Key == key {
			return a, nil
		}
	}
	return Attribute{}, apperr.New(apperr.NotFound, "attribute %q not found", key).WithDetail("unknown_attribute")
}

// Check answers a guard request for each subject, in the order given. The
// whole request is validated first; an unknown subject is answered (its
// consent decision is no_record), never an error.
func (s *Service) Check(ctx context.Context, r Request) ([]Answer, error) {
	keys, err := r.validate()
	if err != nil {
		return nil, err
	}
	p, err := s.Purposes.Get(ctx, r.MerchantID, r.Purpose)
	if err != nil {
		if apperr.Is(err, apperr.NotFound) {
			return nil, apperr.New(apperr.Invalid, "unknown purpose %q", r.Purpose).WithDetail(consent.CodeUnknownPurpose)
		}
		return nil, err
	}
	all, err := s.List(ctx, r.MerchantID)
	if err != nil {
		return nil, err
	}
	attrs := make([]*Attribute, len(keys))
	for i, k := range keys {
		for j := range all {
			if all[j].Key == k {
				attrs[i] = &all[j]
				break
			}
		}
	}
	decisions, states, err := s.Ledger.DecideMany(ctx, p, r.Subjects)
	if err != nil {
		return nil, err
	}
	profiles, err := s.Subjects.ProfilesOf(ctx, r.MerchantID, r.Subjects)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	out := make([]Answer, len(r.Subjects))
	// The answers on the attributes depend on the subject only through
	// what the key holds: subjects alike share one (read-only) slice.
	type alike struct {
		allowed bool
		reason  consent.Reason
		level   consent.Level
		rel     consent.Relationship
		locale  string
	}
	shared := make(map[alike]Answer)
	for i, id := range r.Subjects {
		prof := profiles[id]
		rel := r.Relationship
		if rel == "" {
			rel = prof.Relationship
		}
		if rel == "" {
			rel = consent.Prospect
		}
		d, level := decisions[i], states[i].PrivacyLevel()
		k := alike{d.Allowed, d.Reason, level, rel, prof.Locale}
		a, ok := shared[k]
		if !ok {
			a = s.answer(p, attrs, keys, d, level, rel, prof.Locale)
			shared[k] = a
		}
		a.SubjectID, a.Decision = id, d
		out[i] = a
		if s.Counter != nil && d.AboutKnownSubject() {
			s.Counter.Count(r.MerchantID, id, r.Actor, r.Purpose, now)
		}
	}
	return out, nil
}

// validate checks the request and returns the attribute keys asked about:
// those listed, then the template's placeholders not listed.
func (r Request) validate() ([]string, error) {
	if len(r.Subjects) == 0 {
		return nil, apperr.New(apperr.Invalid, "name a subject").WithDetail(consent.CodeInvalidSubject)
	}
	if len(r.Subjects) > MaxSubjects {
		return nil, apperr.New(apperr.Invalid, "a campaign check takes at most %d subjects; got %d", MaxSubjects, len(r.Subjects)).WithDetail(CodeTooManySubjects)
	}
	for i, id := range r.Subjects {
		if !consent.ValidSubjectID(id) {
			return nil, apperr.New(apperr.Invalid, "subjects[%d] is not a valid subject id", i).WithDetail(consent.CodeInvalidSubject)
		}
	}
	if !consent.ValidPurposeKey(r.Purpose) {
		return nil, apperr.New(apperr.Invalid, "purpose must be a purpose key").WithDetail(consent.CodeInvalidPurpose)
	}
	if !slices.Contains(channels, r.Channel) {
		return nil, apperr.New(apperr.Invalid, "channel must be one of email, sms, push, web, app, post").WithDetail(CodeInvalidChannel)
	}
	if _, err := consent.ParseRelationship(string(r.Relationship)); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(r.Attributes))
	for i, k := range r.Attributes {
		if !consent.ValidKey(k) {
			return nil, apperr.New(apperr.Invalid, "attributes[%d] is not an attribute key", i).WithDetail(CodeInvalidAttribute)
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	placeholders, err := Placeholders(r.Template)
	if err != nil {
		return nil, err
	}
	for _, k := range placeholders {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, apperr.New(apperr.Invalid, "name the attributes the message uses, or give its template").WithDetail(CodeInvalidAttribute)
	}
	if len(keys) > MaxAttributes {
		return nil, apperr.New(apperr.Invalid, "a message may be checked for at most %d attributes; got %d", MaxAttributes, len(keys)).WithDetail(CodeTooManyAttrs)
	}
	return keys, nil
}

// answer applies the rules to one subject. attrs[i] is nil for an unknown key.
func (s *Service) answer(p consent.Purpose, attrs []*Attribute, keys []string, d consent.Decision, level consent.Level, rel consent.Relationship, locale string) Answer {
	ans := Answer{SubjectID: d.SubjectID, Allowed: true, Decision: d, Level: level, Relationship: rel, Attributes: make([]AttributeAnswer, len(keys))}
	for i, a := range attrs {
		reasons := Reasons(p, a, d, level, rel)
		aa := AttributeAnswer{Attribute: keys[i], Allowed: len(reasons) == 0, Reason: ReasonAllowed, Reasons: reasons}
		if aa.Allowed {
			aa.Explain = s.explain(*a, locale)
		} else {
			aa.Reason = reasons[0]
			ans.Allowed = false
		}
		ans.Attributes[i] = aa
	}
	return ans
}

// explain is the line a message may show next to an allowed attribute.
func (s *Service) explain(a Attribute, locale string) string {
	t := a.TextFor(locale)
	if !a.Field || s.Because == nil {
		return t.Explanation
	}
	lang := locale
	if _, ok := a.Texts[lang]; !ok {
		lang = a.DefaultLocale
	}
	return s.Because(lang, t.Label)
}

// Reasons returns every reason the attribute a may not be used in a
// message for purpose p to a subject with consent decision d, privacy
// level and relationship rel, most telling first; none means allowed.
// a is nil for an attribute the merchant never declared. It is the one
// place the creep line is drawn.
func Reasons(p consent.Purpose, a *Attribute, d consent.Decision, level consent.Level, rel consent.Relationship) []Reason {
	if d.Reason == consent.ReasonSubjectErased {
		return []Reason{ReasonSubjectErased}
	}
	if a == nil {
		return []Reason{ReasonUnknownAttribute}
	}
	var out []Reason
	if !d.Allowed {
		out = append(out, ReasonPurposeNotGranted)
	}
	if a.Identifier || a.Category == consent.CategoryGovernmentID {
		out = append(out, ReasonIdentifier)
	}
	// Sensitive details only under a sensitive purpose, which is granted
	// only by the subject's explicit opt-in.
	if a.Sensitive() && !(p.Sensitive && d.Allowed) {
		out = append(out, ReasonSensitive)
	}
	derived := a.Provenance == Inferred || a.Provenance == ThirdParty
	if derived && level != consent.LevelFull {
		out = append(out, ReasonInferred)
	}
	if a.Category == consent.CategorySpend && !(level == consent.LevelFull && p.Uses(consent.CategorySpend)) {
		out = append(out, ReasonSpend)
	}
	if level == consent.LevelGeneral && a.Category != consent.CategoryName {
		out = append(out, ReasonPrivacyLevel)
	}
	if rel != consent.Customer && a.Provenance != Volunteered {
		out = append(out, ReasonProspectCaution)
	}
	if level == consent.LevelVolunteered && a.Provenance == Observed {
		out = append(out, ReasonNotVolunteered)
	}
	if (a.Field && !slices.Contains(a.Purposes, p.Key)) || (!a.Field && !p.Uses(a.Category)) {
		out = append(out, ReasonNotUsedByPurpose)
	}
	return out
}
