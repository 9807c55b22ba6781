package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fineline/fineline/consent"
)

// TestStoredFormatMatchesTheServers: every kind of document Fineline
// writes straight into the embedded store's file is stored exactly as the
// server stores it when given the same document over the wire, byte for
// byte, and reads back through the server as written.
func TestStoredFormatMatchesTheServers(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	at := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	ev := toEventDoc(consent.Event{MerchantID: "mer_a", SubjectID: "s<1>&\u2028", Seq: 3, Purpose: "ünïcode_ok", State: consent.Granted, NoticeVersion: 2,
		Channel: consent.ChannelCenter, Actor: `quote " and \ backslash` + "\x01\ttab", RecordedAt: at, IdempotencyKey: "k", PrevHash: "p", Hash: "h", Field: "birthday"})
	bare := toEventDoc(consent.Event{MerchantID: "mer_a", SubjectID: "s2", Seq: 1, Purpose: "newsletter", State: consent.Withdrawn, RecordedAt: at.Add(-80 * 365 * 24 * time.Hour)})
	imported := toEventDoc(consent.Event{MerchantID: "mer_a", SubjectID: "s4", Seq: 1, Purpose: "newsletter", State: consent.Granted, Channel: consent.ChannelImport,
		Actor: "api_key:k", RecordedAt: at, GivenAt: at.Add(-3 * 365 * 24 * time.Hour), Source: "crm \"2019\"", Proof: "double opt-in ref 42\n", Hash: "h"})
	rec := toRecordDoc(consent.SubjectState{MerchantID: "mer_a", SubjectID: "s1", Seq: 3, HeadHash: "h", UpdatedAt: at,
		Purposes: map[string]consent.PurposeState{"newsletter": {State: consent.Granted, Seq: 3, NoticeVersion: 2, Channel: consent.ChannelCenter, At: at, GPCSeq: 1}}})
	empty := toRecordDoc(consent.SubjectState{MerchantID: "mer_a", SubjectID: "s3", Purposes: map[string]consent.PurposeState{}})
	docs, _ := batchEntries(0, 7, func(string) int64 { return 9 }, []eventDoc{ev, bare}, at)
	docs = append(docs, ev, bare, imported, rec, empty,
		subjectDoc{ID: "mer_a/s1", MerchantID: "mer_a", SubjectID: "s1", Email: "a@example.com", Locale: "fr", TimeZone: "Europe/Paris", CreatedAt: at, UpdatedAt: at},
		subjectDoc{ID: "mer_a/s2", MerchantID: "mer_a", SubjectID: "s2"},
		bson.D{{Key: "_id", Value: "misc"}, {Key: "f", Value: 1.5}, {Key: "b", Value: true}, {Key: "n", Value: nil}, {Key: "i32", Value: int32(-4)},
			{Key: "a", Value: bson.A{}}, {Key: "d", Value: bson.D{}}, {Key: "nested", Value: bson.A{bson.D{{Key: "x", Value: bson.A{int64(1), "y"}}}}}})
	r, err := s.embedded.reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		viaServer, direct := fmt.Sprintf("format_server_%d", i), fmt.Sprintf("format_direct_%d", i)
		if _, err := s.db.Collection(viaServer).InsertOne(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := s.db.CreateCollection(ctx, direct); err != nil {
			t.Fatal(err)
		}
		enc, err := encodeStored(d)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.embedded.insertFile(ctx, direct, []string{enc}); n != 1 || err != nil {
			t.Fatalf("doc %d (%T): inserted %d: %v", i, d, n, err)
		}
		stored := func(coll string) string {
			st, err := r.stmt(ctx, coll, `SELECT _ferretdb_sjson FROM %q`)
			if err != nil {
				t.Fatal(err)
			}
			var text string
			if err := st.QueryRowContext(ctx).Scan(&text); err != nil {
				t.Fatal(err)
			}
			return text
		}
		want, got := stored(viaServer), stored(direct)
		if got != want {
			t.Errorf("doc %d (%T) stored differently:\nserver: %s\ndirect: %s", i, d, want, got)
			continue
		}
		var a, b bson.Raw
		if err := s.db.Collection(viaServer).FindOne(ctx, bson.D{}).Decode(&a); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Collection(direct).FindOne(ctx, bson.D{}).Decode(&b); err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Errorf("doc %d (%T) reads back differently:\nserver: %s\ndirect: %s", i, d, a, b)
		}
	}
}
