package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/staff"
)

var _ staff.Store = (*Store)(nil)

// rosterDoc is a merchant's whole staff, one document under the merchant's
// id: every change is a compare-and-set on its version, so two owners
// acting at once on any instance never leave the merchant without one.
type rosterDoc struct {
	ID      string      `bson:"_id"`
	Version int64       `bson:"version"`
	Members []memberDoc `bson:"members"`
}

type memberDoc struct {
	MemberID     string    `bson:"member_id"`
	Email        string    `bson:"email"`
	Role         string    `bson:"role"`
	InvitedBy    string    `bson:"invited_by"`
	InvitedAt    time.Time `bson:"invited_at"`
	SignedInAt   time.Time `bson:"signed_in_at,omitempty"`
	RemovedAt    time.Time `bson:"removed_at,omitempty"`
	SessionsFrom time.Time `bson:"sessions_from"`
}

func (d memberDoc) member(merchantID string) staff.Member {
	return staff.Member{MerchantID: merchantID, ID: d.MemberID, Email: d.Email, Role: staff.Role(d.Role), InvitedBy: d.InvitedBy,
		InvitedAt: d.InvitedAt.UTC(), SignedInAt: utc(d.SignedInAt), RemovedAt: utc(d.RemovedAt), SessionsFrom: d.SessionsFrom.UTC()}
}

// Roster returns the merchant's staff: a point read; version 0 and no
// members when it has none.
func (s *Store) Roster(ctx context.Context, merchantID string) (staff.Roster, error) {
	var d rosterDoc
	err := s.db.Collection(collStaff).FindOne(ctx, bson.D{{Key: "_id", Value: merchantID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return staff.Roster{MerchantID: merchantID}, nil
	}
	if err != nil {
		return staff.Roster{}, storeError(err, "read staff")
	}
	r := staff.Roster{MerchantID: merchantID, Version: d.Version, Members: make([]staff.Member, len(d.Members))}
	for i, m := range d.Members {
		r.Members[i] = m.member(merchantID)
	}
	return r, nil
}

// SaveRoster stores r if the stored roster is still the version before
// r.Version (absent for version 1); false if another change came first.
func (s *Store) SaveRoster(ctx context.Context, r staff.Roster) (bool, error) {
	d := rosterDoc{ID: r.MerchantID, Version: r.Version, Members: make([]memberDoc, len(r.Members))}
	for i, m := range r.Members {
		d.Members[i] = memberDoc{MemberID: m.ID, Email: m.Email, Role: string(m.Role), InvitedBy: m.InvitedBy, InvitedAt: m.InvitedAt,
			SignedInAt: m.SignedInAt, RemovedAt: m.RemovedAt, SessionsFrom: m.SessionsFrom}
	}
	if r.Version == 1 {
		err := s.insertOne(ctx, collStaff, d)
		if mongo.IsDuplicateKeyError(err) {
			return false, nil
		}
		return err == nil, storeError(err, "save staff")
	}
	release := s.writing()
	res, err := s.db.Collection(collStaff).ReplaceOne(ctx, bson.D{{Key: "_id", Value: r.MerchantID}, {Key: "version", Value: r.Version - 1}}, d)
	release()
	s.noteWrite(err)
	if err != nil {
		return false, storeError(err, "save staff")
	}
	return res.MatchedCount == 1, nil
}

// auditDoc is one audit entry under "<merchant>/<entry id>": ids are
// time-ordered, so the log is one _id range read backwards.
type auditDoc struct {
	ID         string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	EntryID    string    `bson:"entry_id"`
	At         time.Time `bson:"at"`
	Actor      string    `bson:"actor"`
	Action     string    `bson:"action"`
	Target     string    `bson:"target,omitempty"`
	Detail     string    `bson:"detail,omitempty"`
}

func (d auditDoc) entry() staff.Entry {
	return staff.Entry{MerchantID: d.MerchantID, ID: d.EntryID, At: d.At.UTC(), Actor: d.Actor, Action: d.Action, Target: d.Target, Detail: d.Detail}
}

// AppendAudit inserts an entry; nothing updates or deletes them.
func (s *Store) AppendAudit(ctx context.Context, e staff.Entry) error {
	d := auditDoc{ID: id(e.MerchantID, e.ID), MerchantID: e.MerchantID, EntryID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail}
	return storeError(s.insertOne(ctx, collAudit, d), "record audit entry")
}

// Audit lists the merchant's entries newest first, older than before: one
// _id range walked backwards.
func (s *Store) Audit(ctx context.Context, merchantID, before string, limit int) ([]staff.Entry, error) {
	hi := merchantID + "0"
	if before != "" {
		hi = id(merchantID, before)
	}
	return find(ctx, s, collAudit, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: merchantID + "/"}, {Key: "$lt", Value: hi}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit)), "read audit log", auditDoc.entry)
}
