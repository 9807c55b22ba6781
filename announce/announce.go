// Package announce tells shoppers about material changes to a merchant's
// notice: one email per affected subject and version, in the subject's
// language, with a link that signs them straight into the review page.
//
// Publishing queues a campaign; a background worker builds it (one item per
// affected subject, under a unique key) and delivers it at a set pace.
// Items are claimed with a lease, so two instances can run the worker at
// once and a worker that dies mid-way leaves its items to the other once
// the lease runs out. A worker asked to stop finishes the item it is
// sending, so a stop never sends twice; only a kill between a send and its
// bookkeeping can.
package announce

import (
	"context"
	"time"
)

// State of one announcement.
type State string

// Announcement states.
const (
	Queued State = "queued"
	Sent   State = "sent"
	Failed State = "failed"
)

// Campaign is the announcement of one version to everyone it affects.
type Campaign struct {
	MerchantID string
	Version    int
	// Built is set once every affected subject has an item.
	Built     bool
	CreatedAt time.Time
}

// Item is the announcement to one subject.
type Item struct {
	MerchantID string
	Version    int
	SubjectID  string
	State      State
	Attempts   int
	NextAt     time.Time
	LeaseOwner string
	LeaseUntil time.Time
	Reason     string // why it failed, for Failed
	SentAt     time.Time
}

// Progress counts a campaign's items by state.
type Progress struct {
	Built                         bool
	Queued, Sent, Failed, Skipped int
	// Failures are the failed items (at most MaxFailures), with why.
	Failures []Failure
}

// MaxFailures bounds the failures Progress lists.
const MaxFailures = 100

// Failure is a subject the announcement could not reach.
type Failure struct {
	SubjectID string
	Attempts  int
	Reason    string
}

// Store persists campaigns and items.
type Store interface {
	// CreateCampaign stores a campaign unless one exists for the version.
	CreateCampaign(ctx context.Context, c Campaign) error
	// Campaign returns one; NotFound if absent.
	Campaign(ctx context.Context, merchantID string, version int) (Campaign, error)
	// UnbuiltCampaigns lists campaigns still being built.
	UnbuiltCampaigns(ctx context.Context) ([]Campaign, error)
	// MarkBuilt records that every item of the campaign exists.
	MarkBuilt(ctx context.Context, merchantID string, version int) error
	// AddItems stores queued items, each unless the subject has one for the
	// version already.
	AddItems(ctx context.Context, items []Item) error
	// DueItems lists up to limit queued items due at now and not leased.
	DueItems(ctx context.Context, now time.Time, limit int) ([]Item, error)
	// ClaimItem leases a queued item to owner until until, atomically:
	// false if it is not queued or another lease is still running.
	ClaimItem(ctx context.Context, it Item, owner string, now, until time.Time) (bool, error)
	// FinishItem stores the item's new state and drops the lease.
	FinishItem(ctx context.Context, it Item) error
	// Progress counts a campaign's items.
	Progress(ctx context.Context, merchantID string, version int) (Progress, error)
}
