package receipts

import (
	"context"
	"time"
)

// Issued is a receipt as kept for its subject: the signed token, and what
// the save that produced it changed.
type Issued struct {
	ID         string
	MerchantID string
	SubjectID  string
	Token      string
	CreatedAt  time.Time
	Changes    []Change
}

// Change is one purpose a save switched, or (Level set, Purpose empty)
// the privacy level it chose.
type Change struct {
	Purpose string
	State   string
	Level   string
}

// Store keeps issued receipts.
type Store interface {
	// SaveReceipt stores an issued receipt.
	SaveReceipt(ctx context.Context, r Issued) error
	// Receipt returns one receipt; NotFound if absent.
	Receipt(ctx context.Context, id string) (Issued, error)
	// SubjectReceipts lists a subject's receipts, oldest first.
	SubjectReceipts(ctx context.Context, merchantID, subjectID string) ([]Issued, error)
}
