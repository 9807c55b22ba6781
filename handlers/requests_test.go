package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fineline/fineline/requests"
)

func TestRequestsAboutDataHeldElsewhere(t *testing.T) {
	e, _, erin := newDataEnv(t)
	post := func(form url.Values) int {
		t.Helper()
		code, _ := formPost(t, erin, e.srv.URL+"/c/shop-a/requests", e.srv.URL, form)
		return code
	}
	if code := post(url.Values{"kind": {"everything"}}); code != http.StatusBadRequest {
		t.Errorf("an unknown kind: %d", code)
	}
	if code := post(url.Values{"kind": {"access"}}); code != http.StatusSeeOther {
		t.Fatalf("asking for access: %d", code)
	}
	// Asked twice, still one request.
	post(url.Values{"kind": {"access"}})
	post(url.Values{"kind": {"deletion"}})
	_, page := getPage(t, erin, e.srv.URL+"/c/shop-a/data?requested=access")
	if !strings.Contains(page, "Your request was received: A copy of my data.") || strings.Count(page, "<th scope=\"row\">A copy of my data</th>") != 1 ||
		!strings.Contains(page, "Deletion of my data") || !strings.Contains(page, "Open") {
		t.Fatalf("the data page's requests:\n%s", page)
	}

	var list struct {
		Requests []struct {
			ID, Subject, Kind, Status, Note string
			ReceivedAt                      time.Time `json:"received_at"`
			DueAt                           time.Time `json:"due_at"`
		}
		Next string
	}
	e.mustStatus(e.do("GET", "/v1/requests", e.keyA, ""), 200).json(t, &list)
	if len(list.Requests) != 2 || list.Requests[0].Kind != "access" || list.Requests[1].Kind != "deletion" || list.Requests[0].Subject != "erin" {
		t.Fatalf("the merchant's requests: %+v", list)
	}
	first := list.Requests[0]
	if want := first.ReceivedAt.AddDate(0, 1, 0); !first.DueAt.Equal(want) {
		t.Errorf("due %s, want a month after %s (EU)", first.DueAt, first.ReceivedAt)
	}
	// Paged: after the first, the second.
	e.mustStatus(e.do("GET", "/v1/requests?limit=1", e.keyA, ""), 200).json(t, &list)
	if len(list.Requests) != 1 || list.Next != first.ID {
		t.Fatalf("the first page: %+v", list)
	}
	e.mustStatus(e.do("GET", "/v1/requests?limit=1&after="+list.Next, e.keyA, ""), 200).json(t, &list)
	if len(list.Requests) != 1 || list.Requests[0].Kind != "deletion" {
		t.Fatalf("the second page: %+v", list)
	}
	// Another merchant sees none and completes none.
	e.mustStatus(e.do("GET", "/v1/requests", e.keyB, ""), 200).json(t, &list)
	if len(list.Requests) != 0 {
		t.Errorf("shop-b sees shop-a's requests: %+v", list)
	}
	if r := e.do("POST", "/v1/requests/"+first.ID+"/complete", e.keyB, `{"note":"x"}`); r.status != 404 {
		t.Errorf("shop-b completing shop-a's request: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests/"+first.ID+"/complete", e.keyA, `{"note":"x","Note":"y"}`); r.status != 400 {
		t.Errorf("a body with a case-variant member: %d", r.status)
	}
	e.mustStatus(e.do("POST", "/v1/requests/"+first.ID+"/complete", e.keyA, `{"note":"We sent the copy to your email address."}`), 200)
	if r := e.do("POST", "/v1/requests/"+first.ID+"/complete", e.keyA, `{}`); r.status != 409 || r.errorCode(t) != requests.CodeAlreadyCompleted {
		t.Errorf("completing twice: %d %s", r.status, r.body)
	}
	_, page = getPage(t, erin, e.srv.URL+"/c/shop-a/data")
	if !strings.Contains(page, "Done on") || !strings.Contains(page, "We sent the copy to your email address.") {
		t.Errorf("the shopper does not see the request done:\n%s", page)
	}
	// Asking for access again once done is a new request.
	post(url.Values{"kind": {"access"}})
	e.mustStatus(e.do("GET", "/v1/requests", e.keyA, ""), 200).json(t, &list)
	if len(list.Requests) != 3 {
		t.Errorf("%d requests after asking again", len(list.Requests))
	}
}

func TestRequestDeadlines(t *testing.T) {
	at := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		jurisdiction string
		want         time.Time
	}{
		{"EU", at.AddDate(0, 1, 0)},
		{"US-CA", at.AddDate(0, 0, 45)},
		{"BR", at.AddDate(0, 0, 30)},
	} {
		if got := (&requests.Service{Jurisdiction: tc.jurisdiction}).DueAt(at); !got.Equal(tc.want) {
			t.Errorf("%s: due %s, want %s", tc.jurisdiction, got, tc.want)
		}
	}
}
