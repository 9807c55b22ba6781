package handlers

import (
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

func toGuardAnswerJSON(a guard.Answer) guardAnswerJSON {
	out := guardAnswerJSON{Subject: a.SubjectID, Allowed: a.Allowed, Decision: guardDecisionJSON{Allowed: a.Decision.Allowed, Reason: string(a.Decision.Reason)},
		Level: string(a.Level), Relationship: string(a.Relationship), Attributes: make([]guardAttributeJSON, len(a.Attributes))}
	for i, at := range a.Attributes {
		j := guardAttributeJSON{Attribute: at.Attribute, Allowed: at.Allowed, Reason: string(at.Reason), Explain: at.Explain}
		if len(at.Reasons) > 1 {
			j.Reasons = make([]string, len(at.Reasons))
			for k, r := range at.Reasons {
				j.Reasons[k] = string(r)
			}
		}
		out.Attributes[i] = j
	}
	return out
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
	out := make([]guardAnswerJSON, len(answers))
	for i, an := range answers {
		out[i] = toGuardAnswerJSON(an)
	}
	c.JSON(http.StatusOK, gin.H{"purpose": req.Purpose, "results": out})
	return nil
}
