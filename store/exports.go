package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/exports"
)

var _ exports.Store = (*Store)(nil)

type exportDoc struct {
	ID         string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	ExportID   string    `bson:"export_id"`
	Purpose    string    `bson:"purpose"`
	Format     string    `bson:"format"`
	Include    string    `bson:"include"`
	Status     string    `bson:"status"`
	Rows       int64     `bson:"rows"`
	Chunks     int       `bson:"chunks"`
	Cursor     string    `bson:"cursor"`
	Error      string    `bson:"error,omitempty"`
	CreatedAt  time.Time `bson:"created_at"`
	FinishedAt time.Time `bson:"finished_at,omitempty"`
	Actor      string    `bson:"actor,omitempty"`
}

func toExportDoc(e exports.Export) exportDoc {
	return exportDoc{ID: id(e.MerchantID, e.ID), MerchantID: e.MerchantID, ExportID: e.ID, Purpose: e.Purpose, Format: string(e.Format),
		Include: string(e.Include), Status: string(e.Status), Rows: e.Rows, Chunks: e.Chunks, Cursor: e.Cursor, Error: e.Error,
		CreatedAt: e.CreatedAt, FinishedAt: e.FinishedAt, Actor: e.Actor}
}

func (d exportDoc) export() exports.Export {
	return exports.Export{MerchantID: d.MerchantID, ID: d.ExportID, Purpose: d.Purpose, Format: exports.Format(d.Format), Include: exports.Include(d.Include),
		Status: exports.Status(d.Status), Rows: d.Rows, Chunks: d.Chunks, Cursor: d.Cursor, Error: d.Error, CreatedAt: d.CreatedAt.UTC(), FinishedAt: utc(d.FinishedAt), Actor: d.Actor}
}

// exportDayDoc lists the exports a merchant asked for on one day, under
// "<merchant>/<day>": what a shopper's data page reads (a point read a
// day) to tell which exports listed them.
type exportDayDoc struct {
	ID      string          `bson:"_id"`
	Exports []exportNoteDoc `bson:"exports"`
}

type exportNoteDoc struct {
	ID        string    `bson:"id"`
	Actor     string    `bson:"actor"`
	Purpose   string    `bson:"purpose"`
	Include   string    `bson:"include"`
	CreatedAt time.Time `bson:"created_at"`
}

// NoteExport adds the export to its day's list.
func (s *Store) NoteExport(ctx context.Context, e exports.Export) error {
	defer s.writing()()
	n := exportNoteDoc{ID: e.ID, Actor: e.Actor, Purpose: e.Purpose, Include: string(e.Include), CreatedAt: e.CreatedAt}
	_, err := s.db.Collection(collExportDays).UpdateOne(ctx, bson.D{{Key: "_id", Value: id(e.MerchantID, e.CreatedAt.UTC().Format(time.DateOnly))}},
		bson.D{{Key: "$push", Value: bson.D{{Key: "exports", Value: n}}}}, options.UpdateOne().SetUpsert(true))
	return storeError(err, "note the export")
}

// ExportsOn lists the exports noted on the days named: a point read a day.
func (s *Store) ExportsOn(ctx context.Context, merchantID string, days []string) ([]exports.Export, error) {
	var out []exports.Export
	for _, day := range days {
		var d exportDayDoc
		err := s.db.Collection(collExportDays).FindOne(ctx, bson.D{{Key: "_id", Value: id(merchantID, day)}}).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return nil, storeError(err, "read the exports of a day")
		}
		for _, n := range d.Exports {
			out = append(out, exports.Export{MerchantID: merchantID, ID: n.ID, Actor: n.Actor, Purpose: n.Purpose, Include: exports.Include(n.Include), CreatedAt: n.CreatedAt.UTC()})
		}
	}
	return out, nil
}

// CreateExport stores a new export job.
func (s *Store) CreateExport(ctx context.Context, e exports.Export) error {
	return storeError(s.insertOne(ctx, collExports, toExportDoc(e)), "create export")
}

// Export returns one of the merchant's exports.
func (s *Store) Export(ctx context.Context, merchantID, exportID string) (exports.Export, error) {
	e, err := findOne(ctx, s, collExports, id(merchantID, exportID), "export", exportDoc.export)
	if apperr.Is(err, apperr.NotFound) {
		return e, apperr.New(apperr.NotFound, "no such export").WithDetail("export_not_found")
	}
	return e, err
}

// SaveExport writes an export job's progress.
func (s *Store) SaveExport(ctx context.Context, e exports.Export) error {
	d := toExportDoc(e)
	return storeError(s.replaceByID(ctx, collExports, d.ID, d), "save export")
}

