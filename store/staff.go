package store

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/staff"
)

var _ staff.Store = (*Store)(nil)

// memberDoc is a staff member under "<merchant>/<member id>": a merchant's
// staff is one _id range.
type memberDoc struct {
	ID           string    `bson:"_id"`
	MerchantID   string    `bson:"merchant_id"`
	MemberID     string    `bson:"member_id"`
	Email        string    `bson:"email"`
	Role         string    `bson:"role"`
	InvitedBy    string    `bson:"invited_by"`
	InvitedAt    time.Time `bson:"invited_at"`
	SignedInAt   time.Time `bson:"signed_in_at,omitempty"`
	RemovedAt    time.Time `bson:"removed_at,omitempty"`
	SessionsFrom time.Time `bson:"sessions_from"`
}

func (d memberDoc) member() staff.Member {
	return staff.Member{MerchantID: d.MerchantID, ID: d.MemberID, Email: d.Email, Role: staff.Role(d.Role), InvitedBy: d.InvitedBy,
		InvitedAt: d.InvitedAt.UTC(), SignedInAt: utc(d.SignedInAt), RemovedAt: utc(d.RemovedAt), SessionsFrom: d.SessionsFrom.UTC()}
}

// PutMember inserts or replaces a staff member.
func (s *Store) PutMember(ctx context.Context, m staff.Member) error {
	d := memberDoc{ID: id(m.MerchantID, m.ID), MerchantID: m.MerchantID, MemberID: m.ID, Email: m.Email, Role: string(m.Role), InvitedBy: m.InvitedBy,
		InvitedAt: m.InvitedAt, SignedInAt: m.SignedInAt, RemovedAt: m.RemovedAt, SessionsFrom: m.SessionsFrom}
	return storeError(s.replaceByID(ctx, collStaff, d.ID, d), "save staff member")
}

// Member returns one staff member: a point read.
func (s *Store) Member(ctx context.Context, merchantID, memberID string) (staff.Member, error) {
	return findOne(ctx, s, collStaff, id(merchantID, memberID), "staff member", memberDoc.member)
}

// Members lists the merchant's staff: one _id range.
func (s *Store) Members(ctx context.Context, merchantID string, limit int) ([]staff.Member, error) {
	cur, err := s.db.Collection(collStaff).Find(ctx, merchantRange(merchantID, ""), options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, storeError(err, "list staff")
	}
	var docs []memberDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(err, "list staff")
	}
	out := make([]staff.Member, len(docs))
	for i, d := range docs {
		out[i] = d.member()
	}
	return out, nil
}

// merchantRange is the _id range of a merchant's documents under
// "<merchant>/…", above after when it is set.
func merchantRange(merchantID, after string) bson.D {
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: id(merchantID, after)}, {Key: "$lt", Value: merchantID + "0"}}}}
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
	cur, err := s.db.Collection(collAudit).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: merchantID + "/"}, {Key: "$lt", Value: hi}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, storeError(err, "read audit log")
	}
	var docs []auditDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(err, "read audit log")
	}
	out := make([]staff.Entry, len(docs))
	for i, d := range docs {
		out[i] = d.entry()
	}
	return out, nil
}
