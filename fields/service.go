package fields

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/ttlcache"
	"github.com/fineline/fineline/vault"
)

// WrappedKey is a subject's data key as stored: wrapped by the master key
// named by MasterID.
type WrappedKey struct {
	MerchantID string
	SubjectID  string
	Wrapped    []byte
	MasterID   string
	CreatedAt  time.Time
}

// Value is a stored value: sealed, never in plain text. While Erasing, the
// sealed value is already gone and the erasure is being recorded.
type Value struct {
	MerchantID string
	SubjectID  string
	Field      string
	Sealed     []byte
	// Purpose is the purpose the value was given for.
	Purpose   string
	UpdatedAt time.Time
	Erasing   bool
}

// Store persists field definitions, data keys and sealed values.
type Store interface {
	// CreateField stores a new field; Conflict if the key exists.
	CreateField(ctx context.Context, f Field) error
	// Field returns one field; NotFound if absent.
	Field(ctx context.Context, merchantID, key string) (Field, error)
	// Fields lists the merchant's fields in key order.
	Fields(ctx context.Context, merchantID string) ([]Field, error)
	// DataKey returns the subject's wrapped data key; NotFound if none.
	DataKey(ctx context.Context, merchantID, subjectID string) (WrappedKey, error)
	// CreateDataKey stores k unless the subject has a key already, and
	// returns the key that is stored.
	CreateDataKey(ctx context.Context, k WrappedKey) (WrappedKey, error)
	// DeleteDataKey removes the subject's data key; absent is not an error.
	DeleteDataKey(ctx context.Context, merchantID, subjectID string) error
	// Value returns one stored value; NotFound if absent.
	Value(ctx context.Context, merchantID, subjectID, field string) (Value, error)
	// PutValue stores or replaces a value.
	PutValue(ctx context.Context, v Value) error
	// DeleteValue removes a value; absent is not an error.
	DeleteValue(ctx context.Context, merchantID, subjectID, field string) error
	// DeleteErasing removes a value only while it is marked Erasing, so an
	// erasure never removes a value given again meanwhile (on another instance).
	DeleteErasing(ctx context.Context, merchantID, subjectID, field string) error
	// Values lists the merchant's stored values of one field.
	Values(ctx context.Context, merchantID, field string) ([]Value, error)
	// EachValue calls fn for every stored value of every merchant.
	EachValue(ctx context.Context, fn func(Value) error) error
}

// Service manages fields and the values shoppers give.
type Service struct {
	Store    Store
	Purposes *consent.Purposes
	Ledger   *consent.Ledger
	Keys     *vault.Keyring
	Now      func() time.Time
	Log      *slog.Logger
	// Definitions, when set, caches each merchant's field list (read on
	// every withdrawal); nil reads the store each time. Its lifetime bounds
	// how long a field created on another instance goes unseen here.
	Definitions *ttlcache.Cache[string, []Field]
	// Taken, when set, tells whether a key is already used by something
	// else a message may name (a declared attribute): a field may not take it.
	Taken func(ctx context.Context, merchantID, key string) (bool, error)
}

// Create validates and stores a new field; every purpose it names must exist.
func (s *Service) Create(ctx context.Context, f Field) (Field, error) {
	if err := f.Validate(); err != nil {
		return Field{}, err
	}
	for _, p := range f.Purposes {
		if _, err := s.Purposes.Get(ctx, f.MerchantID, p); err != nil {
			if apperr.Is(err, apperr.NotFound) {
				return Field{}, apperr.New(apperr.Invalid, "unknown purpose %q", p).WithDetail(consent.CodeUnknownPurpose)
			}
			return Field{}, err
		}
	}
	if s.Taken != nil {
		taken, err := s.Taken(ctx, f.MerchantID, f.Key)
		if err != nil {
			return Field{}, err
		}
		if taken {
			return Field{}, apperr.New(apperr.Conflict, "%q is a declared attribute already", f.Key).WithDetail(CodeAttributeExists)
		}
	}
	f.CreatedAt = s.Now().UTC().Truncate(time.Millisecond)
	if err := s.Store.CreateField(ctx, f); err != nil {
		return Field{}, err
	}
	if s.Definitions != nil {
		s.Definitions.Delete(f.MerchantID)
	}
	return f, nil
}

