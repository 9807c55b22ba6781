package store

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/requests"
)

var _ requests.Store = (*Store)(nil)

// requestDoc is a shopper's request under "<merchant>/<id>": ids are
// time-ordered, so a merchant's requests are one _id range in the order
// received. subjectRequestDoc ("<merchant>/<subject>/<id>") lists a
// subject's, written first: an entry whose request is missing (a crash
// between the two writes) is skipped.
type requestDoc struct {
	ID          string     `bson:"_id"`
	MerchantID  string     `bson:"merchant_id"`
	SubjectID   string     `bson:"subject_id"`
	RequestID   string     `bson:"request_id"`
	Kind        string     `bson:"kind"`
	ReceivedAt  time.Time  `bson:"received_at"`
	DueAt       time.Time  `bson:"due_at"`
	Status      string     `bson:"status"`
	CompletedAt *time.Time `bson:"completed_at,omitempty"`
	Note        string     `bson:"note,omitempty"`
}

// subjectEntryDoc is one entry of a per-subject list (requests,
// receipts): "<merchant>/<subject>/<id>" and nothing else.
type subjectEntryDoc struct {
	ID string `bson:"_id"`
}

// maxSubjectEntries bounds a per-subject list.
const maxSubjectEntries = 1000

// subjectEntries returns the ids of a subject's entries in coll, in _id
// order: one range of _id.
func (s *Store) subjectEntries(ctx context.Context, coll, merchantID, subjectID string) ([]string, error) {
	prefix := id(merchantID, subjectID) + "/"
	cur, err := s.db.Collection(coll).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: prefix}, {Key: "$lt", Value: id(merchantID, subjectID) + "0"}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(maxSubjectEntries))
	if err != nil {
		return nil, storeError(err, "list %s", coll)
	}
	var docs []subjectEntryDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(err, "list %s", coll)
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID[len(prefix):]
	}
	return out, nil
}

// deleteSubjectEntries removes a subject's entries of coll: one range.
func (s *Store) deleteSubjectEntries(ctx context.Context, coll, merchantID, subjectID string) error {
	defer s.writing()()
	_, err := s.db.Collection(coll).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: id(merchantID, subjectID) + "/"}, {Key: "$lt", Value: id(merchantID, subjectID) + "0"}}}})
	return storeError(err, "delete %s", coll)
}

func (d requestDoc) request() requests.Request {
	r := requests.Request{ID: d.RequestID, MerchantID: d.MerchantID, SubjectID: d.SubjectID, Kind: requests.Kind(d.Kind),
		ReceivedAt: d.ReceivedAt.UTC(), DueAt: d.DueAt.UTC(), Status: requests.Status(d.Status), Note: d.Note}
	if d.CompletedAt != nil {
		r.CompletedAt = d.CompletedAt.UTC()
	}
	return r
}

// CreateRequest stores a new request, its subject's entry first.
func (s *Store) CreateRequest(ctx context.Context, r requests.Request) error {
	if err := s.insertOne(ctx, collSubjectRequests, subjectEntryDoc{ID: id(r.MerchantID, r.SubjectID, r.ID)}); err != nil {
		return storeError(err, "record the request")
	}
	d := requestDoc{ID: id(r.MerchantID, r.ID), MerchantID: r.MerchantID, SubjectID: r.SubjectID, RequestID: r.ID, Kind: string(r.Kind),
		ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, Status: string(r.Status)}
	return storeError(s.insertOne(ctx, collRequests, d), "record the request")
}

// Request returns one request: a point read.
func (s *Store) Request(ctx context.Context, merchantID, requestID string) (requests.Request, error) {
	return findOne(ctx, s, collRequests, id(merchantID, requestID), "request", requestDoc.request)
}

// Requests lists the merchant's requests after the cursor: one _id range.
func (s *Store) Requests(ctx context.Context, merchantID, after string, limit int) ([]requests.Request, error) {
	lo := id(merchantID, "")
	if after != "" {
		lo = id(merchantID, after)
	}
	return find(ctx, s, collRequests, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: lo}, {Key: "$lt", Value: merchantID + "0"}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)), "list requests", requestDoc.request)
}

// SubjectRequests lists the subject's requests: a range of their entries,
// then a point read each.
func (s *Store) SubjectRequests(ctx context.Context, merchantID, subjectID string) ([]requests.Request, error) {
	ids, err := s.subjectEntries(ctx, collSubjectRequests, merchantID, subjectID)
	if err != nil {
		return nil, err
	}
	var out []requests.Request
	for _, rid := range ids {
		r, err := s.Request(ctx, merchantID, rid)
		if apperr.Is(err, apperr.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// CompleteRequest marks an open request completed, the status checked in
// the update's filter.
func (s *Store) CompleteRequest(ctx context.Context, merchantID, requestID, note string, at time.Time) (requests.Request, error) {
	release := s.writing()
	res, err := s.db.Collection(collRequests).UpdateOne(ctx, bson.D{{Key: "_id", Value: id(merchantID, requestID)}, {Key: "status", Value: string(requests.Open)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: string(requests.Completed)}, {Key: "completed_at", Value: at}, {Key: "note", Value: note}}}})
	release()
	if err != nil {
		return requests.Request{}, storeError(err, "complete the request")
	}
	r, err := s.Request(ctx, merchantID, requestID)
	if err != nil {
		return requests.Request{}, err
	}
	if res.MatchedCount == 0 {
		return r, apperr.New(apperr.Conflict, "the request was completed already").WithDetail(requests.CodeAlreadyCompleted)
	}
	return r, nil
}
