package handlers_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkImport posts 100,000 lines to POST /v1/imports on the real
// embedded store, as the server is wired: new_subjects with one line for
// each of 100,000 new subjects, per_subject with four lines for each of
// 25,000, and again the first file once more (every line a duplicate).
// Run it once: go test ./handlers/ -run '^$' -bench Import -benchtime 1x
func BenchmarkImport(b *testing.B) {
	ts := newTestServer(b, testOptions{})
	_, key := ts.AddShop(b, "bulk")
	purposes := []string{"newsletter", "recommendations", "birthday_reward", "partner_sharing", "wellness_tips"}
	states := []string{"granted", "granted", "denied", "withdrawn"}
	base := time.Now().Add(-3 * 365 * 24 * time.Hour).UTC()
	file := func(prefix string, subjects, perSubject int) string {
		var sb strings.Builder
		for i := range subjects {
			for j := range perSubject {
				line := map[string]string{"subject": fmt.Sprintf("%s-%06d", prefix, i), "purpose": purposes[(i+j)%len(purposes)],
					"state": states[(i+j)%len(states)], "given_at": base.Add(time.Duration(i*perSubject+j) * time.Second).Format(time.RFC3339Nano), "source": "legacy-crm"}
				if line["purpose"] == "wellness_tips" {
					line["proof"] = "signed form ref " + fmt.Sprint(i)
				}
				enc, err := json.Marshal(line)
				if err != nil {
					b.Fatal(err)
				}
				sb.Write(enc)
				sb.WriteByte('\n')
			}
		}
		return sb.String()
	}
	post := func(b *testing.B, body string) importAnswer {
		req, err := http.NewRequest("POST", ts.URL+"/v1/imports", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/x-ndjson")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("import: %d %v %.300s", res.StatusCode, err, raw)
		}
		var a importAnswer
		if err := json.Unmarshal(raw, &a); err != nil {
			b.Fatal(err)
		}
		return a
	}
	run := func(name string, files func(i int) string, want func(importAnswer) bool) {
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				body := files(i)
				b.StartTimer()
				a := post(b, body)
				if !want(a) {
					b.Fatalf("totals %+v", a.Totals)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/100k-lines")
		})
	}
	// Every file but again's names subjects never seen before.
	gen := 0
	fresh := func(subjects, perSubject int) string {
		gen++
		return file(fmt.Sprintf("g%d", gen), subjects, perSubject)
	}
	var first string
	run("new_subjects", func(int) string {
		first = fresh(100_000, 1)
		return first
	}, func(a importAnswer) bool { return a.Totals.Imported == 100_000 })
	run("per_subject", func(int) string { return fresh(25_000, 4) },
		func(a importAnswer) bool {
			return a.Totals.Lines == 100_000 && a.Totals.Imported+a.Totals.Unchanged == 100_000
		})
	run("again", func(int) string { return first }, func(a importAnswer) bool { return a.Totals.Duplicate == 100_000 })
}
