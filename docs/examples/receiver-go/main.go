// Command receiver-go receives Fineline's webhooks and checks their
// signatures with the Standard Webhooks library.
//
//	FINELINE_WEBHOOK_SECRET=whsec_... PORT=8443 go run ./docs/examples/receiver-go
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// change is what a message says: ids, states and seq, nothing personal.
type change struct {
	Type string `json:"type"`
	Data struct {
		Subject string `json:"subject"`
		Purpose string `json:"purpose"`
		State   string `json:"state"`
		Seq     int64  `json:"seq"`
	} `json:"data"`
}

func main() {
	wh, err := standardwebhooks.NewWebhook(os.Getenv("FINELINE_WEBHOOK_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}    // webhook-ids handled (keep them in your database)
	latest := map[string]int64{} // per subject, the highest seq applied
	http.HandleFunc("POST /fineline", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var c change
		if err := json.Unmarshal(body, &c); err != nil {
			http.Error(w, "not a change", http.StatusBadRequest)
			return
		}
		id := r.Header.Get("webhook-id")
		mu.Lock()
		defer mu.Unlock()
		if seen[id] || c.Data.Seq <= latest[c.Data.Subject] {
			w.WriteHeader(http.StatusNoContent) // a retry, or older than what we hold
			return
		}
		seen[id], latest[c.Data.Subject] = true, c.Data.Seq
		// Apply it: e.g. unsubscribe c.Data.Subject on consent.withdrawn.
		fmt.Println("verified", id, c.Type, c.Data.Subject, c.Data.Purpose, c.Data.Seq)
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
}
