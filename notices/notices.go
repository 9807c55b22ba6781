// Package notices holds each merchant's versioned terms and privacy notice:
// drafts, publication (now or later, with a grace period), and what a
// material change means for consent given under older versions.
package notices

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Status is where a version is in its life.
type Status string

// Statuses of a notice version.
const (
	Draft     Status = "draft"
	Published Status = "published"
)

// Summary is one locale's wording of a version: a short plain-language
// summary of what changed, then the full text (Markdown).
type Summary struct {
	Summary string `json:"summary"`
	Text    string `json:"text"`
}

// Version is one version of a merchant's notice.
type Version struct {
	MerchantID  string
	Number      int
	Status      Status
	Texts       map[string]Summary // by locale
	PolicyURL   string
	Material    bool
	Purposes    []string // purposes a material change affects
	CreatedAt   time.Time
	PublishedAt time.Time
	EffectiveAt time.Time
	// Deadline is EffectiveAt plus the grace period: from then on, consent
	// given under an older version stops counting for Purposes.
	Deadline time.Time
	// Wordings are new words for purposes (an edited statement is a change
	// of terms): shoppers see them once this version is published.
	Wordings []consent.Wording
}

// Head indexes a merchant's versions.
type Head struct {
	// Highest is the highest version number ever created.
	Highest int
	// Published lists the published versions, oldest first.
	Published []consent.PublishedVersion
}

// Store persists notice versions.
type Store interface {
	// CreateVersion inserts a new version; Conflict if its number is taken.
	CreateVersion(ctx context.Context, v Version) error
	// PutVersion replaces a version.
	PutVersion(ctx context.Context, v Version) error
	// DeleteVersion removes a version.
	DeleteVersion(ctx context.Context, merchantID string, number int) error
	// Version returns one version; NotFound if absent.
	Version(ctx context.Context, merchantID string, number int) (Version, error)
	// Head returns the merchant's index; a zero Head if it has none.
	Head(ctx context.Context, merchantID string) (Head, error)
	// NoteCreated raises the head's Highest to number.
	NoteCreated(ctx context.Context, merchantID string, number int) error
	// NotePublished appends p to the head's published versions, once.
	NotePublished(ctx context.Context, merchantID string, p consent.PublishedVersion) error
}

// Service manages notice versions.
type Service struct {
	Store Store
	Now   func() time.Time
	// Notes, when set, tells merchants' systems of each publication.
	Notes Recorder
	// Purposes, when set, gets the new words a version carries when it is
	// published (consent.Purposes).
	Purposes Rewording
	// Announcer, when set, queues the announcement of each material
	// version published (announce.Worker).
	Announcer Announcer
}

// Announcer queues the announcement of a published version; queueing one
// already queued changes nothing.
type Announcer interface {
	Schedule(ctx context.Context, merchantID string, version int) error
}

// announce queues the announcement of v if it is a material change.
func (s *Service) announce(ctx context.Context, v Version) error {
	if !v.Material || s.Announcer == nil {
		return nil
	}
	return s.Announcer.Schedule(ctx, v.MerchantID, v.Number)
}

// Rewording applies a purpose's new words (consent.Purposes.Reword).
type Rewording interface {
	Reword(ctx context.Context, merchantID string, w consent.Wording) error
}

// CreateRewording stores a draft carrying new words for one purpose, with
// the summaries of what changed: the merchant publishes it, as a material
// change for that purpose or not, and until then shoppers see the old
// words. w must be valid (consent.Purposes.CheckWording).
func (s *Service) CreateRewording(ctx context.Context, merchantID string, w consent.Wording, summaries map[string]Summary) (Version, error) {
	return s.create(ctx, merchantID, Content{Texts: summaries}, func(string) bool { return false }, []consent.Wording{w})
}

// reword applies the words a published version carries; applying them
// again (a publication finished after a crash) changes nothing.
func (s *Service) reword(ctx context.Context, v Version) error {
	if s.Purposes == nil {
		return nil
	}
	for _, w := range v.Wordings {
		if err := s.Purposes.Reword(ctx, v.MerchantID, w); err != nil {
			return err
		}
	}
	return nil
}

// Recorder records what merchants' systems hear about beside the ledger
// (webhooks.Notes).
type Recorder interface {
	Record(ctx context.Context, merchantID, typ string, data map[string]any)
}

var _ consent.NoticeSource = (*Service)(nil)

// Terms returns the merchant's published versions, for decisions.
func (s *Service) Terms(ctx context.Context, merchantID string) (consent.Terms, error) {
	h, err := s.Store.Head(ctx, merchantID)
	if err != nil {
		return consent.Terms{}, err
	}
	return consent.Terms{Published: h.Published}, nil
}

// VersionInForce returns the number of the newest version in effect now, 0
// if none.
func (s *Service) VersionInForce(ctx context.Context, merchantID string) (int, error) {
	t, err := s.Terms(ctx, merchantID)
	return t.InForce(s.Now()), err
}

