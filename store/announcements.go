package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/announce"
)

var _ announce.Store = (*Store)(nil)

type campaignDoc struct {
	ID         string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	Version    int       `bson:"version"`
	Built      bool      `bson:"built"`
	CreatedAt  time.Time `bson:"created_at"`
}

func campaignID(merchantID string, version int) string {
	return id(merchantID, fmt.Sprintf("%06d", version))
}

// itemDoc is one announcement, the truth about it. A copy of its key sits
// in the queue collection while it is pending, so finding due work never
// reads the finished ones.
type itemDoc struct {
	ID         string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	Version    int       `bson:"version"`
	SubjectID  string    `bson:"subject_id"`
	State      string    `bson:"state"`
	Attempts   int       `bson:"attempts"`
	NextAt     time.Time `bson:"next_at"`
	LeaseOwner string    `bson:"lease_owner"`
	LeaseUntil time.Time `bson:"lease_until"`
	Reason     string    `bson:"reason,omitempty"`
	SentAt     time.Time `bson:"sent_at,omitempty"`
}

func itemID(merchantID string, version int, subjectID string) string {
	return id(merchantID, fmt.Sprintf("%06d", version), subjectID)
}

func toItemDoc(it announce.Item) itemDoc {
	return itemDoc{ID: itemID(it.MerchantID, it.Version, it.SubjectID), MerchantID: it.MerchantID, Version: it.Version, SubjectID: it.SubjectID,
		State: string(it.State), Attempts: it.Attempts, NextAt: it.NextAt, LeaseOwner: it.LeaseOwner, LeaseUntil: it.LeaseUntil, Reason: it.Reason, SentAt: it.SentAt}
}

func (d itemDoc) item() announce.Item {
	return announce.Item{MerchantID: d.MerchantID, Version: d.Version, SubjectID: d.SubjectID, State: announce.State(d.State), Attempts: d.Attempts,
		NextAt: d.NextAt.UTC(), LeaseOwner: d.LeaseOwner, LeaseUntil: d.LeaseUntil.UTC(), Reason: d.Reason, SentAt: d.SentAt.UTC()}
}

type queueDoc struct {
	ID     string    `bson:"_id"`
	NextAt time.Time `bson:"next_at"`
}

// CreateCampaign stores a campaign unless the version has one.
func (s *Store) CreateCampaign(ctx context.Context, c announce.Campaign) error {
	err := s.insertOne(ctx, collCampaigns, campaignDoc{ID: campaignID(c.MerchantID, c.Version), MerchantID: c.MerchantID, Version: c.Version, CreatedAt: c.CreatedAt})
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return storeError(err, "create campaign")
}

func (d campaignDoc) campaign() announce.Campaign {
	return announce.Campaign{MerchantID: d.MerchantID, Version: d.Version, Built: d.Built, CreatedAt: d.CreatedAt.UTC()}
}

// Campaign returns one campaign: a point read.
func (s *Store) Campaign(ctx context.Context, merchantID string, version int) (announce.Campaign, error) {
	return findOne(ctx, s, collCampaigns, campaignID(merchantID, version), "announcement", campaignDoc.campaign)
}

// UnbuiltCampaigns lists campaigns still being built.
func (s *Store) UnbuiltCampaigns(ctx context.Context) ([]announce.Campaign, error) {
	cur, err := s.db.Collection(collCampaigns).Find(ctx, bson.D{{Key: "built", Value: false}})
	if err != nil {
		return nil, storeError(err, "list campaigns")
	}
	var docs []campaignDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(err, "list campaigns")
	}
	out := make([]announce.Campaign, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.campaign())
	}
	return out, nil
}

// MarkBuilt records that every item of the campaign exists.
func (s *Store) MarkBuilt(ctx context.Context, merchantID string, version int) error {
	_, err := s.updateByID(ctx, collCampaigns, campaignID(merchantID, version), bson.D{{Key: "$set", Value: bson.D{{Key: "built", Value: true}}}})
	return storeError(err, "mark campaign built")
}

// AddItems stores queued items, once per subject and version, and puts
// them in the queue, in bulk (one unordered insert of items, one of queue
// entries). An item that exists already is queued again only while it is
// still queued: after a crash between the two inserts, a rebuild queues it.
func (s *Store) AddItems(ctx context.Context, items []announce.Item) error {
	if len(items) == 0 {
		return nil
	}
	docs := make([]any, len(items))
	for i, it := range items {
		docs[i] = toItemDoc(it)
	}
	unlock := s.writing()
	_, err := s.db.Collection(collItems).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	unlock()
	existing := map[int]bool{}
	var bwe mongo.BulkWriteException
	switch {
	case err == nil:
	case errors.As(err, &bwe) && bwe.WriteConcernError == nil:
		for _, we := range bwe.WriteErrors {
			if we.Code != 11000 {
				return storeError(we, "add announcements")
			}
			existing[we.Index] = true
		}
	default:
		return storeError(err, "add announcements")
	}
	queue := make([]any, 0, len(items))
	for i := range items {
		d := docs[i].(itemDoc)
		if existing[i] {
			var cur itemDoc
			if err := s.db.Collection(collItems).FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}).Decode(&cur); err != nil {
				return storeError(err, "read announcement")
			}
			if cur.State != string(announce.Queued) {
				continue
			}
			d = cur
		}
		queue = append(queue, queueDoc{ID: d.ID, NextAt: d.NextAt})
	}
	unlock = s.writing()
	_, err = s.db.Collection(collQueue).InsertMany(ctx, queue, options.InsertMany().SetOrdered(false))
	unlock()
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
		for _, we := range bwe.WriteErrors {
			if we.Code != 11000 {
				return storeError(we, "queue announcements")
			}
		}
		return nil
	}
	return storeError(err, "queue announcements")
}

