package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fineline/fineline/recipients"
)

var _ recipients.Store = (*Store)(nil)

type recipientDoc struct {
	Name     string   `bson:"name"`
	Role     string   `bson:"role"`
	Purposes []string `bson:"purposes"`
	Country  string   `bson:"country,omitempty"`
}

// recipientsDoc is a merchant's whole list, one document under the
// merchant's id, replaced whole.
type recipientsDoc struct {
	ID         string         `bson:"_id"`
	Recipients []recipientDoc `bson:"recipients"`
	UpdatedAt  time.Time      `bson:"updated_at"`
}

// PutRecipients replaces the merchant's list of recipients.
func (s *Store) PutRecipients(ctx context.Context, l recipients.List) error {
	d := recipientsDoc{ID: l.MerchantID, Recipients: make([]recipientDoc, 0, len(l.Recipients)), UpdatedAt: l.UpdatedAt}
	for _, r := range l.Recipients {
		d.Recipients = append(d.Recipients, recipientDoc{Name: r.Name, Role: string(r.Role), Purposes: r.Purposes, Country: r.Country})
	}
	return storeError(s.replaceByID(ctx, collRecipients, d.ID, d), "save recipients")
}

// Recipients returns the merchant's list of recipients, empty when it
// never declared any.
func (s *Store) Recipients(ctx context.Context, merchantID string) (recipients.List, error) {
	var d recipientsDoc
	err := s.db.Collection(collRecipients).FindOne(ctx, bson.D{{Key: "_id", Value: merchantID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return recipients.List{MerchantID: merchantID, Recipients: []recipients.Recipient{}}, nil
	}
	if err != nil {
		return recipients.List{}, storeError(err, "read recipients")
	}
	l := recipients.List{MerchantID: merchantID, Recipients: make([]recipients.Recipient, 0, len(d.Recipients)), UpdatedAt: d.UpdatedAt.UTC()}
	for _, r := range d.Recipients {
		purposes := r.Purposes
		if purposes == nil {
			purposes = []string{}
		}
		l.Recipients = append(l.Recipients, recipients.Recipient{Name: r.Name, Role: recipients.Role(r.Role), Purposes: purposes, Country: r.Country})
	}
	return l, nil
}
