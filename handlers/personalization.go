package handlers

import (
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
	Subject      string            `json:"subject,omitempty"`
	Allowed      bool              `json:"allowed"`
	Decision     guardDecisionJSON `json:"decision"`
	Level        string            `json:"level"`
	Relationship string            `json:"relationship"`
	// Attributes is the encoded []guardAttributeJSON, shared by the
	// subjects of a campaign answered alike (encoded once).
	Attributes json.RawMessage `json:"attributes"`
}

// attributesJSON encodes the answers on the attributes.
func attributesJSON(as []guard.AttributeAnswer) (json.RawMessage, error) {
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
	return json.Marshal(out)
}

// guardAnswers shapes the answers, encoding each distinct set of answers on
// the attributes once.
func guardAnswers(answers []guard.Answer) ([]guardAnswerJSON, error) {
	encoded := make(map[*guard.AttributeAnswer]json.RawMessage)
	out := make([]guardAnswerJSON, len(answers))
	for i, a := range answers {
		var attrs json.RawMessage
		if len(a.Attributes) > 0 {
			attrs = encoded[&a.Attributes[0]]
		}
		if attrs == nil {
			var err error
			if attrs, err = attributesJSON(a.Attributes); err != nil {
				return nil, err
			}
			if len(a.Attributes) > 0 {
				encoded[&a.Attributes[0]] = attrs
			}
		}
		out[i] = guardAnswerJSON{Subject: a.SubjectID, Allowed: a.Allowed, Decision: guardDecisionJSON{Allowed: a.Decision.Allowed, Reason: string(a.Decision.Reason)},
			Level: string(a.Level), Relationship: string(a.Relationship), Attributes: attrs}
	}
	return out, nil
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
	out, err := guardAnswers(answers)
	if err != nil {
		return err
	}
	if one {
		out[0].Subject = ""
		c.JSON(http.StatusOK, out[0])
		return nil
	}
	c.JSON(http.StatusOK, gin.H{"purpose": req.Purpose, "results": out})
	return nil
}