// Current returns the version in effect now; NotFound if none is.
func (s *Service) Current(ctx context.Context, merchantID string) (Version, error) {
	n, err := s.VersionInForce(ctx, merchantID)
	if err != nil {
		return Version{}, err
	}
	if n == 0 {
		return Version{}, apperr.New(apperr.NotFound, "no notice in effect")
	}
	return s.Store.Version(ctx, merchantID, n)
}

// Get returns one version.
func (s *Service) Get(ctx context.Context, merchantID string, number int) (Version, error) {
	if number < 1 {
		return Version{}, apperr.New(apperr.NotFound, "no such notice version")
	}
	return s.Store.Version(ctx, merchantID, number)
}

// List returns every version, newest first.
func (s *Service) List(ctx context.Context, merchantID string) ([]Version, error) {
	h, err := s.Store.Head(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, h.Highest)
	for n := h.Highest; n >= 1; n-- {
		v, err := s.Store.Version(ctx, merchantID, n)
		if apperr.Is(err, apperr.NotFound) {
			continue // a discarded draft
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Content is what a merchant writes for a version.
type Content struct {
	Texts     map[string]Summary
	PolicyURL string
	Material  bool
	Purposes  []string
}

func (d Content) validate(known func(string) bool) error {
	if len(d.Texts) == 0 {
		return apperr.New(apperr.Invalid, "a notice needs a summary of what changed in at least one locale")
	}
	if _, ok := d.Texts["en"]; !ok {
		return apperr.New(apperr.Invalid, "texts must include English (en), the fallback")
	}
	for l, t := range d.Texts {
		if !consent.SupportedLocale(l) {
			return apperr.New(apperr.Invalid, "unsupported locale %q; use one of %s", l, strings.Join(consent.Locales(), ", "))
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(t.Summary)); n < 10 || n > 600 {
			return apperr.New(apperr.Invalid, "texts.%s.summary must be a plain-language summary of 10-600 characters", l)
		}
		if utf8.RuneCountInString(t.Text) > 100_000 {
			return apperr.New(apperr.Invalid, "texts.%s.text is over 100,000 characters", l)
		}
	}
	if d.PolicyURL != "" && !strings.HasPrefix(d.PolicyURL, "https://") && !strings.HasPrefix(d.PolicyURL, "http://") {
		return apperr.New(apperr.Invalid, "policy_url must be an http(s) URL")
	}
	if d.Material && len(d.Purposes) == 0 {
		return apperr.New(apperr.Invalid, "a material change must name the purposes it affects")
	}
	if !d.Material && len(d.Purposes) > 0 {
		return apperr.New(apperr.Invalid, "only a material change affects purposes; set \"material\": true or leave purposes out")
	}
	for _, p := range d.Purposes {
		if !known(p) {
			return apperr.New(apperr.Invalid, "unknown purpose %q", p).WithDetail("unknown_purpose")
		}
	}
	return nil
}

// Create stores a new draft under the next version number. known tells
// the merchant's purpose keys.
func (s *Service) Create(ctx context.Context, merchantID string, d Content, known func(string) bool) (Version, error) {
	return s.create(ctx, merchantID, d, known, nil)
}

func (s *Service) create(ctx context.Context, merchantID string, d Content, known func(string) bool, ws []consent.Wording) (Version, error) {
	if err := d.validate(known); err != nil {
		return Version{}, err
	}
	h, err := s.Store.Head(ctx, merchantID)
	if err != nil {
		return Version{}, err
	}
	v := Version{MerchantID: merchantID, Status: Draft, Texts: d.Texts, PolicyURL: d.PolicyURL, Material: d.Material,
		Purposes: slices.Compact(slices.Sorted(slices.Values(d.Purposes))), CreatedAt: s.Now().UTC().Truncate(time.Millisecond), Wordings: ws}
	for n := h.Highest + 1; n <= h.Highest+50; n++ {
		v.Number = n
		err = s.Store.CreateVersion(ctx, v)
		if apperr.Is(err, apperr.Conflict) {
			continue // another draft took this number
		}
		if err != nil {
			return Version{}, err
		}
		return v, s.Store.NoteCreated(ctx, merchantID, n)
	}
	return Version{}, apperr.New(apperr.Conflict, "too many drafts created at once; retry")
}

func (s *Service) draft(ctx context.Context, merchantID string, number int) (Version, error) {
	v, err := s.Get(ctx, merchantID, number)
	if err != nil {
		return Version{}, err
	}
	if v.Status != Draft {
		return Version{}, apperr.New(apperr.Conflict, "version %d is published; published versions never change. Create a new version instead", number).WithDetail(CodePublished)
	}
	return v, nil
}

// CodePublished refuses a change to a published version.
const CodePublished = "notice_published"

// Update replaces a draft's content; published versions are immutable.
func (s *Service) Update(ctx context.Context, merchantID string, number int, d Content, known func(string) bool) (Version, error) {
	if err := d.validate(known); err != nil {
		return Version{}, err
	}
	v, err := s.draft(ctx, merchantID, number)
	if err != nil {
		return Version{}, err
	}
	v.Texts, v.PolicyURL, v.Material = d.Texts, d.PolicyURL, d.Material
	v.Purposes = slices.Compact(slices.Sorted(slices.Values(d.Purposes)))
	return v, s.Store.PutVersion(ctx, v)
}

// Discard deletes a draft.
func (s *Service) Discard(ctx context.Context, merchantID string, number int) error {
	if _, err := s.draft(ctx, merchantID, number); err != nil {
		return err
	}
	return s.Store.DeleteVersion(ctx, merchantID, number)
}

// MaxGrace is the longest grace period a publication may give.
const MaxGrace = 366 * 24 * time.Hour

// Publish makes a draft a published, immutable version, in effect from
// effectiveAt (zero: now), with consent under older versions counting for
// another grace after that for a material change.
func (s *Service) Publish(ctx context.Context, merchantID string, number int, effectiveAt time.Time, grace time.Duration) (Version, error) {
	now := s.Now().UTC().Truncate(time.Millisecond)
	if effectiveAt.IsZero() {
		effectiveAt = now
	}
	effectiveAt = effectiveAt.UTC().Truncate(time.Millisecond)
	if effectiveAt.Before(now.Add(-time.Minute)) {
		return Version{}, apperr.New(apperr.Invalid, "effective_at must be now or later").WithDetail("invalid_effective_at")
	}
	if grace < 0 || grace > MaxGrace {
		return Version{}, apperr.New(apperr.Invalid, "the grace period must be between 0 and 366 days").WithDetail("invalid_grace_period")
	}
	h, err := s.Store.Head(ctx, merchantID)
	if err != nil {
		return Version{}, err
	}
	if v, err := s.Get(ctx, merchantID, number); err == nil && v.Status == Published {
		if !slices.ContainsFunc(h.Published, func(p consent.PublishedVersion) bool { return p.Number == number }) {
			// A publication that stopped half-way: finish it.
			if err := s.reword(ctx, v); err != nil {
				return v, err
			}
			if err := s.Store.NotePublished(ctx, merchantID, consent.PublishedVersion{Number: v.Number, Material: v.Material, Purposes: v.Purposes, EffectiveAt: v.EffectiveAt, Deadline: v.Deadline}); err != nil {
				return v, err
			}
			return v, s.announce(ctx, v)
		}
		// Published before, perhaps by a publication that stopped before
		// its announcement was queued: queue it (idempotent), and refuse.
		if err := s.announce(ctx, v); err != nil {
			return Version{}, err
		}
	}
	v, err := s.draft(ctx, merchantID, number)
	if err != nil {
		return Version{}, err
	}
	for _, p := range h.Published {
		if p.Number > number {
			return Version{}, apperr.New(apperr.Conflict, "version %d is already published; publish drafts in order", p.Number).WithDetail("newer_version_published")
		}
	}
	v.Status, v.PublishedAt, v.EffectiveAt, v.Deadline = Published, now, effectiveAt, effectiveAt.Add(grace)
	if err := s.Store.PutVersion(ctx, v); err != nil {
		return Version{}, err
	}
	// The version is published from here; the purposes' new words, then
	// the head entry (what decisions read), complete it. Both are
	// idempotent, and until the head has the entry a retry finishes them.
	if err := s.reword(ctx, v); err != nil {
		return Version{}, err
	}
	err = s.Store.NotePublished(ctx, merchantID, consent.PublishedVersion{Number: v.Number, Material: v.Material, Purposes: v.Purposes, EffectiveAt: v.EffectiveAt, Deadline: v.Deadline})
	if err == nil && s.Notes != nil {
		data := map[string]any{"version": v.Number, "material": v.Material, "purposes": v.Purposes, "effective_at": v.EffectiveAt}
		if v.Material {
			data["reconsent_by"] = v.Deadline
		}
		s.Notes.Record(ctx, merchantID, "notice.published", data)
	}
	if err != nil {
		return v, err
	}
	return v, s.announce(ctx, v)
}

// PublishFirst publishes version 1 with texts, effective now. It is what a
// new merchant starts with.
func (s *Service) PublishFirst(ctx context.Context, merchantID string, texts map[string]Summary, policyURL string) (Version, error) {
	if len(texts) == 0 {
		texts = DefaultFirstTexts()
	}
	v, err := s.Create(ctx, merchantID, Content{Texts: texts, PolicyURL: policyURL}, func(string) bool { return false })
	if err != nil {
		return Version{}, err
	}
	return s.Publish(ctx, merchantID, v.Number, time.Time{}, 0)
}

// DefaultFirstTexts is the summary a merchant's first notice version gets
// when the operator gives none.
func DefaultFirstTexts() map[string]Summary {
	return map[string]Summary{
		"en": {Summary: "We only use your data for the purposes you switch on here, and you can switch any of them off at any time."},
		"es": {Summary: "Solo usamos tus datos para los fines que actives aquí, y puedes desactivar cualquiera de ellos en cualquier momento."},
		"de": {Summary: "Wir nutzen deine Daten nur für die Zwecke, die du hier einschaltest, und du kannst jeden davon jederzeit ausschalten."},
		"fr": {Summary: "Nous n'utilisons vos données que pour les finalités que vous activez ici, et vous pouvez les désactiver à tout moment."},
	}
}
