package handlers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/consent"
)

type purposeJSON struct {
	createPurposeRequest
	Default   string    `json:"default"`
	CreatedAt time.Time `json:"created_at"`
}

func toPurposeJSON(p consent.Purpose) purposeJSON {
	cats := p.DataCategories
	if cats == nil {
		cats = []string{}
	}
	return purposeJSON{createPurposeRequest: createPurposeRequest{Key: p.Key, Texts: p.Texts, DefaultLocale: p.DefaultLocale, DataCategories: cats,
		Sensitive: p.Sensitive, SaleOrShare: p.SaleOrShare, LegalBasis: string(p.LegalBasis)}, Default: "off", CreatedAt: p.CreatedAt}
}

type createPurposeRequest struct {
	Key            string                  `json:"key"`
	Texts          map[string]consent.Text `json:"texts"`
	DefaultLocale  string                  `json:"default_locale"`
	DataCategories []string                `json:"data_categories"`
	Sensitive      bool                    `json:"sensitive"`
	SaleOrShare    bool                    `json:"sale_or_share"`
	LegalBasis     string                  `json:"legal_basis"`
}

func (a *API) listPurposes(c *gin.Context) error {
	ps, err := a.Purposes.List(c.Request.Context(), merchantID(c))
	if err != nil {
		return err
	}
	out := make([]purposeJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, toPurposeJSON(p))
	}
	c.JSON(http.StatusOK, gin.H{"purposes": out})
	return nil
}

func (a *API) getPurpose(c *gin.Context) error {
	p, err := a.Purposes.Get(c.Request.Context(), merchantID(c), c.Param("key"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toPurposeJSON(p))
	return nil
}

func (a *API) createPurpose(c *gin.Context) error {
	var req createPurposeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p, err := a.Purposes.Create(c.Request.Context(), consent.Purpose{
		MerchantID: merchantID(c), Key: req.Key, Texts: req.Texts, DefaultLocale: req.DefaultLocale,
		DataCategories: req.DataCategories, Sensitive: req.Sensitive, SaleOrShare: req.SaleOrShare,
		LegalBasis: consent.LegalBasis(req.LegalBasis),
	})
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/purposes/"+p.Key)
	c.JSON(http.StatusCreated, toPurposeJSON(p))
	return nil
}
