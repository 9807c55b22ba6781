package store

import (
	"bytes"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/fineline/fineline/consent"
)

// Documents read straight from the embedded store's file are decoded from
// their stored text in one pass. SQLite's JSON functions parse the whole
// text once per field asked for, which made reading an event cost sixteen
// parses. The values follow the type schema the server keeps first ("$s"),
// from _id on; the schema names "_id" too, but as an object, never as a
// string, so the values start at the first `,"_id":"`.

// docDecoder decodes stored documents, reusing its buffers.
type docDecoder struct {
	r bytes.Reader
	d jsontext.Decoder
}

// open positions the decoder on the document's values and reads its '{'.
func (dd *docDecoder) open(raw []byte) (*jsontext.Decoder, error) {
	if i := bytes.Index(raw, []byte(`,"_id":"`)); i > 0 {
		raw = raw[i:]
		raw[0] = '{'
	}
	dd.r.Reset(raw)
	dd.d.Reset(&dd.r, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	tok, err := dd.d.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("a stored document is not an object")
	}
	return &dd.d, nil
}

// eachMember calls fn with each member's name, in order, until the end of the
// object; fn reads or skips the value.
func eachMember(d *jsontext.Decoder, fn func(name string) error) error {
	for d.PeekKind() != '}' {
		tok, err := d.ReadToken()
		if err != nil {
			return err
		}
		if err := fn(tok.String()); err != nil { // a token is good until the next read
			return err
		}
	}
	_, err := d.ReadToken()
	return err
}

// event decodes a stored event.
func (dd *docDecoder) event(raw []byte) (consent.Event, error) {
	var e consent.Event
	d, err := dd.open(raw)
	if err != nil {
		return e, fmt.Errorf("a stored event does not decode: %w", err)
	}
	str := func(dst *string) error {
		tok, err := d.ReadToken()
		if err == nil && tok.Kind() == '"' {
			*dst = tok.String()
		}
		return err
	}
	num := func() (int64, error) {
		tok, err := d.ReadToken()
		if err != nil || tok.Kind() != '0' {
			return 0, err
		}
		return tok.Int(), nil
	}
	err = eachMember(d, func(name string) error {
		var err error
		var n int64
		switch name {
		case "merchant_id":
			return str(&e.MerchantID)
		case "subject_id":
			return str(&e.SubjectID)
		case "purpose":
			return str(&e.Purpose)
		case "state":
			var s string
			err = str(&s)
			e.State = consent.State(s)
		case "channel":
			var s string
			err = str(&s)
			e.Channel = consent.Channel(s)
		case "actor":
			return str(&e.Actor)
		case "idempotency_key":
			return str(&e.IdempotencyKey)
		case "prev_hash":
			return str(&e.PrevHash)
		case "hash":
			return str(&e.Hash)
		case "field":
			return str(&e.Field)
		case "source":
			return str(&e.Source)
		case "proof":
			return str(&e.Proof)
		case "level":
			var s string
			err = str(&s)
			e.Level = consent.Level(s)
		case "prev":
			var s string
			err = str(&s)
			e.Prev = consent.State(s)
		case "locale":
			return str(&e.Locale)
		case "seq":
			e.Seq, err = num()
		case "notice_version":
			n, err = num()
			e.NoticeVersion = int(n)
		case "prev_notice":
			n, err = num()
			e.PrevNotice = int(n)
		case "recorded_at":
			n, err = num()
			e.RecordedAt = fromMillis(n)
		case "given_at":
			if n, err = num(); n != 0 {
				e.GivenAt = fromMillis(n)
			}
		default:
			return d.SkipValue()
		}
		return err
	})
	if err != nil {
		return consent.Event{}, fmt.Errorf("a stored event does not decode: %w", err)
	}
	return e, nil
}

// state decodes a stored projection, keeping of its purposes only only
// (all when empty).
func (dd *docDecoder) state(raw []byte, only string) (consent.SubjectState, error) {
	var st consent.SubjectState
	d, err := dd.open(raw)
	if err != nil {
		return st, fmt.Errorf("a stored consent state does not decode: %w", err)
	}
	err = eachMember(d, func(name string) error {
		switch name {
		case "merchant_id", "subject_id", "head_hash", "level":
			tok, err := d.ReadToken()
			if err != nil {
				return err
			}
			switch name {
			case "merchant_id":
				st.MerchantID = tok.String()
			case "subject_id":
				st.SubjectID = tok.String()
			case "level":
				st.Level = consent.Level(tok.String())
			default:
				st.HeadHash = tok.String()
			}
		case "seq", "updated_at", "level_seq", "erased_seq":
			tok, err := d.ReadToken()
			if err != nil {
				return err
			}
			switch name {
			case "seq":
				st.Seq = tok.Int()
			case "level_seq":
				st.LevelSeq = tok.Int()
			case "erased_seq":
				st.ErasedSeq = tok.Int()
			default:
				st.UpdatedAt = fromMillis(tok.Int())
			}
		case "purposes":
			st.Purposes = map[string]consent.PurposeState{}
			if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
				return fmt.Errorf("purposes is not an object: %v", err)
			}
			return eachMember(d, func(key string) error {
				if only != "" && key != only {
					return d.SkipValue()
				}
				ps, err := purposeState(d)
				st.Purposes[key] = ps
				return err
			})
		default:
			return d.SkipValue()
		}
		return nil
	})
	if err != nil {
		return consent.SubjectState{}, fmt.Errorf("a stored consent state does not decode: %w", err)
	}
	return st, nil
}

// purposeState decodes one purpose's state.
func purposeState(d *jsontext.Decoder) (consent.PurposeState, error) {
	var ps consent.PurposeState
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return ps, fmt.Errorf("a purpose's state is not an object: %v", err)
	}
	err := eachMember(d, func(name string) error {
		tok, err := d.ReadToken()
		if err != nil {
			return err
		}
		switch name {
		case "state":
			ps.State = consent.State(tok.String())
		case "channel":
			ps.Channel = consent.Channel(tok.String())
		case "seq":
			ps.Seq = tok.Int()
		case "notice_version":
			ps.NoticeVersion = int(tok.Int())
		case "at":
			ps.At = fromMillis(tok.Int())
		case "gpc_seq":
			ps.GPCSeq = tok.Int()
		}
		return nil
	})
	return ps, err
}
