package receipts

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fineline/fineline/apperr"
)

// Version is the Kantara specification version every receipt carries; Sign
// sets it.
const Version = "KI-CR-v1.1.0"

// ErrInvalidReceipt marks a receipt that lacks a required field or is
// inconsistent (see [Receipt.Validate]).
var ErrInvalidReceipt = errors.New("receipts: invalid receipt")

// Receipt is a consent receipt with the fields of Kantara CR v1.1, under the
// JSON names the specification gives them.
type Receipt struct {
	// Version is the specification version; Sign sets it to [Version].
	Version string `json:"version"`
	// Jurisdiction is where the controller is located or the law that
	// applies, e.g. "EU" or "US-CA".
	Jurisdiction string `json:"jurisdiction"`
	// ConsentTimestamp is when consent was given, in seconds since the epoch.
	ConsentTimestamp int64 `json:"consentTimestamp"`
	// CollectionMethod says how consent was collected, e.g. "web form".
	CollectionMethod string `json:"collectionMethod"`
	// ConsentReceiptID identifies the receipt (see [NewID]); it is also the
	// token's jti.
	ConsentReceiptID string `json:"consentReceiptID"`
	// PublicKey is the principal's public key, if any.
	PublicKey string `json:"publicKey,omitempty"`
	// Language is the language of the receipt's texts (ISO 639-1).
	Language string `json:"language,omitempty"`
	// PIIPrincipalID identifies the person the receipt is for; it is also
	// the token's sub.
	PIIPrincipalID string `json:"piiPrincipalId"`
	// PIIControllers are the organisations responsible for the data.
	PIIControllers []PIIController `json:"piiControllers"`
	// PolicyURL is the absolute http(s) URL of the privacy policy.
	PolicyURL string `json:"policyUrl"`
	// Services are what the data is collected for; each lists the purposes
	// consented to.
	Services []Service `json:"services"`
	// Sensitive is true exactly when SPICat is not empty.
	Sensitive bool `json:"sensitive"`
	// SPICat lists the sensitive data categories involved; always an array
	// in the token, never null.
	SPICat []string `json:"spiCat"`
	// Fineline carries what the Kantara fields cannot say: the merchant and
	// the state of every purpose, including denied and withdrawn ones.
	Fineline Extension `json:"fineline,omitzero"`
}

// PIIController is an organisation responsible for personal data.
type PIIController struct {
	// PIIController is the organisation's name.
	PIIController string `json:"piiController"`
	// OnBehalf is true when the controller acts on behalf of another.
	OnBehalf bool `json:"onBehalf,omitempty"`
	// Contact is the person or role to contact.
	Contact string `json:"contact"`
	// Address is the controller's postal address.
	Address Address `json:"address,omitzero"`
	// Email is the contact's email address.
	Email string `json:"email,omitempty"`
	// Phone is the contact's phone number.
	Phone string `json:"phone,omitempty"`
	// PIIControllerURL is the controller's web site.
	PIIControllerURL string `json:"piiControllerUrl,omitempty"`
}

// Address is a postal address, with schema.org PostalAddress names.
type Address struct {
	// StreetAddress is the street and number.
	StreetAddress string `json:"streetAddress,omitempty"`
	// Locality is the town or city.
	Locality string `json:"addressLocality,omitempty"`
	// Region is the state or province.
	Region string `json:"addressRegion,omitempty"`
	// PostalCode is the postal code.
	PostalCode string `json:"postalCode,omitempty"`
	// Country is the ISO 3166-1 alpha-2 country code.
	Country string `json:"addressCountry,omitempty"`
}

// Service is something the data is collected for, with the purposes
// consented to under it.
type Service struct {
	// Service is the service's name.
	Service string `json:"service"`
	// Purposes are the purposes consented to.
	Purposes []Purpose `json:"purposes"`
}

// Purpose is one purpose consented to.
type Purpose struct {
	// Purpose is a short description of the purpose.
	Purpose string `json:"purpose"`
	// PurposeCategory lists the purpose's categories.
	PurposeCategory []string `json:"purposeCategory"`
	// ConsentType is how consent was given, e.g. "EXPLICIT".
	ConsentType string `json:"consentType"`
	// PIICategory lists the categories of data used for the purpose.
	PIICategory []string `json:"piiCategory"`
	// PrimaryPurpose is true when the purpose is the reason for the service.
	PrimaryPurpose bool `json:"primaryPurpose"`
	// Termination says when or how the consent ends.
	Termination string `json:"termination"`
	// ThirdPartyDisclosure is true when data is disclosed to a third party.
	ThirdPartyDisclosure bool `json:"thirdPartyDisclosure"`
	// ThirdPartyName names the third party; required when disclosed.
	ThirdPartyName string `json:"thirdPartyName,omitempty"`
}

// MarshalJSON writes absent category lists as [] rather than null.
func (p Purpose) MarshalJSON() ([]byte, error) {
	type plain Purpose // no methods, so no recursion
	q := plain(p)
	if q.PurposeCategory == nil {
		q.PurposeCategory = []string{}
	}
	if q.PIICategory == nil {
		q.PIICategory = []string{}
	}
	return json.Marshal(q)
}

