package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// guardAttributes are the five details the bench's messages use: what a
// merchant's newsletter would ask about.
var guardAttributes = []string{"first_name", "favourite_brand", "city", "last_order_total", "recently_viewed"}

// declareGuardAttributes declares the bench's attributes (once per store).
func declareGuardAttributes(a api) error {
	decl := []struct{ key, category, provenance, label, explanation string }{
		{"first_name", "name", "volunteered", "First name", "Because you told us your name"},
		{"favourite_brand", "preference", "volunteered", "Favourite brand", "Because you told us your favourite brand"},
		{"city", "location", "observed", "City", "Because your orders ship to this city"},
		{"last_order_total", "spend", "observed", "Last order total", "Because of your last order with us"},
		{"recently_viewed", "browsing", "observed", "Recently viewed", "Because you looked at these on our site"},
	}
	var have struct {
		Attributes []struct {
			Key string `json:"key"`
		} `json:"attributes"`
	}
	if err := a.call("GET", "/v1/attributes", nil, &have); err != nil {
		return err
	}
	known := map[string]bool{}
	for _, h := range have.Attributes {
		known[h.Key] = true
	}
	for _, d := range decl {
		if known[d.key] {
			continue
		}
		body := map[string]any{"key": d.key, "category": d.category, "provenance": d.provenance,
			"texts": map[string]any{"en": map[string]string{"label": d.label, "explanation": d.explanation}}}
		if err := a.call("POST", "/v1/attributes", body, nil); err != nil {
			return err
		}
	}
	return nil
}

// guardBody is one message's guard request for subject.
func guardBody(subject string) []byte {
	b, _ := json.Marshal(map[string]any{"subject": subject, "purpose": "newsletter", "channel": "email", "attributes": guardAttributes})
	return b
}

// timeCampaign asks the guard about ids in calls of size subjects, twice
// (the first pass reads what is not in memory yet), and returns how long
// each pass took.
func timeCampaign(base, key string, ids []string, size int) (first, second time.Duration, err error) {
	pass := func() (time.Duration, error) {
		var total time.Duration
		for lo := 0; lo < len(ids); lo += size {
			body, _ := json.Marshal(map[string]any{"subjects": ids[lo:min(lo+size, len(ids))], "purpose": "newsletter", "channel": "email",
				"attributes": guardAttributes})
			req, _ := http.NewRequest("POST", base+"/v1/personalization/check", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			start := time.Now()
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, err
			}
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			total += time.Since(start)
			if err != nil || res.StatusCode != 200 {
				return 0, fmt.Errorf("campaign guard check: status %d %v", res.StatusCode, err)
			}
		}
		return total, nil
	}
	if first, err = pass(); err != nil {
		return 0, 0, err
	}
	second, err = pass()
	return first, second, err
}
