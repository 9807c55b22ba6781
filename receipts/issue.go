package receipts

import (
	"context"
	"slices"
	"time"

	"github.com/fineline/fineline/consent"
)

// Controller is the merchant a receipt names as responsible for the data.
type Controller struct {
	ID   string
	Name string
	// URL is the merchant's preference center.
	URL string
}

// Of is what a receipt is built from: a set of choices as the ledger
// recorded it.
type Of struct {
	Controller Controller
	// PolicyURL is the privacy notice in force; empty: the center's URL.
	PolicyURL string
	// Language is the language of the receipt's texts.
	Language string
	// Channel is where the choices were collected.
	Channel consent.Channel
	// Purposes are the merchant's purposes; the receipt states every one
	// the subject decided.
	Purposes []consent.Purpose
	// State is the subject's state after the choices.
	State consent.SubjectState
	// Changed are the decision events the choices appended.
	Changed []consent.Event
}

// collectionMethods say, per channel, how consent was collected.
var collectionMethods = map[consent.Channel]string{
	consent.ChannelCenter:      "web form: Fineline preference center",
	consent.ChannelWidget:      "web form: Fineline consent widget on the merchant's site",
	consent.ChannelAPI:         "recorded by the merchant through the Fineline API",
	consent.ChannelGPC:         "Global Privacy Control signal from the browser",
	consent.ChannelUnsubscribe: "one-click unsubscribe link in an email",
	consent.ChannelImport:      "imported by the merchant",
}

// Build makes the Kantara receipt of a set of choices. Its time is the
// ledger's: when the last decision was recorded.
func Build(jurisdiction string, of Of) Receipt {
	at := of.at()
	policy := of.PolicyURL
	if policy == "" {
		policy = of.Controller.URL
	}
	method := collectionMethods[of.Channel]
	if method == "" {
		method = "web form"
	}
	r := Receipt{
		Jurisdiction: jurisdiction, ConsentTimestamp: at.Unix(), CollectionMethod: method,
		ConsentReceiptID: NewID(), Language: of.Language, PIIPrincipalID: of.State.SubjectID,
		PIIControllers: []PIIController{{PIIController: of.Controller.Name, Contact: "Privacy team", PIIControllerURL: of.Controller.URL}},
		PolicyURL:      policy, Services: []Service{}, SPICat: []string{},
		Fineline: Extension{Merchant: of.Controller.ID},
	}
	var granted []Purpose
	for _, p := range of.Purposes {
		st, ok := of.State.Purposes[p.Key]
		if !ok {
			continue
		}
		r.Fineline.States = append(r.Fineline.States, PurposeState{Purpose: p.Key, State: string(st.State), Seq: st.Seq, NoticeVersion: st.NoticeVersion, Channel: string(st.Channel), At: st.At.Unix()})
		if st.State != consent.Granted {
			continue
		}
		t := p.TextFor(of.Language)
		rp := Purpose{Purpose: t.Name + ": " + t.Statement, PurposeCategory: []string{p.Key}, ConsentType: "EXPLICIT",
			PIICategory: p.DataCategories, Termination: "until withdrawn in the preference center", ThirdPartyDisclosure: p.SaleOrShare}
		if p.SaleOrShare {
			rp.ThirdPartyName = "partners named in the privacy notice"
		}
		granted = append(granted, rp)
		if p.Sensitive {
			for _, cat := range p.DataCategories {
				if slices.Contains(consent.SensitiveCategories(), cat) && !slices.Contains(r.SPICat, cat) {
					r.SPICat = append(r.SPICat, cat)
				}
			}
		}
	}
	if len(granted) > 0 {
		r.Services = []Service{{Service: of.Controller.Name, Purposes: granted}}
	}
	r.Sensitive = len(r.SPICat) > 0
	r.Fineline.PrivacyLevel = string(of.State.PrivacyLevel())
	return r
}

// at is when the choices were recorded: the ledger's time of the last
// decision, else of the state.
func (of Of) at() time.Time {
	at := of.State.UpdatedAt
	for _, e := range of.Changed {
		if e.RecordedAt.After(at) || at.IsZero() {
			at = e.RecordedAt
		}
	}
	return at
}

// Changes lists what the decision events changed, for the receipt's page.
func Changes(events []consent.Event) []Change {
	out := make([]Change, 0, len(events))
	for _, e := range events {
		if e.Field == "" {
			out = append(out, Change{Purpose: e.Purpose, State: string(e.State), Level: string(e.Level)})
		}
	}
	return out
}

// Issuer builds, signs and keeps receipts: the one place a receipt is made.
type Issuer struct {
	Signer *Signer
	Store  Store
	// Jurisdiction goes in every receipt (e.g. "EU").
	Jurisdiction string
}

// Issue signs the receipt of a set of choices and keeps it for its subject.
func (i *Issuer) Issue(ctx context.Context, of Of) (Issued, error) {
	r := Build(i.Jurisdiction, of)
	tok, err := i.Signer.Sign(r)
	if err != nil {
		return Issued{}, err
	}
	issued := Issued{ID: r.ConsentReceiptID, MerchantID: of.Controller.ID, SubjectID: of.State.SubjectID, Token: tok,
		CreatedAt: of.at().UTC(), Changes: Changes(of.Changed)}
	if err := i.Store.SaveReceipt(ctx, issued); err != nil {
		return Issued{}, err
	}
	return issued, nil
}
