package store

import (
	"context"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Leases of jobs shared by instances (an announcement to send, a reward
// email) are taken with one insert of a lease document whose _id names
// the job and the state it was leased from (attempts and the previous
// lease's end). Of instances that read the same state, the insert lets
// exactly one through on every store. A conditional update would do on
// MongoDB, but FerretDB answers one with a read and then a write, so two
// instances can both match the same document and both send.

type leaseDoc struct {
	ID    string    `bson:"_id"`
	Owner string    `bson:"owner"`
	Until time.Time `bson:"until"`
}

// leaseKey names the lease of job taken from the state (attempts, the end
// of the lease before).
func leaseKey(job string, attempts int, prevUntil time.Time) string {
	return job + "|" + strconv.Itoa(attempts) + "|" + strconv.FormatInt(prevUntil.UnixMilli(), 10)
}

// takeLease takes job's lease from the state read (attempts, the end of
// the lease before) until until; false if another instance holds it. A
// lease taken by an instance that died before it marked the job leased
// has ended by now: the next one is taken from its end, by the same rule,
// so that claimers still agree on the key.
func (s *Store) takeLease(ctx context.Context, job string, attempts int, prevUntil time.Time, owner string, now, until time.Time) (bool, error) {
	for range 8 {
		key := leaseKey(job, attempts, prevUntil)
		err := s.insertOne(ctx, collLeases, leaseDoc{ID: key, Owner: owner, Until: until})
		if err == nil {
			return true, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return false, err
		}
		var held leaseDoc
		if err := s.db.Collection(collLeases).FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&held); err != nil {
			return false, err
		}
		if held.Until.After(now) {
			return false, nil
		}
		prevUntil = held.Until
	}
	return false, nil
}

// lease marks job (in coll) leased to owner until until, having taken the
// lease from the state read (attempts, the previous lease's end); false if
// another instance took it. On the embedded store the caller holds the
// job's casLock, which is lease enough.
func (s *Store) lease(ctx context.Context, coll, job string, attempts int, prevUntil time.Time, owner string, now, until time.Time) (bool, error) {
	if !s.local {
		if ok, err := s.takeLease(ctx, job, attempts, prevUntil, owner, now, until); err != nil || !ok {
			return false, err
		}
	}
	return s.updateByID(ctx, coll, job, bson.D{{Key: "$set", Value: bson.D{{Key: "lease_owner", Value: owner}, {Key: "lease_until", Value: until}}}})
}
