package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/guard"
)

type guardRequest struct {
	Subject      string   `json:"subject"`
	Subjects     []string `json:"subjects"`
	Purpose      string   `json:"purpose"`
	Channel      string   `json:"channel"`
	Attributes   []string `json:"attributes"`
	Template     string   `json:"template"`
	Relationship string   `json:"relationship"`
}

type guardAttributeJSON struct {
	Attribute string   `json:"attribute"`
	Allowed   bool     `json:"allowed"`
	Reason    string   `json:"reason"`
	Reasons   []string `json:"reasons,omitempty"`
	Explain   string   `json:"explain,omitempty"`
}

type guardDecisionJSON struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

type guardAnswerJSON struct {
	Subject      string               `json:"subject,omitempty"`
	Allowed      bool                 `json:"allowed"`
	Decision     guardDecisionJSON    `json:"decision"`
	Level        string               `json:"level"`
	Relationship string               `json:"relationship"`
	Attributes   []guardAttributeJSON `json:"attributes"`
}

func toGuardAttributesJSON(as []guard.AttributeAnswer) []guardAttributeJSON {
	out := make([]guardAttributeJSON, len(as))
	for i, at := range as {
		j := guardAttributeJSON{Attribute: at.Attribute, Allowed: at.Allowed, Reason: string(at.Reason), Explain: at.Explain}
		if len(at.Reasons) > 1 {
			j.Reasons = make([]string, len(at.Reasons))
			for k, r := range at.Reasons {
				j.Reasons[k] = string(r)
			}
		}
		out[i] = j
	}
	return out
}

func toGuardAnswerJSON(a guard.Answer) guardAnswerJSON {
	return guardAnswerJSON{Subject: a.SubjectID, Allowed: a.Allowed, Decision: guardDecisionJSON{Allowed: a.Decision.Allowed, Reason: string(a.Decision.Reason)},
		Level: string(a.Level), Relationship: string(a.Relationship), Attributes: toGuardAttributesJSON(a.Attributes)}
}

// campaignJSON encodes a campaign's answers as one guardAnswerJSON per
// subject, in order; each distinct answer on the attributes (subjects
// answered alike share one) is encoded once and spliced in.
func campaignJSON(purpose string, answers []guard.Answer) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(answers) * 160)
	enc := func(v any) error {
		b, err := json.Marshal(v)
		buf.Write(b)
		return err
	}
	encoded := make(map[*guard.AttributeAnswer][]byte)
	buf.WriteString(`{"purpose":`)
	if err := enc(purpose); err != nil {
		return nil, err
	}
	buf.WriteString(`,"results":[`)
	for i, a := range answers {
		if i > 0 {
			buf.WriteByte(',')
		}
		head := toGuardAnswerJSON(guard.Answer{SubjectID: a.SubjectID, Allowed: a.Allowed, Decision: a.Decision, Level: a.Level, Relationship: a.Relationship})
		b, err := json.Marshal(head)
		if err != nil {
			return nil, err
		}
		// head ends with "attributes":[]} : put the shared encoding there.
		b = bytes.TrimSuffix(b, []byte(`[]}`))
		buf.Write(b)
		var attrs []byte
		if len(a.Attributes) > 0 {
			attrs = encoded[&a.Attributes[0]]
		}
		if attrs == nil {
			if attrs, err = json.Marshal(toGuardAttributesJSON(a.Attributes)); err != nil {
				return nil, err
			}
			if len(a.Attributes) > 0 {
				encoded[&a.Attributes[0]] = attrs
			}
		}
		buf.Write(attrs)
		buf.WriteByte('}')
	}
	buf.WriteString(`]}`)
	return buf.Bytes(), nil
}

// personalizationCheck answers "may this message use these details?": for
// one subject (subject) or a campaign (subjects, answered in order).
func (a *API) personalizationCheck(c *gin.Context) error {
	var req guardRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	one := req.Subject != ""
	if one == (req.Subjects != nil) {
		return apperr.New(apperr.Invalid, "give either subject or subjects").WithDetail(consent.CodeInvalidSubject)
	}
	subjects := req.Subjects
	if one {
		subjects = []string{req.Subject}
	}
	answers, err := a.Guard.Check(c.Request.Context(), guard.Request{MerchantID: merchantID(c), Actor: actor(c), Subjects: subjects, Purpose: req.Purpose,
		Channel: req.Channel, Attributes: req.Attributes, Template: req.Template, Relationship: consent.Relationship(req.Relationship)})
	if err != nil {
		return err
	}
	if one {
		out := toGuardAnswerJSON(answers[0])
		out.Subject = ""
		c.JSON(http.StatusOK, out)
		return nil
	}
	body, err := campaignJSON(req.Purpose, answers)
	if err != nil {
		return err
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
	return nil
}
