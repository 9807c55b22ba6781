package handlers

import (
	"compress/gzip"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/exports"
)

type createExportRequest struct {
	Purpose string `json:"purpose"`
	Format  string `json:"format,omitempty"`
	Include string `json:"include,omitempty"`
}

type exportJSON struct {
	ID         string     `json:"id"`
	Purpose    string     `json:"purpose"`
	Format     string     `json:"format"`
	Include    string     `json:"include"`
	Status     string     `json:"status"`
	Rows       int64      `json:"rows"`
	Cursor     string     `json:"cursor,omitempty"`
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Data       string     `json:"data,omitempty"`
}

func toExportJSON(e exports.Export) exportJSON {
	out := exportJSON{ID: e.ID, Purpose: e.Purpose, Format: string(e.Format), Include: string(e.Include), Status: string(e.Status), Rows: e.Rows,
		Error: e.Error, CreatedAt: e.CreatedAt, FinishedAt: timePtr(e.FinishedAt)}
	if e.Status == exports.Ready {
		out.Cursor, out.Data = e.Cursor, "/v1/exports/"+e.ID+"/data"
	}
	return out
}

func (a *API) createExport(c *gin.Context) error {
	var req createExportRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	e, err := a.Exports.Create(c.Request.Context(), merchantID(c), exports.Request{Purpose: req.Purpose, Format: exports.Format(req.Format), Include: exports.Include(req.Include),
		Actor: actor(c)})
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/exports/"+e.ID)
	c.JSON(http.StatusAccepted, toExportJSON(e))
	return nil
}

func (a *API) getExport(c *gin.Context) error {
	e, err := a.Exports.Get(c.Request.Context(), merchantID(c), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, toExportJSON(e))
	return nil
}

// acceptsGzip reports whether Accept-Encoding takes gzip (not with q=0).
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

func (a *API) exportData(c *gin.Context) error {
	ctx := c.Request.Context()
	e, err := a.Exports.Get(ctx, merchantID(c), c.Param("id"))
	if err != nil {
		return err
	}
	if e.Status != exports.Ready {
		return a.Exports.WriteData(ctx, e, nil) // says why it is not ready
	}
	ctype, ext := "application/x-ndjson", "ndjson"
	if e.Format == exports.CSV {
		ctype, ext = "text/csv; charset=utf-8", "csv"
	}
	h := c.Writer.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", `attachment; filename="`+e.ID+`.`+ext+`"`)
	h.Set("Fineline-Cursor", e.Cursor)
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(c.GetHeader("Accept-Encoding")) {
		c.Status(http.StatusOK)
		if err := a.Exports.WriteData(ctx, e, c.Writer); err != nil {
			a.Log.WarnContext(ctx, "export download cut short", "export", e.ID, "err", err)
		}
		return nil
	}
	h.Set("Content-Encoding", "gzip")
	c.Status(http.StatusOK)
	zw, _ := gzip.NewWriterLevel(c.Writer, gzip.BestSpeed)
	err = a.Exports.WriteData(ctx, e, zw)
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		a.Log.WarnContext(ctx, "export download cut short", "export", e.ID, "err", err)
	}
	return nil
}
