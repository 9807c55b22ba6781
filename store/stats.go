package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/stats"
)

var _ stats.Store = (*Store)(nil)

// rollupIntentDoc keeps a page's additions as one JSON string: the
// embedded server writes and reads one long value far faster than
// thousands of small subdocuments.
type rollupIntentDoc struct {
	Gen     int64     `bson:"gen"`
	To      string    `bson:"to"`
	Events  int64     `bson:"events"`
	Last    time.Time `bson:"last"`
	NotesTo int64     `bson:"notes_to,omitempty"`
	Adds    string    `bson:"adds"`
}

type rollupStateDoc struct {
	ID         string           `bson:"_id"`
	MerchantID string           `bson:"merchant_id"`
	Rev        int64            `bson:"rev"`
	Gen        int64            `bson:"gen"`
	Cursor     string           `bson:"cursor"`
	Intent     *rollupIntentDoc `bson:"intent,omitempty"`
	Events     int64            `bson:"events"`
	Last       time.Time        `bson:"last"`
	UpdatedAt  time.Time        `bson:"updated_at"`
	NotesPos   int64            `bson:"notes_pos,omitempty"`
}

// Rollup documents are named under the counters' format
// ("<merchant>/f<format>/..."): a new format starts from the beginning of
// the feed beside the old documents, which nothing reads any more.
func rollupID(merchantID string, parts ...string) string {
	return id(append([]string{merchantID, "f" + strconv.Itoa(stats.Format)}, parts...)...)
}
func rollupStateID(merchantID string) string  { return rollupID(merchantID, "~state") }
func rollupTotalsID(merchantID string) string { return rollupID(merchantID, "~totals") }
func rollupNoticeID(merchantID string, version int) string {
	return rollupID(merchantID, "~notice", strconv.Itoa(version))
}
func rollupMonthID(merchantID, purpose, month string) string {
	return rollupID(merchantID, purpose, month)
}

// RollupState returns a merchant's rollup state.
func (s *Store) RollupState(ctx context.Context, merchantID string) (stats.State, error) {
	var bad error
	st, err := findOne(ctx, s, collRollups, rollupStateID(merchantID), "rollup state", func(d rollupStateDoc) stats.State {
		st := stats.State{MerchantID: d.MerchantID, Rev: d.Rev, Gen: d.Gen, Cursor: d.Cursor, Events: d.Events, Last: utc(d.Last), UpdatedAt: utc(d.UpdatedAt), NotesPos: d.NotesPos}
		if in := d.Intent; in != nil {
			st.Intent = &stats.Intent{Gen: in.Gen, To: in.To, Events: in.Events, Last: utc(in.Last), NotesTo: in.NotesTo}
			if err := json.Unmarshal([]byte(in.Adds), &st.Intent.Adds); err != nil {
				bad = err
			}
		}
		return st
	})
	if err == nil && bad != nil {
		err = storeError(bad, "read rollup state")
	}
	return st, err
}

// SaveRollupState stores st if the stored state is the rev before it.
func (s *Store) SaveRollupState(ctx context.Context, st stats.State) (bool, error) {
	d := rollupStateDoc{ID: rollupStateID(st.MerchantID), MerchantID: st.MerchantID, Rev: st.Rev, Gen: st.Gen, Cursor: st.Cursor,
		Events: st.Events, Last: st.Last, UpdatedAt: st.UpdatedAt, NotesPos: st.NotesPos}
	if in := st.Intent; in != nil {
		adds, err := json.Marshal(in.Adds)
		if err != nil {
			return false, err
		}
		d.Intent = &rollupIntentDoc{Gen: in.Gen, To: in.To, Events: in.Events, Last: in.Last, NotesTo: in.NotesTo, Adds: string(adds)}
	}
	if st.Rev == 1 {
		err := s.insertOne(ctx, collRollups, d)
		if mongo.IsDuplicateKeyError(err) {
			return false, nil
		}
		return err == nil, storeError(err, "save rollup state")
	}
	defer s.writing()()
	filter := bson.D{{Key: "_id", Value: d.ID}, {Key: "rev", Value: st.Rev - 1}}
	if s.local {
		// A filter on more than _id is a scan there: check the rev with a
		// point read under the writer lock instead.
		var cur struct {
			Rev int64 `bson:"rev"`
		}
		if err := s.db.Collection(collRollups).FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}).Decode(&cur); err != nil {
			return false, notFound(err, "rollup state")
		}
		if cur.Rev != st.Rev-1 {
			return false, nil
		}
		filter = filter[:1]
	}
	res, err := s.db.Collection(collRollups).ReplaceOne(ctx, filter, d)
	s.noteWrite(err)
	if err != nil {
		return false, storeError(err, "save rollup state")
	}
	return res.MatchedCount == 1, nil
}

