package handlers

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/stats"
)

type noticeAnswersJSON struct {
	Reaccepted int64 `json:"reaccepted"`
	Declined   int64 `json:"declined"`
	Erased     int64 `json:"erased"`
	StillDue   int64 `json:"still_due"`
	Lapsed     int64 `json:"lapsed"`
}

type noticeDayJSON struct {
	Date string `json:"date"`
	// Day counts from the day the version took effect (0).
	Day int `json:"day"`
	noticeAnswersJSON
}

type noticePurposeJSON struct {
	Purpose  string `json:"purpose"`
	Affected int64  `json:"affected"`
	noticeAnswersJSON
	Days []noticeDayJSON `json:"days"`
}

type noticeReportJSON struct {
	Version     int                 `json:"version"`
	EffectiveAt time.Time           `json:"effective_at"`
	Deadline    time.Time           `json:"deadline"`
	TimeZone    string              `json:"time_zone"`
	Through     *time.Time          `json:"through"`
	Purposes    []noticePurposeJSON `json:"purposes"`
}

func toNoticeReportJSON(r stats.NoticeReport) noticeReportJSON {
	out := noticeReportJSON{Version: r.Version.Number, EffectiveAt: r.Version.EffectiveAt, Deadline: r.Version.Deadline,
		TimeZone: r.Location.String(), Purposes: make([]noticePurposeJSON, 0, len(r.Purposes))}
	if !r.Through.IsZero() {
		out.Through = &r.Through
	}
	for _, p := range r.Purposes {
		pj := noticePurposeJSON{Purpose: p.Purpose, Affected: p.Affected, Days: make([]noticeDayJSON, 0, len(p.Days)),
			noticeAnswersJSON: noticeAnswersJSON{Reaccepted: p.Reaccepted, Declined: p.Declined, Erased: p.Erased, StillDue: p.StillDue, Lapsed: p.Lapsed}}
		for i, d := range p.Days {
			pj.Days = append(pj.Days, noticeDayJSON{Date: d.Date.Format(stats.DateLayout), Day: i,
				noticeAnswersJSON: noticeAnswersJSON{Reaccepted: d.Reaccepted, Declined: d.Declined, Erased: d.Erased, StillDue: d.StillDue, Lapsed: d.Lapsed}})
		}
		out.Purposes = append(out.Purposes, pj)
	}
	return out
}

// noticeStats answers GET /v1/stats/notices/{version}: for a published
// material version, per purpose it affects, the subjects it affected and
// what they did, day by day since it took effect; format=csv downloads
// the days.
func (a *API) noticeStats(c *gin.Context) error {
	format, err := statsQuery(c.Request.URL.Query())
	if err != nil {
		return err
	}
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	m, err := a.Merchants.Store.Merchant(ctx, merchantID(c))
	if err != nil {
		return err
	}
	v, err := a.Notices.Get(ctx, m.ID, n)
	if err != nil {
		return err
	}
	if v.Status != notices.Published {
		return apperr.New(apperr.NotFound, "notice version %d is not published", n).WithDetail("not_published")
	}
	if !v.Material {
		return apperr.New(apperr.Invalid, "notice version %d is not a material change: nobody was asked to re-accept it", n).WithDetail("not_material")
	}
	r, err := a.Reports.Notice(ctx, m, consent.PublishedVersion{Number: v.Number, Material: true, Purposes: slices.Clone(v.Purposes),
		EffectiveAt: v.EffectiveAt, Deadline: v.Deadline})
	if err != nil {
		return err
	}
	if format != "csv" {
		c.JSON(http.StatusOK, toNoticeReportJSON(r))
		return nil
	}
	rows := [][]string{{"date", "day", "purpose", "affected", "reaccepted", "declined", "erased", "still_due", "lapsed"}}
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, p := range r.Purposes {
		for i, d := range p.Days {
			rows = append(rows, []string{d.Date.Format(stats.DateLayout), strconv.Itoa(i), p.Purpose, num(p.Affected),
				num(d.Reaccepted), num(d.Declined), num(d.Erased), num(d.StillDue), num(d.Lapsed)})
		}
	}
	return sendCSV(c, m.Slug+"-notice-"+strconv.Itoa(n)+".csv", rows)
}

// sendCSV answers with rows as a CSV download named filename.
func sendCSV(c *gin.Context, filename string, rows [][]string) error {
	var b bytes.Buffer
	if err := csv.NewWriter(&b).WriteAll(rows); err != nil {
		return err
	}
	c.Header("Content-Disposition", `attachment; filename="`+filename+`"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", b.Bytes())
	return nil
}