// Extension is Fineline's own claim in a receipt: the merchant and the latest
// decision on each purpose the receipt speaks of.
type Extension struct {
	// Merchant is the merchant's id.
	Merchant string `json:"merchant,omitempty"`
	// States are the decisions, granted, denied or withdrawn.
	States []PurposeState `json:"states,omitempty"`
	// PrivacyLevel is how personal the merchant's messages may be, as the
	// subject chose it (or the default): general, volunteered or full.
	PrivacyLevel string `json:"privacy_level,omitempty"`
}

// PurposeState is the latest decision on one purpose, as in the ledger.
type PurposeState struct {
	// Purpose is the purpose's key.
	Purpose string `json:"purpose"`
	// State is "granted", "denied" or "withdrawn".
	State string `json:"state"`
	// Seq is the number of the ledger event that recorded the decision.
	Seq int64 `json:"seq"`
	// NoticeVersion is the version of the notice the decision was made on.
	NoticeVersion int `json:"notice_version"`
	// Channel is where the decision was collected ("widget", "center", ...).
	Channel string `json:"channel,omitempty"`
	// At is when the decision was recorded, in seconds since the epoch.
	At int64 `json:"at,omitempty"`
}

// invalid returns an Invalid application error that wraps ErrInvalidReceipt.
func invalid(format string, args ...any) error {
	return &apperr.Error{
		Code:    apperr.Invalid,
		Message: "receipt: " + fmt.Sprintf(format, args...),
		Detail:  "invalid_receipt",
		Err:     ErrInvalidReceipt,
	}
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// Validate reports the first required field that is missing or inconsistent,
// as an Invalid *apperr.Error wrapping [ErrInvalidReceipt].
func (r Receipt) Validate() error {
	switch {
	case r.Version != Version:
		return invalid("version must be %q", Version)
	case blank(r.Jurisdiction):
		return invalid("jurisdiction is required")
	case r.ConsentTimestamp <= 0:
		return invalid("consentTimestamp is required")
	case blank(r.CollectionMethod):
		return invalid("collectionMethod is required")
	case blank(r.ConsentReceiptID):
		return invalid("consentReceiptID is required")
	case blank(r.PIIPrincipalID):
		return invalid("piiPrincipalId is required")
	case len(r.PIIControllers) == 0:
		return invalid("piiControllers needs at least one controller")
	}
	for i, c := range r.PIIControllers {
		if blank(c.PIIController) {
			return invalid("piiControllers[%d].piiController is required", i)
		}
		if blank(c.Contact) {
			return invalid("piiControllers[%d].contact is required", i)
		}
	}
	if blank(r.PolicyURL) {
		return invalid("policyUrl is required")
	}
	if u, err := url.Parse(r.PolicyURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid("policyUrl must be an absolute http(s) URL")
	}
	if len(r.Services) == 0 && !r.recordsOnlyRefusals() {
		return invalid("services needs at least one service")
	}
	for i, s := range r.Services {
		if blank(s.Service) {
			return invalid("services[%d].service is required", i)
		}
		if len(s.Purposes) == 0 {
			return invalid("services[%d].purposes needs at least one purpose", i)
		}
		for j, p := range s.Purposes {
			if blank(p.Purpose) {
				return invalid("services[%d].purposes[%d].purpose is required", i, j)
			}
			if p.ThirdPartyDisclosure && blank(p.ThirdPartyName) {
				return invalid("services[%d].purposes[%d].thirdPartyName is required when thirdPartyDisclosure is true", i, j)
			}
		}
	}
	if r.Sensitive != (len(r.SPICat) > 0) {
		return invalid("sensitive must be true exactly when spiCat lists a category")
	}
	for i, s := range r.Fineline.States {
		if blank(s.Purpose) {
			return invalid("fineline.states[%d].purpose is required", i)
		}
		switch s.State {
		case "granted", "denied", "withdrawn":
		default:
			return invalid("fineline.states[%d].state must be granted, denied or withdrawn", i)
		}
	}
	return nil
}

// recordsOnlyRefusals reports whether the receipt records decisions none of
// which grants anything (a shopper who switched everything off): Kantara
// lists the purposes consented to, so its services are then empty, and the
// fineline claim says what was withdrawn or denied. A receipt of a
// privacy level alone, before any decision, records that level.
func (r Receipt) recordsOnlyRefusals() bool {
	if len(r.Fineline.States) == 0 {
		return r.Fineline.PrivacyLevel != ""
	}
	for _, s := range r.Fineline.States {
		if s.State == "granted" {
			return false
		}
	}
	return true
}

// NewID returns a fresh random receipt id: 22 URL-safe characters (16 bytes
// of randomness, base64url without padding).
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand.Read never fails since Go 1.24; if it ever did, an id
		// without randomness would be worse than stopping.
		panic(fmt.Sprintf("receipts: reading random bytes: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
