package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The embedded server keeps each document as one JSON text: the values, and
// under "$s" their BSON types (its "sjson" format). encodeStored writes a
// document in that format exactly as the server would, so that Fineline can
// insert straight into the server's file (see filewrite.go);
// TestStoredFormatMatchesTheServers compares it with the server's own
// output for every kind of document written that way.

var encodeBuffers = sync.Pool{New: func() any { return &encodeBuffer{} }}

type encodeBuffer struct {
	raw bytes.Buffer
	out bytes.Buffer
}

// encodeStored returns doc (a struct or bson.D) as the server stores it.
func encodeStored(doc any) (string, error) {
	b := encodeBuffers.Get().(*encodeBuffer)
	defer encodeBuffers.Put(b)
	b.raw.Reset()
	if err := bson.NewEncoder(bson.NewDocumentWriter(&b.raw)).Encode(doc); err != nil {
		return "", err
	}
	elems, err := bson.Raw(b.raw.Bytes()).Elements()
	if err != nil {
		return "", err
	}
	out := &b.out
	out.Reset()
	out.WriteString(`{"$s":`)
	if err := writeSchema(out, elems); err != nil {
		return "", err
	}
	for _, el := range elems {
		k := el.Key()
		if q := strconv.Quote(k); q[1:len(q)-1] != k {
			return "", fmt.Errorf("stored format: top-level key %q needs escaping", k)
		}
		out.WriteString(`,"`)
		out.WriteString(k)
		out.WriteString(`":`)
		if err := writeValue(out, el.Value()); err != nil {
			return "", err
		}
	}
	out.WriteByte('}')
	return out.String(), nil
}

// writeSchema writes the schema of a document's elements.
func writeSchema(buf *bytes.Buffer, elems []bson.RawElement) error {
	if len(elems) == 0 {
		buf.WriteString(`{}`)
		return nil
	}
	buf.WriteString(`{"p":{`)
	for i, el := range elems {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(buf, el.Key())
		buf.WriteByte(':')
		if err := writeElem(buf, el.Value()); err != nil {
			return err
		}
	}
	buf.WriteString(`},"$k":[`)
	for i, el := range elems {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(buf, el.Key())
	}
	buf.WriteString(`]}`)
	return nil
}

// writeElem writes the schema of one value.
func writeElem(buf *bytes.Buffer, v bson.RawValue) error {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			return err
		}
		buf.WriteString(`{"t":"object","$s":`)
		if err := writeSchema(buf, elems); err != nil {
			return err
		}
		buf.WriteByte('}')
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return err
		}
		buf.WriteString(`{"t":"array","i":[`)
		for i, item := range vals {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeElem(buf, item); err != nil {
				return err
			}
		}
		buf.WriteString(`]}`)
	case bson.TypeDouble:
		buf.WriteString(`{"t":"double"}`)
	case bson.TypeString:
		buf.WriteString(`{"t":"string"}`)
	case bson.TypeBoolean:
		buf.WriteString(`{"t":"bool"}`)
	case bson.TypeDateTime:
		buf.WriteString(`{"t":"date"}`)
	case bson.TypeNull:
		buf.WriteString(`{"t":"null"}`)
	case bson.TypeInt32:
		buf.WriteString(`{"t":"int"}`)
	case bson.TypeInt64:
		buf.WriteString(`{"t":"long"}`)
	default:
		return fmt.Errorf("stored format: BSON type %s is not written straight to the file", v.Type)
	}
	return nil
}

// writeValue writes one value.
func writeValue(buf *bytes.Buffer, v bson.RawValue) error {
	var scratch [24]byte
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			return err
		}
		buf.WriteByte('{')
		for i, el := range elems {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, el.Key())
			buf.WriteByte(':')
			if err := writeValue(buf, el.Value()); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case bson.TypeArray:
		items, err := v.Array().Values()
		if err != nil {
			return err
		}
		buf.WriteByte('[')
		for i, item := range items {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeValue(buf, item); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case bson.TypeDouble:
		b, err := json.Marshal(v.Double())
		if err != nil {
			return err
		}
		buf.Write(b)
	case bson.TypeString:
		writeString(buf, v.StringValue())
	case bson.TypeBoolean:
		buf.WriteString(strconv.FormatBool(v.Boolean()))
	case bson.TypeDateTime:
		buf.Write(strconv.AppendInt(scratch[:0], v.DateTime(), 10))
	case bson.TypeNull:
		buf.WriteString("null")
	case bson.TypeInt32:
		buf.Write(strconv.AppendInt(scratch[:0], int64(v.Int32()), 10))
	case bson.TypeInt64:
		buf.Write(strconv.AppendInt(scratch[:0], v.Int64(), 10))
	default:
		return fmt.Errorf("stored format: BSON type %s is not written straight to the file", v.Type)
	}
	return nil
}

// writeString writes s as encoding/json does (which the server uses):
// plain ASCII as it is, anything else through encoding/json.
func writeString(buf *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			buf.Write(b)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}
