package handlers

import (
	"encoding/base64"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/access"
	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/offers"
)

type createFieldRequest struct {
	Key           string                 `json:"key"`
	Texts         map[string]fields.Text `json:"texts"`
	DefaultLocale string                 `json:"default_locale"`
	Type          string                 `json:"type"`
	OmitYear      bool                   `json:"omit_year"`
	Choices       []string               `json:"choices,omitempty"`
	Min           *float64               `json:"min,omitempty"`
	Max           *float64               `json:"max,omitempty"`
	Purposes      []string               `json:"purposes"`
	// Category is the field's data category; "" counts as "preference".
	Category string `json:"category,omitempty"`
}

type fieldJSON struct {
	createFieldRequest
	CreatedAt time.Time `json:"created_at"`
}

func toFieldJSON(f fields.Field) fieldJSON {
	return fieldJSON{createFieldRequest: createFieldRequest{Key: f.Key, Texts: f.Texts, DefaultLocale: f.DefaultLocale, Type: string(f.Type),
		OmitYear: f.OmitYear, Choices: f.Choices, Min: f.Min, Max: f.Max, Purposes: f.Purposes, Category: f.Category}, CreatedAt: f.CreatedAt}
}

func (a *API) createField(c *gin.Context) error {
	var req createFieldRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	f, err := a.Fields.Create(c.Request.Context(), fields.Field{MerchantID: merchantID(c), Key: req.Key, Texts: req.Texts, DefaultLocale: req.DefaultLocale,
		Type: fields.Type(req.Type), OmitYear: req.OmitYear, Choices: req.Choices, Min: req.Min, Max: req.Max, Purposes: req.Purposes, Category: req.Category})
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/fields/"+f.Key)
	c.JSON(http.StatusCreated, toFieldJSON(f))
	return nil
}

