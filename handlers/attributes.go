package handlers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/guard"
)

type createAttributeRequest struct {
	Key           string                `json:"key"`
	Texts         map[string]guard.Text `json:"texts"`
	DefaultLocale string                `json:"default_locale"`
	Category      string                `json:"category"`
	Provenance    string                `json:"provenance"`
	Identifier    bool                  `json:"identifier"`
}

type attributeJSON struct {
	createAttributeRequest
	// Field is true for a volunteered field; Purposes are then its
	// purposes, the only ones that may use it.
	Field     bool      `json:"field"`
	Purposes  []string  `json:"purposes,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func toAttributeJSON(a guard.Attribute) attributeJSON {
	return attributeJSON{createAttributeRequest: createAttributeRequest{Key: a.Key, Texts: a.Texts, DefaultLocale: a.DefaultLocale, Category: a.Category,
		Provenance: string(a.Provenance), Identifier: a.Identifier}, Field: a.Field, Purposes: a.Purposes, CreatedAt: a.CreatedAt}
}

func (a *API) createAttribute(c *gin.Context) error {
	var req createAttributeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	at, err := a.Guard.Create(c.Request.Context(), guard.Attribute{MerchantID: merchantID(c), Key: req.Key, Texts: req.Texts, DefaultLocale: req.DefaultLocale,
		Category: req.Category, Provenance: guard.Provenance(req.Provenance), Identifier: req.Identifier})
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/attributes/"+at.Key)
	c.JSON(http.StatusCreated, toAttributeJSON(at))
	return nil
}

func (a *API) listAttributes(c *gin.Context) error {
	all, err := a.Guard.List(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	out := make([]attributeJSON, len(all))
	for i, at := range all {
		out[i] = toAttributeJSON(at)
	}
	c.JSON(http.StatusOK, gin.H{"attributes": out})
	return nil
}

func (a *API) getAttribute(c *gin.Context) error {
	at, err := a.Guard.Get(c.Request.Context(), merchantID(c), c.Param("key"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toAttributeJSON(at))
	return nil
}
