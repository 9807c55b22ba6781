package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Every process that writes the ledger owns a slot: a small number that
// names its journal (see journal.go), so that positions are allocated in
// memory without ever contending with another instance. On the embedded
// store the one process owns slot 0. On MongoDB an instance claims the
// lowest slot nobody holds, with a unique insert of the slot's next epoch
// (the only operation the embedded and FerretDB stores make atomic across
// processes), and keeps it with a lease it renews; a slot whose lease ran
// out is taken over by the next instance that starts, which first finishes
// what its journal lists (consent.Ledger.Recover).

const (
	// MaxSlots bounds the slots, so that a merchant's cursor and following
	// every journal stay small.
	MaxSlots = 64
	// slotLease is how long a claim holds without renewal.
	slotLease = 10 * time.Second
	// slotRenew is how often the owner renews it.
	slotRenew = 2 * time.Second
)

type slotHeadDoc struct {
	ID    string    `bson:"_id"`
	Slot  int       `bson:"slot"`
	Epoch int       `bson:"epoch"`
	Owner string    `bson:"owner"`
	Until time.Time `bson:"until"`
}

type slotClaimDoc struct {
	ID    string    `bson:"_id"`
	Owner string    `bson:"owner"`
	At    time.Time `bson:"at"`
}

func slotHeadID(k int) string             { return fmt.Sprintf("%02d", k) }
func slotClaimID(k int, epoch int) string { return fmt.Sprintf("%02d/%06d", k, epoch) }

// slotOwner is this process's claim.
type slotOwner struct {
	slot, epoch int
	owner       string
	// takenOver is true when the slot had an earlier owner whose lease ran out.
	takenOver bool
	lost      atomic.Bool
	stop      chan struct{}
	done      chan struct{}
}

func randomOwner() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Store) slotHead(ctx context.Context, k int) (slotHeadDoc, bool, error) {
	var d slotHeadDoc
	err := s.db.Collection(collSlots).FindOne(ctx, bson.D{{Key: "_id", Value: slotHeadID(k)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, false, nil
	}
	return d, err == nil, storeError(err, "read a ledger slot")
}

// claimSlot takes the lowest slot nobody holds.
func (s *Store) claimSlot(ctx context.Context, log *slog.Logger) (*slotOwner, error) {
	owner := randomOwner()
	for k := range MaxSlots {
		head, found, err := s.slotHead(ctx, k)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		if found && head.Until.After(now) {
			continue // held
		}
		// The last claim may be younger than its head (an instance that
		// claimed and has not written the head yet): leave it alone.
		last, err := denseTail(func(e int64) (bool, error) {
			err := s.db.Collection(collSlots).FindOne(ctx, bson.D{{Key: "_id", Value: slotClaimID(k, int(e))}}).Err()
			if errors.Is(err, mongo.ErrNoDocuments) {
				return false, nil
			}
			return err == nil, storeError(err, "read a ledger slot claim")
		})
		if err != nil {
			return nil, err
		}
		if int(last) > head.Epoch {
			var c slotClaimDoc
			if err := s.db.Collection(collSlots).FindOne(ctx, bson.D{{Key: "_id", Value: slotClaimID(k, int(last))}}).Decode(&c); err == nil && now.Sub(c.At) < slotLease {
				continue
			}
		}
		epoch := int(last) + 1
		err = s.insertOne(ctx, collSlots, slotClaimDoc{ID: slotClaimID(k, epoch), Owner: owner, At: now.UTC()})
		if mongo.IsDuplicateKeyError(err) {
			continue // another instance took it at the same moment
		}
		if err != nil {
			return nil, storeError(err, "claim a ledger slot")
		}
		o := &slotOwner{slot: k, epoch: epoch, owner: owner, takenOver: last > 0, stop: make(chan struct{}), done: make(chan struct{})}
		if err := s.renewSlot(ctx, o); err != nil {
			return nil, err
		}
		go s.keepSlot(o, log)
		return o, nil
	}
	return nil, fmt.Errorf("all %d ledger slots are held by running instances", MaxSlots)
}

// renewSlot extends the claim, unless a later epoch took the slot.
func (s *Store) renewSlot(ctx context.Context, o *slotOwner) error {
	head, found, err := s.slotHead(ctx, o.slot)
	if err != nil {
		return err
	}
	if found && head.Epoch > o.epoch {
		o.lost.Store(true)
		return errSlotLost
	}
	d := slotHeadDoc{ID: slotHeadID(o.slot), Slot: o.slot, Epoch: o.epoch, Owner: o.owner, Until: time.Now().Add(slotLease).UTC()}
	return storeError(s.replaceByID(ctx, collSlots, d.ID, d), "renew a ledger slot")
}

func (s *Store) keepSlot(o *slotOwner, log *slog.Logger) {
	defer close(o.done)
	t := time.NewTicker(slotRenew)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), slotRenew)
		err := s.renewSlot(ctx, o)
		cancel()
		if errors.Is(err, errSlotLost) {
			log.Error("this instance's ledger slot was taken over by another instance; writes are refused until it restarts", "slot", o.slot)
			return
		}
		if err != nil {
			log.Warn("ledger slot not renewed; retrying", "slot", o.slot, "err", err)
		}
	}
}

// releaseSlot ends the claim at a clean stop, so the next instance can
// take the slot at once.
func (s *Store) releaseSlot(ctx context.Context, o *slotOwner) {
	close(o.stop)
	<-o.done
	if o.lost.Load() {
		return
	}
	d := slotHeadDoc{ID: slotHeadID(o.slot), Slot: o.slot, Epoch: o.epoch, Owner: o.owner, Until: time.Now().Add(-time.Second).UTC()}
	_ = s.replaceByID(ctx, collSlots, d.ID, d)
}

// slotLost reports whether another instance took this one's slot.
func (s *Store) slotLost() bool { return s.owner != nil && s.owner.lost.Load() }

// Slot returns the journal slot this process writes.
func (s *Store) Slot() int { return s.slot }

// AtomicBatches reports whether a batch is one transaction: on the
// embedded store, where it is written into the file at once.
func (s *Store) AtomicBatches() bool { return s.local }

// SlotTakenOver reports whether this process took its slot over from an
// instance whose lease ran out: the journal it left must be finished.
func (s *Store) SlotTakenOver() bool { return s.owner != nil && s.owner.takenOver }

// Slots lists the slots that have ever been claimed (their journals may
// hold entries to follow), this process's among them.
func (s *Store) Slots(ctx context.Context) ([]int, error) {
	if s.local {
		return []int{0}, nil
	}
	var out []int
	for k := range MaxSlots {
		_, found, err := s.slotHead(ctx, k)
		if err != nil {
			return nil, err
		}
		if !found {
			break // slots are claimed lowest first
		}
		out = append(out, k)
	}
	return out, nil
}