func (a *API) listFields(c *gin.Context) error {
	fs, err := a.Fields.List(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	out := make([]fieldJSON, 0, len(fs))
	for _, f := range fs {
		out = append(out, toFieldJSON(f))
	}
	c.JSON(http.StatusOK, gin.H{"fields": out})
	return nil
}

func (a *API) getField(c *gin.Context) error {
	f, err := a.Fields.Get(c.Request.Context(), merchantID(c), c.Param("key"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toFieldJSON(f))
	return nil
}

type disclosedJSON struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

type withheldJSON struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
	// Decision is the purpose's decision reason when the purpose is not allowed.
	Decision string `json:"decision,omitempty"`
}

// subjectFields answers GET /v1/subjects/{subject}/fields?purpose=: the
// values that purpose needs, only while the subject allows it.
func (a *API) subjectFields(c *gin.Context) error {
	purpose := c.Query("purpose")
	if purpose == "" {
		return apperr.New(apperr.Invalid, "name the purpose you will use the data for: ?purpose=<key>").WithDetail("purpose_required")
	}
	if !consent.ValidPurposeKey(purpose) {
		return apperr.New(apperr.Invalid, "purpose must be a purpose key").WithDetail("invalid_purpose")
	}
	d, err := a.Fields.ForPurpose(c.Request.Context(), merchantID(c), c.Param("subject"), purpose)
	if err != nil {
		return err
	}
	if d.Allowed && a.Access != nil {
		// Values were disclosed: counted for the subject's "who asked".
		a.Access.Of(access.Fields).Count(merchantID(c), d.SubjectID, actor(c), purpose, time.Now())
	}
	out := struct {
		Subject  string          `json:"subject"`
		Purpose  string          `json:"purpose"`
		Allowed  bool            `json:"allowed"`
		Fields   []disclosedJSON `json:"fields"`
		Withheld []withheldJSON  `json:"withheld"`
	}{Subject: d.SubjectID, Purpose: d.Purpose, Allowed: d.Allowed, Fields: []disclosedJSON{}, Withheld: []withheldJSON{}}
	for _, f := range d.Fields {
		out.Fields = append(out.Fields, disclosedJSON{Key: f.Field.Key, Type: string(f.Field.Type), Value: f.Value})
	}
	for _, w := range d.Withheld {
		out.Withheld = append(out.Withheld, withheldJSON{Key: w.Field, Reason: w.Reason, Decision: string(w.Decision)})
	}
	c.JSON(http.StatusOK, out)
	return nil
}

type birthdayJSON struct {
	Field     string `json:"field"`
	On        string `json:"on"`
	ValidDays int    `json:"valid_days"`
}

type createOfferRequest struct {
	Key            string                 `json:"key"`
	Purpose        string                 `json:"purpose"`
	Fields         []string               `json:"fields"`
	Texts          map[string]offers.Text `json:"texts"`
	DefaultLocale  string                 `json:"default_locale"`
	BirthdayReward *birthdayJSON          `json:"birthday_reward,omitempty"`
}

type offerJSON struct {
	createOfferRequest
	CreatedAt time.Time `json:"created_at"`
}

func toOfferJSON(o offers.Offer) offerJSON {
	out := offerJSON{createOfferRequest: createOfferRequest{Key: o.Key, Purpose: o.Purpose, Fields: o.Fields, Texts: o.Texts, DefaultLocale: o.DefaultLocale},
		CreatedAt: o.CreatedAt}
	if b := o.Birthday; b != nil {
		out.BirthdayReward = &birthdayJSON{Field: b.Field, On: string(b.On), ValidDays: b.ValidDays}
	}
	return out
}

func (a *API) createOffer(c *gin.Context) error {
	var req createOfferRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	o := offers.Offer{MerchantID: merchantID(c), Key: req.Key, Purpose: req.Purpose, Fields: req.Fields, Texts: req.Texts, DefaultLocale: req.DefaultLocale}
	if b := req.BirthdayReward; b != nil {
		o.Birthday = &offers.Birthday{Field: b.Field, On: offers.Trigger(b.On), ValidDays: b.ValidDays}
	}
	o, err := a.Offers.Create(c.Request.Context(), o)
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/offers/"+o.Key)
	c.JSON(http.StatusCreated, toOfferJSON(o))
	return nil
}

func (a *API) listOffers(c *gin.Context) error {
	os, err := a.Offers.List(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	out := make([]offerJSON, 0, len(os))
	for _, o := range os {
		out = append(out, toOfferJSON(o))
	}
	c.JSON(http.StatusOK, gin.H{"offers": out})
	return nil
}

func (a *API) getOffer(c *gin.Context) error {
	o, err := a.Offers.Get(c.Request.Context(), merchantID(c), c.Param("key"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toOfferJSON(o))
	return nil
}

type rewardJSON struct {
	Code       string     `json:"code"`
	Offer      string     `json:"offer"`
	Subject    string     `json:"subject"`
	Period     string     `json:"period"`
	IssuedAt   time.Time  `json:"issued_at"`
	ValidFrom  time.Time  `json:"valid_from"`
	ValidUntil time.Time  `json:"valid_until"`
	Redeemed   bool       `json:"redeemed"`
	RedeemedAt *time.Time `json:"redeemed_at,omitempty"`
	Email      string     `json:"email"`
}

func toRewardJSON(r offers.Reward) rewardJSON {
	out := rewardJSON{Code: offers.Display(r.Code), Offer: r.Offer, Subject: r.SubjectID, Period: r.Period, IssuedAt: r.IssuedAt,
		ValidFrom: r.ValidFrom, ValidUntil: r.ValidUntil, Redeemed: !r.RedeemedAt.IsZero(), Email: string(r.Mail)}
	if !r.RedeemedAt.IsZero() {
		at := r.RedeemedAt
		out.RedeemedAt = &at
	}
	return out
}

func (a *API) listRewards(c *gin.Context) error {
	sub := c.Query("subject")
	if sub == "" {
		return apperr.New(apperr.Invalid, "name the subject: ?subject=<id>").WithDetail("subject_required")
	}
	rs, err := a.Offers.Rewards(c.Request.Context(), merchantID(c), sub)
	if err != nil {
		return err
	}
	out := make([]rewardJSON, 0, len(rs))
	for _, r := range rs {
		out = append(out, toRewardJSON(r))
	}
	c.JSON(http.StatusOK, gin.H{"subject": sub, "rewards": out})
	return nil
}

func (a *API) getReward(c *gin.Context) error {
	r, err := a.Offers.Lookup(c.Request.Context(), merchantID(c), c.Param("code"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toRewardJSON(r))
	return nil
}

// rewardCodeKey gives the merchant the key that checks its reward codes
// offline (a till with no connection to Fineline).
func (a *API) rewardCodeKey(c *gin.Context) error {
	c.JSON(http.StatusOK, gin.H{
		"algorithm": "HMAC-SHA256",
		"key":       base64.StdEncoding.EncodeToString(a.Offers.Codes.CheckKey(merchantID(c))),
		"check":     "Remove dashes and spaces, upper-case, read O as 0 and I or L as 1. Decode the 20 characters as Crockford base32 (0123456789ABCDEFGHJKMNPQRSTVWXYZ, 5 bits each, most significant first, no padding): 12 bytes and 4 zero bits. The code is yours when bytes 8-12 equal the first 5 bytes of HMAC-SHA256(key, \"tag\" 0x00 bytes 1-7), and re-encoding the 12 bytes gives the same 20 characters.",
	})
	return nil
}

func (a *API) redeemReward(c *gin.Context) error {
	r, err := a.Offers.Redeem(c.Request.Context(), merchantID(c), c.Param("code"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toRewardJSON(r))
	return nil
}
