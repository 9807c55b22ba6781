package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
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
}

func toExportDoc(e exports.Export) exportDoc {
	return exportDoc{ID: id(e.MerchantID, e.ID), MerchantID: e.MerchantID, ExportID: e.ID, Purpose: e.Purpose, Format: string(e.Format),
		Include: string(e.Include), Status: string(e.Status), Rows: e.Rows, Chunks: e.Chunks, Cursor: e.Cursor, Error: e.Error,
		CreatedAt: e.CreatedAt, FinishedAt: e.FinishedAt}
}

func (d exportDoc) export() exports.Export {
	return exports.Export{MerchantID: d.MerchantID, ID: d.ExportID, Purpose: d.Purpose, Format: exports.Format(d.Format), Include: exports.Include(d.Include),
		Status: exports.Status(d.Status), Rows: d.Rows, Chunks: d.Chunks, Cursor: d.Cursor, Error: d.Error, CreatedAt: d.CreatedAt.UTC(), FinishedAt: utc(d.FinishedAt)}
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
func (s *Store) MerchantStates(ctx context.Context, merchantID, after string, limit int) ([]consent.SubjectState, error) {
	lo, hi := id(merchantID, after), merchantID+"0" // '0' follows '/'
	if s.fileReads() {
		return s.statesRangeFromFile(ctx, lo, hi, limit)
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
	}
	return out, nil
}

func (s *Store) statesRangeFromFile(ctx context.Context, lo, hi string, limit int) ([]consent.SubjectState, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return nil, storeError(err, "read consent states")
	}
	q, err := r.stmt(ctx, collRecords, `SELECT `+stateColumns+` FROM %q
		WHERE _ferretdb_sjson->'$._id' > ? AND _ferretdb_sjson->'$._id' < ? ORDER BY _ferretdb_sjson->'$._id' LIMIT ?`)
	if err != nil {
		return nil, storeError(err, "read consent states")
	}
	rows, err := q.QueryContext(ctx, quotedID(lo), quotedID(hi), limit)
	if err != nil {
		return nil, storeError(err, "read consent states")
	}
	defer rows.Close()
	out := make([]consent.SubjectState, 0, limit)
	for rows.Next() {
		st, err := scanState(rows)
		if err != nil {
			return nil, storeError(err, "read consent states")
		}
		s.embedded.reads.Add(1)
		out = append(out, st)
	}
	return out, storeError(rows.Err(), "read consent states")
}
