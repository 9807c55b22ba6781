package fields_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/store/storetest"
	"github.com/fineline/fineline/vault"
)

const merchant = "mer_fields"

type env struct {
	st      *store.Store
	ledger  *consent.Ledger
	ps      *consent.Purposes
	svc     *fields.Service
	notices *notices.Service
	now     func() time.Time
}

func keyring(t testing.TB, b byte) *vault.Keyring {
	t.Helper()
	k, err := vault.New(bytes.Repeat([]byte{b}, vault.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newEnv has three purposes and two fields: size (needed by two purposes)
// and note (needed by one).
func newEnv(t *testing.T) *env { return newEnvTB(t) }

func newEnvTB(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t)
	ns := &notices.Service{Store: st, Now: time.Now}
	if _, err := ns.PublishFirst(ctx, merchant, nil, ""); err != nil {
		t.Fatal(err)
	}
	ps := &consent.Purposes{Store: st, Now: time.Now}
	for _, k := range []string{"recommendations", "fit_advice", "newsletter"} {
		if _, err := ps.Create(ctx, consent.Purpose{MerchantID: merchant, Key: k, Texts: map[string]consent.Text{"en": {Name: k, Statement: "A plain statement of " + k + "."}}}); err != nil {
			t.Fatal(err)
		}
	}
	ledger := consent.NewLedger(st, st, st, ns, time.Now, storetest.Logger(), consent.Options{})
	svc := &fields.Service{Store: st, Purposes: ps, Ledger: ledger, Keys: keyring(t, 1), Now: time.Now, Log: storetest.Logger()}
	ledger.KeepVolunteeredData(svc)
	for _, f := range []fields.Field{
		{Key: "size", Type: fields.TypeChoice, Choices: []string{"38", "39", "40"}, Purposes: []string{"recommendations", "fit_advice"}},
		{Key: "note", Type: fields.TypeText, Purposes: []string{"newsletter"}},
	} {
		f.MerchantID = merchant
		f.Texts = map[string]fields.Text{"en": {Label: f.Key, Explanation: "Used to tailor what we show you."}}
		if _, err := svc.Create(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	return &env{st: st, ledger: ledger, ps: ps, svc: svc, notices: ns, now: time.Now}
}

func (e *env) set(t *testing.T, subject, purpose string, s consent.State) {
	t.Helper()
	if _, err := e.ledger.Apply(context.Background(), consent.Choices{MerchantID: merchant, SubjectID: subject, Channel: consent.ChannelAPI, Actor: "test", Requests: []consent.Request{{Purpose: purpose, State: s}}}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) give(subject, field, value string) error {
	_, err := e.ledger.Apply(context.Background(), consent.Choices{MerchantID: merchant, SubjectID: subject, Channel: consent.ChannelCenter, Actor: "test",
		Values: map[string]string{field: value}})
	return err
}

func (e *env) stored(t *testing.T, subject, field string) bool {
	t.Helper()
	_, err := e.st.Value(context.Background(), merchant, subject, field)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestAValueIsKeptOnlyWithAGrantedPurposeThatNeedsIt(t *testing.T) {
	e := newEnv(t)
	if err := e.give("ana", "size", "39"); !apperr.Is(err, apperr.Invalid) || !strings.Contains(err.Error(), "grant") {
		t.Fatalf("a value without its purpose: %v, want refused", err)
	}
	e.set(t, "ana", "newsletter", consent.Granted)
	if err := e.give("ana", "size", "39"); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("a value with an unrelated purpose granted: %v, want refused", err)
	}
	e.set(t, "ana", "recommendations", consent.Granted)
	if err := e.give("ana", "size", "41"); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("a choice not listed: %v, want refused", err)
	}
	if err := e.give("ana", "size", "39"); err != nil {
		t.Fatal(err)
	}
	if !e.stored(t, "ana", "size") {
		t.Fatal("the value was not stored")
	}
}

func TestErasedWhenTheLastPurposeNeedingItIsWithdrawn(t *testing.T) {
	e := newEnv(t)
	e.set(t, "ben", "recommendations", consent.Granted)
	e.set(t, "ben", "fit_advice", consent.Granted)
	e.set(t, "ben", "newsletter", consent.Granted)
	if err := e.give("ben", "size", "40"); err != nil {
		t.Fatal(err)
	}
	if err := e.give("ben", "note", "no wool"); err != nil {
		t.Fatal(err)
	}
	e.set(t, "ben", "recommendations", consent.Withdrawn)
	if !e.stored(t, "ben", "size") {
		t.Fatal("size was erased while fit_advice, which needs it, is still granted")
	}
	e.set(t, "ben", "fit_advice", consent.Denied)
	if e.stored(t, "ben", "size") {
		t.Fatal("size is still stored after the last purpose needing it was denied")
	}
	if !e.stored(t, "ben", "note") {
		t.Fatal("note, needed by a purpose still granted, was erased")
	}
	evs, _, err := e.ledger.Events(context.Background(), merchant, "ben", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Field != "size" || last.State != consent.Erased || last.Purpose != "fit_advice" || last.Channel != consent.ChannelAPI {
		t.Fatalf("last event = %+v, want size erased for fit_advice", last)
	}
	rec, err := e.ledger.StateOf(context.Background(), merchant, "ben")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Purposes["newsletter"].State != consent.Granted || rec.Purposes[""].State != "" {
		t.Fatalf("field events changed consent state: %+v", rec.Purposes)
	}
}

func TestMerchantReadsOnlyWhatThePurposeNeedsAndIsAllowed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.set(t, "cy", "recommendations", consent.Granted)
	e.set(t, "cy", "newsletter", consent.Granted)
	if err := e.give("cy", "size", "38"); err != nil {
		t.Fatal(err)
	}
	if err := e.give("cy", "note", "likes red"); err != nil {
		t.Fatal(err)
	}
	d, err := e.svc.ForPurpose(ctx, merchant, "cy", "recommendations")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || len(d.Fields) != 1 || d.Fields[0].Field.Key != "size" || d.Fields[0].Value != "38" {
		t.Fatalf("recommendations sees %+v, want size only", d)
	}
	if len(d.Withheld) != 1 || d.Withheld[0].Field != "note" || d.Withheld[0].Reason != fields.ReasonNotNeeded {
		t.Fatalf("withheld %+v, want note as not needed", d.Withheld)
	}
	// fit_advice needs size too, but cy never granted it.
	d, err = e.svc.ForPurpose(ctx, merchant, "cy", "fit_advice")
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || len(d.Fields) != 0 || len(d.Withheld) != 2 {
		t.Fatalf("fit_advice sees %+v, want nothing", d)
	}
	for _, w := range d.Withheld {
		if w.Field == "size" && (w.Reason != fields.ReasonNotGranted || w.Decision != consent.ReasonNoRecord) {
			t.Errorf("size withheld as %+v, want purpose_not_granted/no_record", w)
		}
	}
	// Another merchant sees nothing of this subject.
	if d, err := e.svc.ForPurpose(ctx, "mer_other", "cy", "recommendations"); err == nil && len(d.Fields) > 0 {
		t.Fatalf("another merchant read %+v", d.Fields)
	}
}

func TestSweepFinishesAnErasureACrashInterrupted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.set(t, "dee", "newsletter", consent.Granted)
	if err := e.give("dee", "note", "gift wrap"); err != nil {
		t.Fatal(err)
	}
	// A crash after the first step of erasing: the value blanked and marked.
	if err := e.st.PutValue(ctx, fields.Value{MerchantID: merchant, SubjectID: "dee", Field: "note", Purpose: "newsletter", Erasing: true, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// And a value left behind while its purpose is off (a failed hook).
	e.set(t, "eve", "recommendations", consent.Granted)
	if err := e.give("eve", "size", "40"); err != nil {
		t.Fatal(err)
	}
	wk, err := e.st.Value(ctx, merchant, "eve", "size")
	if err != nil {
		t.Fatal(err)
	}
	e.set(t, "eve", "recommendations", consent.Withdrawn)
	if err := e.st.PutValue(ctx, wk); err != nil { // put it back
		t.Fatal(err)
	}
	n, err := e.svc.Sweep(ctx)
	if err != nil || n != 2 {
		t.Fatalf("sweep erased %d (err %v), want 2", n, err)
	}
	if e.stored(t, "dee", "note") || e.stored(t, "eve", "size") {
		t.Fatal("the sweep left a value behind")
	}
	if n, err := e.svc.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("a second sweep erased %d (err %v)", n, err)
	}
	evs, _, err := e.ledger.Events(ctx, merchant, "dee", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Field != "note" || last.State != consent.Erased || last.Channel != consent.ChannelSystem {
		t.Fatalf("last event %+v, want the erasure recorded by the sweep", last)
	}
}

func TestAnotherMasterKeyCannotOpenValues(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.set(t, "fay", "recommendations", consent.Granted)
	if err := e.give("fay", "size", "40"); err != nil {
		t.Fatal(err)
	}
	other := &fields.Service{Store: e.st, Purposes: e.ps, Ledger: e.ledger, Keys: keyring(t, 2), Now: time.Now, Log: storetest.Logger()}
	fs, err := e.svc.List(ctx, merchant)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Own(ctx, merchant, "fay", fs); err == nil || !strings.Contains(err.Error(), "FINELINE_MASTER_KEY") {
		t.Fatalf("opening with another master key: %v, want an error naming FINELINE_MASTER_KEY", err)
	}
	own, err := e.svc.Own(ctx, merchant, "fay", fs)
	if err != nil || own["size"] != "40" {
		t.Fatalf("Own = %v, %v", own, err)
	}
}

func TestFieldDefinitionsAndValuesAreValidated(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	text := map[string]fields.Text{"en": {Label: "Birthday", Explanation: "For your birthday reward."}}
	for name, f := range map[string]fields.Field{
		"unknown purpose":    {Key: "bday", Type: fields.TypeDate, Purposes: []string{"nope"}, Texts: text},
		"no purpose":         {Key: "bday", Type: fields.TypeDate, Texts: text},
		"bad key":            {Key: "Bday!", Type: fields.TypeDate, Purposes: []string{"newsletter"}, Texts: text},
		"bad type":           {Key: "bday", Type: "blob", Purposes: []string{"newsletter"}, Texts: text},
		"choice w/o choices": {Key: "bday", Type: fields.TypeChoice, Purposes: []string{"newsletter"}, Texts: text},
		"no explanation":     {Key: "bday", Type: fields.TypeDate, Purposes: []string{"newsletter"}, Texts: map[string]fields.Text{"en": {Label: "B"}}},
		"operator as key":    {Key: "$where", Type: fields.TypeDate, Purposes: []string{"newsletter"}, Texts: text},
		"control character":  {Key: "bday", Type: fields.TypeDate, Purposes: []string{"newsletter"}, Texts: map[string]fields.Text{"en": {Label: "a\x00b", Explanation: "For your birthday reward."}}},
		"direction override": {Key: "bday", Type: fields.TypeDate, Purposes: []string{"newsletter"}, Texts: map[string]fields.Text{"en": {Label: "Birthday", Explanation: "For your \u202ebirthday reward."}}},
	} {
		f.MerchantID = merchant
		if _, err := e.svc.Create(ctx, f); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if _, err := e.svc.Create(ctx, fields.Field{MerchantID: merchant, Key: "size", Type: fields.TypeText, Purposes: []string{"newsletter"}, Texts: text}); !apperr.Is(err, apperr.Conflict) {
		t.Errorf("a second field with the same key: %v, want conflict", err)
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	md := fields.Field{Key: "bday", Type: fields.TypeDate, OmitYear: true}
	full := fields.Field{Key: "bday", Type: fields.TypeDate}
	for _, c := range []struct {
		f        fields.Field
		in, want string
	}{
		{md, "--02-29", "--02-29"}, {md, "1990-07-19", "--07-19"}, {md, "--02-30", ""}, {md, "--13-01", ""}, {md, "--1-5", ""},
		{full, "1990-07-19", "1990-07-19"}, {full, "2030-01-01", ""}, {full, "1850-01-01", ""}, {full, "19.07.1990", ""},
	} {
		got, err := c.f.Normalize(c.in, now)
		if (c.want == "") != (err != nil) || got != c.want {
			t.Errorf("Normalize(%q, omit_year=%v) = %q, %v; want %q", c.in, c.f.OmitYear, got, err, c.want)
		}
	}
}

// TestGivingWhileWithdrawingNeverLeavesAValueBehind races a value being
// given against its only purpose being withdrawn: whichever wins, a
// withdrawn purpose never keeps the value.
func TestGivingWhileWithdrawingNeverLeavesAValueBehind(t *testing.T) {
	e := newEnv(t)
	for i := range 20 {
		subject := fmt.Sprintf("race%02d", i)
		e.set(t, subject, "newsletter", consent.Granted)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := e.give(subject, "note", "value"); err != nil && !apperr.Is(err, apperr.Invalid) {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := e.ledger.Apply(context.Background(), consent.Choices{MerchantID: merchant, SubjectID: subject, Channel: consent.ChannelAPI, Actor: "test", Requests: []consent.Request{{Purpose: "newsletter", State: consent.Withdrawn}}}); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		if e.stored(t, subject, "note") {
			t.Fatalf("%s: the value outlived the withdrawal of its only purpose", subject)
		}
	}
}
