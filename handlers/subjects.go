package handlers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/consent"
)

type subjectJSON struct {
	ID       string `json:"id"`
	Email    string `json:"email,omitempty"`
	Locale   string `json:"locale,omitempty"`
	TimeZone string `json:"time_zone,omitempty"`
	// Relationship is customer or prospect, when the merchant said.
	Relationship string    `json:"relationship,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	// ErasedAt is set once everything about the subject was erased.
	ErasedAt *time.Time `json:"erased_at,omitempty"`
}

func toSubjectJSON(s consent.Subject) subjectJSON {
	out := subjectJSON{ID: s.ID, Email: s.Email, Locale: s.Locale, TimeZone: s.TimeZone, Relationship: string(s.Relationship), CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
	if !s.ErasedAt.IsZero() {
		out.ErasedAt = &s.ErasedAt
	}
	return out
}

type putSubjectRequest struct {
	Email    *string `json:"email"`
	Locale   *string `json:"locale"`
	TimeZone *string `json:"time_zone"`
	// Relationship is customer, prospect, or "" to clear it.
	Relationship *string `json:"relationship"`
}

func (a *API) putSubject(c *gin.Context) error {
	var req putSubjectRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	s, created, err := a.Subjects.Put(c.Request.Context(), merchantID(c), c.Param("subject"),
		consent.SubjectUpdate{Email: req.Email, Locale: req.Locale, TimeZone: req.TimeZone, Relationship: req.Relationship})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, toSubjectJSON(s))
	return nil
}

func (a *API) getSubject(c *gin.Context) error {
	s, err := a.Subjects.Get(c.Request.Context(), merchantID(c), c.Param("subject"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toSubjectJSON(s))
	return nil
}
