package handlers

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/notices"
)

// offeredPurposes are the merchant's purposes shoppers are asked about:
// every page and widget that offers choices lists these, not the retired.
func (a *API) offeredPurposes(ctx context.Context, merchantID string) ([]consent.Purpose, error) {
	ps, err := a.Purposes.List(ctx, merchantID)
	return consent.Offered(ps), err
}

type purposeJSON struct {
	createPurposeRequest
	Default   string    `json:"default"`
	CreatedAt time.Time `json:"created_at"`
	// RetiredAt is set once the purpose is retired.
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

func toPurposeJSON(p consent.Purpose) purposeJSON {
	cats := p.DataCategories
	if cats == nil {
		cats = []string{}
	}
	out := purposeJSON{createPurposeRequest: createPurposeRequest{Key: p.Key, Texts: p.Texts, DefaultLocale: p.DefaultLocale, DataCategories: cats,
		Sensitive: p.Sensitive, SaleOrShare: p.SaleOrShare, LegalBasis: string(p.LegalBasis)}, Default: "off", CreatedAt: p.CreatedAt}
	if p.Retired() {
		at := p.RetiredAt
		out.RetiredAt = &at
	}
	return out
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

// retirePurpose stops offering a purpose; its history stays.
func (a *API) retirePurpose(c *gin.Context) error {
	p, err := a.Purposes.Retire(c.Request.Context(), merchantID(c), c.Param("key"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toPurposeJSON(p))
	return nil
}

type patchPurposeRequest struct {
	Texts          map[string]consent.Text `json:"texts"`
	DataCategories *[]string               `json:"data_categories"`
}

// patchPurpose changes a purpose's words the way terms change: it creates
// a notice draft carrying them (with a summary of the change in every
// language), which the merchant publishes, as material for the purpose or
// not. Until then shoppers see the old words.
func (a *API) patchPurpose(c *gin.Context) error {
	var req patchPurposeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request.Context()
	w := consent.Wording{Purpose: c.Param("key"), Texts: req.Texts}
	if req.DataCategories != nil {
		w.DataCategories = append([]string{}, *req.DataCategories...)
	}
	v, p, err := a.rewordPurpose(ctx, merchantID(c), w)
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/notices/"+strconv.Itoa(v.Number))
	c.JSON(http.StatusCreated, gin.H{"notice": toNoticeJSON(v), "purpose": toPurposeJSON(p)})
	return nil
}

// rewordPurpose checks new words for a purpose and creates the notice
// draft that carries them, with a summary of the change in every
// language: the API and the console both change words this way.
func (a *API) rewordPurpose(ctx context.Context, merchantID string, w consent.Wording) (notices.Version, consent.Purpose, error) {
	w, p, err := a.Purposes.CheckWording(ctx, merchantID, w)
	if err != nil {
		return notices.Version{}, p, err
	}
	summaries := map[string]notices.Summary{}
	for _, lang := range consent.Locales() {
		name := p.TextFor(lang).Name
		if t, ok := w.Texts[lang]; ok {
			name = t.Name
		}
		summaries[lang] = notices.Summary{Summary: a.Center.Locales.For(lang).Tf("purpose_reworded", "Purpose", name)}
	}
	v, err := a.Notices.CreateRewording(ctx, merchantID, w, summaries)
	return v, p, err
}