// UnfinishedExports lists pending and running exports (few: a scan of the
// jobs, never of subjects).
func (s *Store) UnfinishedExports(ctx context.Context) ([]exports.Export, error) {
	return list(ctx, s, collExports, bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{string(exports.Pending), string(exports.Running)}}}}},
		"created_at", exportDoc.export)
}

// FinishedBefore lists the exports finished before t.
func (s *Store) FinishedBefore(ctx context.Context, t time.Time) ([]exports.Export, error) {
	return list(ctx, s, collExports, bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{string(exports.Ready), string(exports.Failed)}}}},
		{Key: "finished_at", Value: bson.D{{Key: "$lt", Value: t}}}}, "created_at", exportDoc.export)
}

// DeleteExport removes an export's chunks, then the export.
func (s *Store) DeleteExport(ctx context.Context, e exports.Export) error {
	for n := range e.Chunks {
		if _, err := s.deleteByID(ctx, collExportChunks, chunkID(e.MerchantID, e.ID, n)); err != nil {
			return storeError(err, "delete export chunk")
		}
	}
	_, err := s.deleteByID(ctx, collExports, id(e.MerchantID, e.ID))
	return storeError(err, "delete export")
}

type chunkDoc struct {
	ID   string `bson:"_id"`
	Data []byte `bson:"data"`
}

func chunkID(merchantID, exportID string, n int) string {
	return id(merchantID, exportID, fmt.Sprintf("%06d", n))
}

// SaveChunk stores chunk n of an export.
func (s *Store) SaveChunk(ctx context.Context, merchantID, exportID string, n int, data []byte) error {
	d := chunkDoc{ID: chunkID(merchantID, exportID, n), Data: data}
	return storeError(s.replaceByID(ctx, collExportChunks, d.ID, d), "save export chunk")
}

// Chunk returns chunk n of an export.
func (s *Store) Chunk(ctx context.Context, merchantID, exportID string, n int) ([]byte, error) {
	return findOne(ctx, s, collExportChunks, chunkID(merchantID, exportID, n), "export chunk", func(d chunkDoc) []byte { return d.Data })
}

// MerchantStates reads the merchant's projections after a subject id, in
// _id order: one range of the _id index (the key is merchant/subject).
// With purpose set, each state holds that purpose alone.
func (s *Store) MerchantStates(ctx context.Context, merchantID, purpose, after string, limit int) ([]consent.SubjectState, error) {
	lo, hi := id(merchantID, after), merchantID+"0" // '0' follows '/'
	if s.fileReads() {
		return s.statesRangeFromFile(ctx, lo, hi, purpose, limit)
	}
	cur, err := s.db.Collection(collRecords).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: lo}, {Key: "$lt", Value: hi}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, storeError(err, "read consent states")
	}
	var docs []recordDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(err, "read consent states")
	}
	out := make([]consent.SubjectState, len(docs))
	for i, d := range docs {
		out[i] = d.state()
		if ps, ok := out[i].Purposes[purpose]; ok && purpose != "" {
			out[i].Purposes = map[string]consent.PurposeState{purpose: ps}
		}
	}
	return out, nil
}

// statesRangeFromFile reads the stored texts in one range of the _id
// index, then decodes them on every core.
func (s *Store) statesRangeFromFile(ctx context.Context, lo, hi, purpose string, limit int) ([]consent.SubjectState, error) {
	r, err := s.embedded.scanner(ctx)
	if err != nil {
		return nil, storeError(err, "read consent states")
	}
	q, err := r.stmt(ctx, collRecords, `SELECT _ferretdb_sjson FROM %q
		WHERE _ferretdb_sjson->'$._id' > ? AND _ferretdb_sjson->'$._id' < ? ORDER BY _ferretdb_sjson->'$._id' LIMIT ?`)
	if err != nil {
		return nil, storeError(err, "read consent states")
	}
	rows, err := q.QueryContext(ctx, quotedID(lo), quotedID(hi), limit)
	if err != nil {
		return nil, storeError(err, "read consent states")
	}
	var raws [][]byte
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			rows.Close()
			return nil, storeError(err, "read consent states")
		}
		raws = append(raws, raw)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, storeError(err, "read consent states")
	}
	s.embedded.reads.Add(int64(len(raws)))
	out := make([]consent.SubjectState, len(raws))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(raws)/256))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dd docDecoder
			for i := w; i < len(raws); i += workers {
				if out[i], errs[w] = dd.state(raws[i], purpose); errs[w] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return out, storeError(errors.Join(errs...), "read consent states")
}