// Get returns one field of the merchant.
func (s *Service) Get(ctx context.Context, merchantID, key string) (Field, error) {
	if err := checkKey(key); err != nil {
		return Field{}, err
	}
	return s.Store.Field(ctx, merchantID, key)
}

// List returns the merchant's fields.
func (s *Service) List(ctx context.Context, merchantID string) ([]Field, error) {
	if s.Definitions != nil {
		if fs, ok := s.Definitions.Get(merchantID); ok {
			return fs, nil
		}
	}
	fs, err := s.Store.Fields(ctx, merchantID)
	if err == nil && s.Definitions != nil {
		s.Definitions.Put(merchantID, fs)
	}
	return fs, err
}

// ValueError refuses a value a field cannot take; the page names the field.
type ValueError struct {
	Field string
	Err   error
}

// Error implements error.
func (e *ValueError) Error() string { return e.Err.Error() }

// Unwrap returns the refusal itself (an *apperr.Error with detail invalid_value).
func (e *ValueError) Unwrap() error { return e.Err }

// Check normalizes a value for a field without storing it, so a form can be
// refused whole before anything is written.
func (s *Service) Check(f Field, raw string) (string, error) {
	return f.Normalize(raw, s.Now())
}

var _ consent.Keeper = (*Service)(nil)

// Prepare checks and normalizes values by field key before anything is
// written ("" removes a value): the consent ledger calls it first when a
// set of choices carries values.
func (s *Service) Prepare(ctx context.Context, merchantID string, values map[string]string) ([]consent.Volunteered, error) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]consent.Volunteered, 0, len(keys))
	for _, k := range keys {
		f, err := s.Get(ctx, merchantID, k)
		if apperr.Is(err, apperr.NotFound) {
			return nil, apperr.New(apperr.Invalid, "unknown field %q", k).WithDetail(CodeUnknownField)
		}
		if err != nil {
			return nil, err
		}
		v := ""
		if strings.TrimSpace(values[k]) != "" {
			if v, err = f.Normalize(values[k], s.Now()); err != nil {
				return nil, &ValueError{Field: k, Err: err}
			}
		}
		out = append(out, consent.Volunteered{Field: k, Value: v, Purposes: f.Purposes})
	}
	return out, nil
}

// grantedNeed returns a purpose needing f that the state grants, "" if none.
func grantedNeed(purposes []string, st consent.SubjectState) string {
	for _, p := range purposes {
		if st.Granted(p) {
			return p
		}
	}
	return ""
}

// Keep stores the given values and erases the subject's values that the
// purposes just turned off leave with no granted purpose, under the
// subject's lock (the ledger calls it from Apply). Giving a value is
// recorded as provided, erasing as erased; an unchanged value writes nothing.
func (s *Service) Keep(ctx context.Context, tx *consent.Tx, vs []consent.Volunteered, turnedOff []string, channel consent.Channel, actor string) (consent.Kept, error) {
	var kept consent.Kept
	st := tx.State()
	for _, v := range vs {
		if v.Value == "" {
			erased, err := s.eraseIfStored(ctx, tx, v.Field, "", channel, actor)
			if err != nil {
				return kept, err
			}
			if erased {
				kept.Erased = append(kept.Erased, v.Field)
			}
			continue
		}
		stored, err := s.store(ctx, tx, v, channel, actor)
		if err != nil {
			return kept, err
		}
		if stored {
			kept.Stored = append(kept.Stored, v.Field)
		}
	}
	if len(turnedOff) == 0 {
		return kept, nil
	}
	fs, err := s.List(ctx, st.MerchantID)
	if err != nil {
		return kept, err
	}
	st = tx.State()
	for _, f := range fs {
		off := slices.IndexFunc(f.Purposes, func(p string) bool { return slices.Contains(turnedOff, p) })
		if off < 0 || grantedNeed(f.Purposes, st) != "" || slices.Contains(kept.Erased, f.Key) {
			continue
		}
		erased, err := s.eraseIfStored(ctx, tx, f.Key, f.Purposes[off], channel, "system:purpose_withdrawn")
		if err != nil {
			return kept, err
		}
		if erased {
			kept.Erased = append(kept.Erased, f.Key)
		}
	}
	return kept, nil
}

