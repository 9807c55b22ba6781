package handlers_test

import (
	"os"
	"testing"
	"time"
)

// The JSON shapes the API answers with, as a client reads them. They are
// the test's own, not the handlers' types, so a change of the wire shape
// shows here.

type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id,omitempty"`
	} `json:"error"`
}

type merchantJSON struct {
	ID            string    `json:"id"`
	Slug          string    `json:"slug"`
	Name          string    `json:"name"`
	DefaultLocale string    `json:"default_locale"`
	CreatedAt     time.Time `json:"created_at"`
}

type keyJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Secret    string     `json:"secret,omitempty"`
}

type eventJSON struct {
	Merchant       string    `json:"merchant_id"`
	Subject        string    `json:"subject"`
	Seq            int64     `json:"seq"`
	Purpose        string    `json:"purpose"`
	State          string    `json:"state"`
	NoticeVersion  int       `json:"notice_version"`
	Channel        string    `json:"channel"`
	Actor          string    `json:"actor"`
	RecordedAt     time.Time `json:"recorded_at"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	PrevHash       string    `json:"prev_hash"`
	Hash           string    `json:"hash"`
	Field          string    `json:"field,omitempty"`
	Prev           string    `json:"prev,omitempty"`
	Locale         string    `json:"locale,omitempty"`
	GivenAt        time.Time `json:"given_at"`
	Source         string    `json:"source,omitempty"`
	Proof          string    `json:"proof,omitempty"`
	Level          string    `json:"level,omitempty"`
}

type disclosedJSON struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

type withheldJSON struct {
	Key      string `json:"key"`
	Reason   string `json:"reason"`
	Decision string `json:"decision,omitempty"`
}

// maxBody is the body limit of most JSON requests.
const maxBody = 64 << 10

// readOpenAPIDocument reads the OpenAPI document the API serves.
func readOpenAPIDocument(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