// rollupCountsDoc is one document of counters: a purpose's month or a
// merchant's totals. The counters are one string (stats.Counts.Encode), read,
// added to and written back whole: the embedded server stores and loads
// one long value far faster than a thousand small fields, and answers an
// update filtered on more than _id by scanning the collection.
type rollupCountsDoc struct {
	ID         string `bson:"_id"`
	MerchantID string `bson:"merchant_id"`
	Purpose    string `bson:"purpose,omitempty"`
	Month      string `bson:"month,omitempty"`
	// Gen is the last generation of additions the document took.
	Gen    int64  `bson:"gen"`
	Counts string `bson:"counts"`
}

// rollupCounts reads a counters document; found is false when there is
// none.
func (s *Store) rollupCounts(ctx context.Context, docID string) (d rollupCountsDoc, c stats.Counts, found bool, err error) {
	err = s.db.Collection(collRollups).FindOne(ctx, bson.D{{Key: "_id", Value: docID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, stats.Counts{}, false, nil
	}
	if err != nil {
		return d, nil, false, storeError(err, "read rollup")
	}
	if c, err = stats.DecodeCounts(d.Counts); err != nil {
		return d, nil, false, storeError(err, "read rollup")
	}
	return d, c, true, nil
}

// ApplyRollup adds a to its document unless that document took gen
// already. On the embedded store the writer lock holds off every other
// write between the read and the write back; on MongoDB the write back
// expects the generation it read (or, for a new document, that none was
// inserted meanwhile), and starts again if another got in first.
func (s *Store) ApplyRollup(ctx context.Context, merchantID string, gen int64, a stats.Add) error {
	docID := rollupTotalsID(merchantID)
	switch {
	case a.Notice > 0:
		docID = rollupNoticeID(merchantID, a.Notice)
	case !a.Totals():
		docID = rollupMonthID(merchantID, a.Purpose, a.Month)
	}
	defer s.writing()()
	coll := s.db.Collection(collRollups)
	for {
		d, counts, found, err := s.rollupCounts(ctx, docID)
		if err != nil {
			return err
		}
		if found && d.Gen >= gen {
			return nil // it took this generation already
		}
		had := d.Gen
		counts.Apply(a.Incs)
		d = rollupCountsDoc{ID: docID, MerchantID: merchantID, Purpose: a.Purpose, Month: a.Month, Gen: gen, Counts: counts.Encode()}
		var landed bool
		switch {
		case s.local:
			_, err = coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: docID}}, d, options.Replace().SetUpsert(true))
			landed = err == nil
		case !found:
			_, err = coll.InsertOne(ctx, d)
			if mongo.IsDuplicateKeyError(err) {
				err = nil
			} else {
				landed = err == nil
			}
		default:
			var res *mongo.UpdateResult
			res, err = coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: docID}, {Key: "gen", Value: had}}, d)
			landed = err == nil && res.MatchedCount == 1
		}
		s.noteWrite(err)
		if err != nil {
			return storeError(err, "apply rollup")
		}
		if landed {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// RollupMonth returns a purpose's counters for one month.
func (s *Store) RollupMonth(ctx context.Context, merchantID, purpose, month string) (stats.Month, error) {
	_, c, _, err := s.rollupCounts(ctx, rollupMonthID(merchantID, purpose, month))
	if err != nil {
		return stats.Month{}, err
	}
	return stats.MonthOf(c), nil
}

// RollupTotals returns a merchant's totals.
func (s *Store) RollupTotals(ctx context.Context, merchantID string) (stats.Totals, error) {
	_, c, _, err := s.rollupCounts(ctx, rollupTotalsID(merchantID))
	if err != nil {
		return stats.Totals{}, err
	}
	return stats.TotalsOf(c), nil
}

// RollupNotice returns the counters of a notice version's answers.
func (s *Store) RollupNotice(ctx context.Context, merchantID string, version int) (stats.NoticeCounts, error) {
	_, c, _, err := s.rollupCounts(ctx, rollupNoticeID(merchantID, version))
	if err != nil {
		return stats.NoticeCounts{}, err
	}
	return stats.NoticeOf(c), nil
}
