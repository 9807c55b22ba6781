package store

import (
	"context"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/stats"
)

var _ stats.Store = (*Store)(nil)

type incDoc struct {
	Path string `bson:"k"`
	N    int64  `bson:"n"`
}

type rollupAddDoc struct {
	Purpose string   `bson:"p"`
	Month   string   `bson:"mo"`
	Incs    []incDoc `bson:"i"`
}

type rollupIntentDoc struct {
	Gen    int64          `bson:"gen"`
	To     string         `bson:"to"`
	Events int64          `bson:"events"`
	Last   time.Time      `bson:"last"`
	Adds   []rollupAddDoc `bson:"adds"`
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
}

func rollupStateID(merchantID string) string  { return id(merchantID, "~state") }
func rollupTotalsID(merchantID string) string { return id(merchantID, "~totals") }
func rollupMonthID(merchantID, purpose, month string) string {
	return id(merchantID, purpose, month)
}

// RollupState returns a merchant's rollup state.
func (s *Store) RollupState(ctx context.Context, merchantID string) (stats.State, error) {
	return findOne(ctx, s, collRollups, rollupStateID(merchantID), "rollup state", func(d rollupStateDoc) stats.State {
		st := stats.State{MerchantID: d.MerchantID, Rev: d.Rev, Gen: d.Gen, Cursor: d.Cursor, Events: d.Events, Last: utc(d.Last), UpdatedAt: utc(d.UpdatedAt)}
		if in := d.Intent; in != nil {
			st.Intent = &stats.Intent{Gen: in.Gen, To: in.To, Events: in.Events, Last: utc(in.Last)}
			for _, a := range in.Adds {
				add := stats.Add{Purpose: a.Purpose, Month: a.Month, Incs: make([]stats.Inc, 0, len(a.Incs))}
				for _, i := range a.Incs {
					add.Incs = append(add.Incs, stats.Inc{Path: i.Path, N: i.N})
				}
				st.Intent.Adds = append(st.Intent.Adds, add)
			}
		}
		return st
	})
}

// SaveRollupState stores st if the stored state is the rev before it.
func (s *Store) SaveRollupState(ctx context.Context, st stats.State) (bool, error) {
	d := rollupStateDoc{ID: rollupStateID(st.MerchantID), MerchantID: st.MerchantID, Rev: st.Rev, Gen: st.Gen, Cursor: st.Cursor,
		Events: st.Events, Last: st.Last, UpdatedAt: st.UpdatedAt}
	if in := st.Intent; in != nil {
		d.Intent = &rollupIntentDoc{Gen: in.Gen, To: in.To, Events: in.Events, Last: in.Last, Adds: make([]rollupAddDoc, 0, len(in.Adds))}
		for _, a := range in.Adds {
			ad := rollupAddDoc{Purpose: a.Purpose, Month: a.Month, Incs: make([]incDoc, 0, len(a.Incs))}
			for _, i := range a.Incs {
				ad.Incs = append(ad.Incs, incDoc{Path: i.Path, N: i.N})
			}
			d.Intent.Adds = append(d.Intent.Adds, ad)
		}
	}
	if st.Rev == 1 {
		err := s.insertOne(ctx, collRollups, d)
		if mongo.IsDuplicateKeyError(err) {
			return false, nil
		}
		return err == nil, storeError(err, "save rollup state")
	}
	defer s.writing()()
	res, err := s.db.Collection(collRollups).ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "rev", Value: st.Rev - 1}}, d)
	s.noteWrite(err)
	if err != nil {
		return false, storeError(err, "save rollup state")
	}
	return res.MatchedCount == 1, nil
}

// ApplyRollup adds a to its document unless that document took gen
// already: the filter passes only a document marked with an earlier
// generation, and the upsert of one that took it meets a duplicate key.
func (s *Store) ApplyRollup(ctx context.Context, merchantID string, gen int64, a stats.Add) error {
	docID := rollupTotalsID(merchantID)
	set := bson.D{{Key: "gen", Value: gen}, {Key: "merchant_id", Value: merchantID}}
	if !a.Totals() {
		docID = rollupMonthID(merchantID, a.Purpose, a.Month)
		set = append(set, bson.E{Key: "purpose", Value: a.Purpose}, bson.E{Key: "month", Value: a.Month})
	}
	inc := make(bson.D, 0, len(a.Incs))
	for _, i := range a.Incs {
		inc = append(inc, bson.E{Key: i.Path, Value: i.N})
	}
	defer s.writing()()
	_, err := s.db.Collection(collRollups).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: docID}, {Key: "gen", Value: bson.D{{Key: "$lt", Value: gen}}}},
		bson.D{{Key: "$inc", Value: inc}, {Key: "$set", Value: set}}, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return nil // it took this generation already
	}
	s.noteWrite(err)
	return storeError(err, "apply rollup")
}

type flowDoc struct {
	G int64 `bson:"g"`
	D int64 `bson:"d"`
	W int64 `bson:"w"`
}

func (f flowDoc) flows() stats.Flows { return stats.Flows{Grants: f.G, Denials: f.D, Withdrawals: f.W} }

type rollupDayDoc struct {
	G int64              `bson:"g"`
	D int64              `bson:"d"`
	W int64              `bson:"w"`
	A int64              `bson:"a"`
	S int64              `bson:"s"`
	C map[string]flowDoc `bson:"c"`
	L map[string]flowDoc `bson:"l"`
}

type rollupMonthDoc struct {
	D map[string]rollupDayDoc `bson:"d"`
}

// RollupMonth returns a purpose's counters for one month.
func (s *Store) RollupMonth(ctx context.Context, merchantID, purpose, month string) (stats.Month, error) {
	m, err := findOne(ctx, s, collRollups, rollupMonthID(merchantID, purpose, month), "rollup month", func(d rollupMonthDoc) stats.Month {
		out := stats.Month{Days: make(map[int]stats.Day, len(d.D))}
		for k, v := range d.D {
			n, err := strconv.Atoi(k)
			if err != nil {
				continue
			}
			day := stats.Day{Flows: stats.Flows{Grants: v.G, Denials: v.D, Withdrawals: v.W}, Allowed: v.A, Asked: v.S, ByChannel: map[string]stats.Flows{}, ByLocale: map[string]stats.Flows{}}
			for c, f := range v.C {
				day.ByChannel[c] = f.flows()
			}
			for l, f := range v.L {
				day.ByLocale[l] = f.flows()
			}
			out.Days[n] = day
		}
		return out
	})
	if apperr.Is(err, apperr.NotFound) {
		return stats.Month{Days: map[int]stats.Day{}}, nil
	}
	return m, err
}

type rollupTotalsDoc struct {
	A map[string]int64 `bson:"a"`
	S map[string]int64 `bson:"s"`
	N int64            `bson:"n"`
}

// RollupTotals returns a merchant's totals.
func (s *Store) RollupTotals(ctx context.Context, merchantID string) (stats.Totals, error) {
	t, err := findOne(ctx, s, collRollups, rollupTotalsID(merchantID), "rollup totals", func(d rollupTotalsDoc) stats.Totals {
		return stats.Totals{Allowed: d.A, Asked: d.S, Subjects: d.N}
	})
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return stats.Totals{}, err
	}
	if t.Allowed == nil {
		t.Allowed = map[string]int64{}
	}
	if t.Asked == nil {
		t.Asked = map[string]int64{}
	}
	return t, nil
}