// store keeps one value under tx, unless the subject holds it already.
func (s *Service) store(ctx context.Context, tx *consent.Tx, v consent.Volunteered, channel consent.Channel, actor string) (bool, error) {
	st := tx.State()
	purpose := grantedNeed(v.Purposes, st)
	if purpose == "" {
		return false, (&consent.FieldNeedsPurposeError{Field: v.Field, Purposes: v.Purposes}).AppErr()
	}
	if cur, err := s.Store.Value(ctx, st.MerchantID, st.SubjectID, v.Field); err == nil && !cur.Erasing {
		if old, err := s.open(ctx, cur); err == nil && old == v.Value {
			return false, nil // unchanged: nothing to write or record
		}
	} else if err != nil && !apperr.Is(err, apperr.NotFound) {
		return false, err
	}
	key, err := s.dataKey(ctx, st.MerchantID, st.SubjectID)
	if err != nil {
		return false, err
	}
	sealed := key.Seal(st.MerchantID, st.SubjectID, v.Field, []byte(v.Value))
	if err := s.Store.PutValue(ctx, Value{MerchantID: st.MerchantID, SubjectID: st.SubjectID, Field: v.Field, Sealed: sealed, Purpose: purpose,
		UpdatedAt: s.Now().UTC().Truncate(time.Millisecond)}); err != nil {
		return false, err
	}
	if err := tx.AppendField(ctx, consent.FieldChange{Field: v.Field, State: consent.Provided, Purpose: purpose, Channel: channel, Actor: actor}); err != nil {
		// Not kept without its record (and if the chain moved, the choices
		// are decided again on the new state, which may not want it).
		if derr := s.Store.DeleteValue(context.WithoutCancel(ctx), st.MerchantID, st.SubjectID, v.Field); derr != nil {
			return false, errors.Join(err, derr)
		}
		return false, err
	}
	return true, nil
}

// eraseIfStored erases the subject's value of field if there is one; purpose
// "" records the purpose the value was given for.
func (s *Service) eraseIfStored(ctx context.Context, tx *consent.Tx, field, purpose string, channel consent.Channel, actor string) (bool, error) {
	st := tx.State()
	v, err := s.Store.Value(ctx, st.MerchantID, st.SubjectID, field)
	if apperr.Is(err, apperr.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if purpose == "" {
		purpose = v.Purpose
	}
	return true, s.erase(ctx, tx, field, purpose, channel, actor)
}

// dataKey returns the subject's data key, making one on first use. Two
// first uses at once both wrap a key; the store keeps one and both use it.
func (s *Service) dataKey(ctx context.Context, merchantID, subjectID string) (vault.DataKey, error) {
	wk, err := s.Store.DataKey(ctx, merchantID, subjectID)
	if apperr.Is(err, apperr.NotFound) {
		_, wrapped, err := s.Keys.NewDataKey(merchantID, subjectID)
		if err != nil {
			return vault.DataKey{}, err
		}
		wk, err = s.Store.CreateDataKey(ctx, WrappedKey{MerchantID: merchantID, SubjectID: subjectID, Wrapped: wrapped, MasterID: s.Keys.ID(),
			CreatedAt: s.Now().UTC().Truncate(time.Millisecond)})
		if err != nil {
			return vault.DataKey{}, err
		}
	} else if err != nil {
		return vault.DataKey{}, err
	}
	return s.unwrap(wk)
}

// unwrap opens a subject's wrapped data key with the master key.
func (s *Service) unwrap(wk WrappedKey) (vault.DataKey, error) {
	if wk.MasterID != s.Keys.ID() {
		return vault.DataKey{}, apperr.New(apperr.Internal, "volunteered data was sealed under another master key (id %s, configured %s): set FINELINE_MASTER_KEY to the key in use", wk.MasterID, s.Keys.ID())
	}
	return s.Keys.Unwrap(wk.MerchantID, wk.SubjectID, wk.Wrapped)
}

// Forget makes every value the subject gave unreadable at once, by deleting
// their data key (copies of the values in backups cannot be opened either),
// then deletes the values themselves. The erasure of a subject calls it
// after the ledger recorded the erasure, which refuses any value given after.
func (s *Service) Forget(ctx context.Context, merchantID, subjectID string) error {
	if err := s.Store.DeleteDataKey(ctx, merchantID, subjectID); err != nil {
		return err
	}
	fs, err := s.List(ctx, merchantID)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if err := s.Store.DeleteValue(ctx, merchantID, subjectID, f.Key); err != nil {
			return err
		}
	}
	return nil
}