// DueItems lists up to limit pending items due at now and not leased.
func (s *Store) DueItems(ctx context.Context, now time.Time, limit int) ([]announce.Item, error) {
	cur, err := s.db.Collection(collQueue).Find(ctx, bson.D{{Key: "next_at", Value: bson.D{{Key: "$lte", Value: now}}}},
		options.Find().SetSort(bson.D{{Key: "next_at", Value: 1}}).SetLimit(int64(4*limit)))
	if err != nil {
		return nil, storeError(err, "list due announcements")
	}
	var queue []queueDoc
	if err := cur.All(ctx, &queue); err != nil {
		return nil, storeError(err, "list due announcements")
	}
	var out []announce.Item
	for _, q := range queue {
		var d itemDoc
		err := s.db.Collection(collItems).FindOne(ctx, bson.D{{Key: "_id", Value: q.ID}}).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && d.State != string(announce.Queued)) {
			// Finished by a worker that died before leaving the queue.
			if _, err := s.deleteByID(ctx, collQueue, q.ID); err != nil {
				return nil, storeError(err, "clean announcement queue")
			}
			continue
		}
		if err != nil {
			return nil, storeError(err, "read announcement")
		}
		if d.LeaseUntil.After(now) {
			continue
		}
		out = append(out, d.item())
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// ClaimItem leases a queued item to owner: the item is read and, if it is
// due and not leased, the lease taken from that state (see leases.go); on
// the embedded store, under an in-process lock (one process owns it).
func (s *Store) ClaimItem(ctx context.Context, it announce.Item, owner string, now, until time.Time) (bool, error) {
	iid := itemID(it.MerchantID, it.Version, it.SubjectID)
	if s.local {
		defer s.casLock(iid)()
	}
	var d itemDoc
	if err := s.db.Collection(collItems).FindOne(ctx, bson.D{{Key: "_id", Value: iid}}).Decode(&d); err != nil {
		return false, notFound(err, "announcement")
	}
	if d.State != string(announce.Queued) || d.LeaseUntil.After(now) || d.NextAt.After(now) || d.Attempts != it.Attempts {
		return false, nil
	}
	ok, err := s.lease(ctx, collItems, iid, d.Attempts, d.LeaseUntil, owner, now, until)
	return ok, storeError(err, "claim announcement")
}

// FinishItem stores the item's new state; a finished item leaves the
// queue, a retried one moves in it.
func (s *Store) FinishItem(ctx context.Context, it announce.Item) error {
	d := toItemDoc(it)
	if err := s.replaceByID(ctx, collItems, d.ID, d); err != nil {
		return storeError(err, "finish announcement")
	}
	if it.State == announce.Queued {
		return storeError(s.replaceByID(ctx, collQueue, d.ID, queueDoc{ID: d.ID, NextAt: d.NextAt}), "requeue announcement")
	}
	_, err := s.deleteByID(ctx, collQueue, d.ID)
	return storeError(err, "dequeue announcement")
}

// Progress counts a campaign's items by state.
func (s *Store) Progress(ctx context.Context, merchantID string, version int) (announce.Progress, error) {
	c, err := s.Campaign(ctx, merchantID, version)
	if err != nil {
		return announce.Progress{}, err
	}
	cur, err := s.db.Collection(collItems).Find(ctx, bson.D{{Key: "merchant_id", Value: merchantID}, {Key: "version", Value: version}},
		options.Find().SetProjection(bson.D{{Key: "state", Value: 1}, {Key: "subject_id", Value: 1}, {Key: "attempts", Value: 1}, {Key: "reason", Value: 1}}))
	if err != nil {
		return announce.Progress{}, storeError(err, "count announcements")
	}
	var docs []struct {
		State     string `bson:"state"`
		SubjectID string `bson:"subject_id"`
		Attempts  int    `bson:"attempts"`
		Reason    string `bson:"reason"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return announce.Progress{}, storeError(err, "count announcements")
	}
	p := announce.Progress{Built: c.Built}
	for _, d := range docs {
		switch announce.State(d.State) {
		case announce.Queued:
			p.Queued++
		case announce.Sent:
			p.Sent++
		case announce.Failed:
			p.Failed++
			if len(p.Failures) < announce.MaxFailures {
				p.Failures = append(p.Failures, announce.Failure{SubjectID: d.SubjectID, Attempts: d.Attempts, Reason: d.Reason})
			}
		default:
			p.Skipped++
		}
	}
	return p, nil
}