// open decrypts a stored value with the subject's key; a value whose key
// is gone (the subject was erased) cannot be read, and no new key is made.
func (s *Service) open(ctx context.Context, v Value) (string, error) {
	wk, err := s.Store.DataKey(ctx, v.MerchantID, v.SubjectID)
	if err != nil {
		return "", err
	}
	key, err := s.unwrap(wk)
	if err != nil {
		return "", err
	}
	b, err := key.Open(v.MerchantID, v.SubjectID, v.Field, v.Sealed)
	if err != nil {
		return "", apperr.Wrap(err, "open %s", v.Field)
	}
	return string(b), nil
}

// Own returns the subject's stored values by field key, opened, for the
// subject's own view in the preference center.
func (s *Service) Own(ctx context.Context, merchantID, subjectID string, fs []Field) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range fs {
		v, err := s.Store.Value(ctx, merchantID, subjectID, f.Key)
		if apperr.Is(err, apperr.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if v.Erasing {
			continue
		}
		plain, err := s.open(ctx, v)
		if err != nil {
			return nil, err
		}
		out[f.Key] = plain
	}
	return out, nil
}

// Reasons a value is withheld from a merchant.
const (
	ReasonNotNeeded  = "not_needed_for_purpose"
	ReasonNotGranted = "purpose_not_granted"
	ReasonNotGiven   = "not_provided"
)

// Disclosed is a value a purpose may use.
type Disclosed struct {
	Field Field
	Value string
}

// Withheld is a field not disclosed, with why.
type Withheld struct {
	Field  string
	Reason string
	// Decision is the purpose's decision when Reason is ReasonNotGranted.
	Decision consent.Reason
}

// Disclosure is what a merchant may read for one purpose.
type Disclosure struct {
	SubjectID string
	Purpose   string
	Allowed   bool
	Fields    []Disclosed
	Withheld  []Withheld
}

// ForPurpose returns the subject's values that purpose needs, only if the
// purpose is allowed now (granted, under terms in force); every other field
// is withheld with its reason.
func (s *Service) ForPurpose(ctx context.Context, merchantID, subjectID, purpose string) (Disclosure, error) {
	d, err := s.Ledger.Check(ctx, merchantID, subjectID, purpose)
	if err != nil {
		return Disclosure{}, err
	}
	fs, err := s.List(ctx, merchantID)
	if err != nil {
		return Disclosure{}, err
	}
	out := Disclosure{SubjectID: subjectID, Purpose: purpose, Allowed: d.Allowed, Fields: []Disclosed{}, Withheld: []Withheld{}}
	for _, f := range fs {
		switch {
		case !f.Needs(purpose):
			out.Withheld = append(out.Withheld, Withheld{Field: f.Key, Reason: ReasonNotNeeded})
			continue
		case !d.Allowed:
			out.Withheld = append(out.Withheld, Withheld{Field: f.Key, Reason: ReasonNotGranted, Decision: d.Reason})
			continue
		}
		v, err := s.Store.Value(ctx, merchantID, subjectID, f.Key)
		if apperr.Is(err, apperr.NotFound) || (err == nil && v.Erasing) {
			out.Withheld = append(out.Withheld, Withheld{Field: f.Key, Reason: ReasonNotGiven})
			continue
		}
		if err != nil {
			return Disclosure{}, err
		}
		plain, err := s.open(ctx, v)
		if err != nil {
			return Disclosure{}, err
		}
		out.Fields = append(out.Fields, Disclosed{Field: f, Value: plain})
	}
	return out, nil
}

// erase erases a value in three steps, each safe to crash after: the
// sealed value is blanked at once, the erasure is recorded in the ledger,
// then the document goes. A sweep finishes what a crash left marked.
func (s *Service) erase(ctx context.Context, tx *consent.Tx, field, purpose string, channel consent.Channel, actor string) error {
	st := tx.State()
	err := s.Store.PutValue(ctx, Value{MerchantID: st.MerchantID, SubjectID: st.SubjectID, Field: field, Purpose: purpose, Erasing: true,
		UpdatedAt: s.Now().UTC().Truncate(time.Millisecond)})
	if err != nil {
		return err
	}
	if err := tx.AppendField(ctx, consent.FieldChange{Field: field, State: consent.Erased, Purpose: purpose, Channel: channel, Actor: actor}); err != nil {
		return err
	}
	return s.Store.DeleteErasing(ctx, st.MerchantID, st.SubjectID, field)
}

// Sweep erases every stored value no granted purpose needs, and finishes
// erasures a crash interrupted. It runs at start and then periodically; it
// returns how many values it erased.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	var todo []Value
	err := s.Store.EachValue(ctx, func(v Value) error {
		todo = append(todo, v)
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	fieldsOf := map[string][]Field{}
	for _, v := range todo {
		fs, ok := fieldsOf[v.MerchantID]
		if !ok {
			if fs, err = s.List(ctx, v.MerchantID); err != nil {
				return n, err
			}
			fieldsOf[v.MerchantID] = fs
		}
		i := slices.IndexFunc(fs, func(f Field) bool { return f.Key == v.Field })
		if i < 0 {
			// Not in the list: maybe created since it was cached. Ask the store.
			if f, err := s.Store.Field(ctx, v.MerchantID, v.Field); err == nil {
				fs = append(fs, f)
				fieldsOf[v.MerchantID] = fs
				i = len(fs) - 1
			} else if !apperr.Is(err, apperr.NotFound) {
				return n, err
			}
		}
		erased := false
		_, _, err := s.Ledger.Locked(ctx, v.MerchantID, v.SubjectID, func(tx *consent.Tx) error {
			cur, err := s.Store.Value(ctx, v.MerchantID, v.SubjectID, v.Field)
			if apperr.Is(err, apperr.NotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if !cur.Erasing && i >= 0 && grantedNeed(fs[i].Purposes, tx.State()) != "" {
				return nil
			}
			erased = true
			return s.erase(ctx, tx, v.Field, cur.Purpose, consent.ChannelSystem, "system:sweep")
		})
		if err != nil {
			return n, err
		}
		if erased {
			n++
		}
	}
	return n, nil
}

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.Log.WarnContext(ctx, "fields: sweep failed", "err", err)
		} else if n > 0 {
			s.Log.InfoContext(ctx, "fields: erased values no granted purpose needs", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ValueFor returns the subject's value of one field for one purpose, under
// the rule the merchant API follows: only when the purpose needs the field
// and is allowed now. ok is false when the value is withheld or absent.
func (s *Service) ValueFor(ctx context.Context, merchantID, subjectID, field, purpose string) (string, bool, error) {
	f, err := s.Get(ctx, merchantID, field)
	if err != nil {
		return "", false, err
	}
	if !f.Needs(purpose) {
		return "", false, nil
	}
	v, err := s.Store.Value(ctx, merchantID, subjectID, field)
	if apperr.Is(err, apperr.NotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return s.OpenFor(ctx, f, v, purpose)
}

// OpenFor opens a stored value of field f (as listed by Store.Values) for
// purpose, under the same rule as ValueFor.
func (s *Service) OpenFor(ctx context.Context, f Field, v Value, purpose string) (string, bool, error) {
	if !f.Needs(purpose) || v.Erasing || v.Field != f.Key || v.MerchantID != f.MerchantID {
		return "", false, nil
	}
	d, err := s.Ledger.Check(ctx, v.MerchantID, v.SubjectID, purpose)
	if err != nil || !d.Allowed {
		return "", false, err
	}
	plain, err := s.open(ctx, v)
	return plain, err == nil, err
}
