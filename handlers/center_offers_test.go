package handlers_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fineline/fineline/demo"
)

// addValueExchange gives shop-a Demo Shop's fields and birthday offer.
func (e *testEnv) addValueExchange(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, f := range demo.Fields() {
		f.MerchantID = e.merchA.ID
		if _, err := e.api.Fields.Create(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	o := demo.BirthdayOffer()
	o.MerchantID = e.merchA.ID
	if _, err := e.api.Offers.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
}

func getPage(t *testing.T, client *http.Client, u string) (int, string) {
	t.Helper()
	res, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// postPage posts a same-origin form and returns the page it answers with.
func postPage(t *testing.T, client *http.Client, u, origin string, form url.Values) string {
	t.Helper()
	_, page := formPost(t, client, u, origin, form)
	return page
}

func (e *testEnv) eventCount(t *testing.T, subject string) int {
	t.Helper()
	var out struct{ Events []any }
	e.mustStatus(e.do("GET", "/v1/subjects/"+subject+"/events", e.keyA, ""), 200).json(t, &out)
	return len(out.Events)
}

type fieldsAnswer struct {
	Allowed bool
	Fields  []struct{ Key, Value string }
	// Withheld lists what the purpose may not read.
	Withheld []struct{ Key, Reason string }
}

func (e *testEnv) subjectFields(t *testing.T, subject, purpose string) fieldsAnswer {
	t.Helper()
	var out fieldsAnswer
	e.mustStatus(e.do("GET", "/v1/subjects/"+subject+"/fields?purpose="+purpose, e.keyA, ""), 200).json(t, &out)
	return out
}

// TestOfferAndFieldsWithoutJavaScript walks the value exchange with plain
// form posts: the offer card, a field refused without its purpose, a bad
// date refused with nothing written, accepting the offer in one step, the
// rewards page, and erasure when the purpose is switched off.
func TestOfferAndFieldsWithoutJavaScript(t *testing.T) {
	e := newTestEnv(t)
	e.addValueExchange(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/pat", e.keyA, `{"email":"pat@example.com"}`), 201)
	client, post := e.signInShopper(t, "pat")
	base := e.srv.URL + "/c/shop-a/"

	code, html := getPage(t, client, base+"preferences")
	if code != 200 {
		t.Fatalf("preferences: %d", code)
	}
	for _, want := range []string{"Birthday treat", "You give:", "Your birthday", "15% off everything", "Notice of financial incentive",
		"about €4 a year", "Used only for: Birthday reward", `name="field.birthday.month"`, `name="field.shoe_size"`, `action="/c/shop-a/offers/birthday_treat"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the preferences page lacks %q", want)
		}
	}

	before := e.eventCount(t, "pat")
	// A birthday without switching on the purpose that needs it: refused whole.
	form := url.Values{"action": {"save"}, "was.newsletter": {"off"}, "was.birthday_reward": {"off"}, "on": {"newsletter"},
		"field.birthday.month": {"07"}, "field.birthday.day": {"19"}}
	res := post("/c/shop-a/preferences", form)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("a field without its purpose: %d, want 400", res.StatusCode)
	}
	// The page names the field and the purpose to switch on, and leads back.
	if page := postPage(t, client, e.srv.URL+"/c/shop-a/preferences", e.srv.URL, form); !strings.Contains(page, "You can give “Your birthday” only together with what it is for: switch on Birthday reward too") ||
		!strings.Contains(page, `href="/c/shop-a/preferences"`) {
		t.Errorf("the refusal does not name the field and its purpose:\n%s", page)
	}
	if e.eventCount(t, "pat") != before {
		t.Fatal("a refused form wrote to the ledger")
	}
	// A date that does not exist, on the offer: refused, nothing granted.
	if res := post("/c/shop-a/offers/birthday_treat", url.Values{"field.birthday.month": {"02"}, "field.birthday.day": {"30"}}); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("February 30: %d, want 400", res.StatusCode)
	}
	if e.eventCount(t, "pat") != before || e.reason(t, "pat", "birthday_reward") != "no_record" {
		t.Fatal("a refused offer wrote to the ledger")
	}

	res = post("/c/shop-a/offers/birthday_treat", url.Values{"field.birthday.month": {"07"}, "field.birthday.day": {"19"}, "tz": {"Asia/Tokyo"}})
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "rewards?joined=birthday_treat&receipt=") {
		t.Fatalf("accepting the offer: %d %s", res.StatusCode, loc)
	}
	if got := e.reason(t, "pat", "birthday_reward"); got != "granted" {
		t.Fatalf("after accepting, birthday_reward is %s", got)
	}
	if a := e.subjectFields(t, "pat", "birthday_reward"); !a.Allowed || len(a.Fields) != 1 || a.Fields[0].Value != "--07-19" {
		t.Fatalf("the merchant reads %+v, want the birthday", a)
	}
	var sub struct {
		TimeZone string `json:"time_zone"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/pat", e.keyA, ""), 200).json(t, &sub)
	if sub.TimeZone != "Asia/Tokyo" {
		t.Errorf("the shopper's time zone is %q, want the browser's", sub.TimeZone)
	}
	code, html = getPage(t, client, e.srv.URL+loc)
	if code != 200 || !strings.Contains(html, "You joined: Birthday treat") || !strings.Contains(html, "next reward on") || !strings.Contains(html, "View your receipt") {
		t.Fatalf("rewards page after joining: %d\n%s", code, html)
	}
	_, html = getPage(t, client, base+"preferences")
	if !strings.Contains(html, "You have joined this offer.") || !strings.Contains(html, `value="07" selected`) {
		t.Error("the preferences page does not show the offer joined and the birthday given")
	}

	// Switch the purpose off: the birthday goes at once.
	if res := post("/c/shop-a/preferences", url.Values{"action": {"save"}, "was.birthday_reward": {"on"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("switching off: %d", res.StatusCode)
	}
	a := e.subjectFields(t, "pat", "birthday_reward")
	if a.Allowed || len(a.Fields) != 0 {
		t.Fatalf("after switching off the merchant still reads %+v", a)
	}
	if _, err := e.store.Value(context.Background(), e.merchA.ID, "pat", "birthday"); err == nil {
		t.Fatal("the birthday is still stored after the purpose was switched off")
	}
	// Other merchants never see this subject's fields.
	r := e.do("GET", "/v1/subjects/pat/fields?purpose=birthday_reward", e.keyB, "")
	if r.status == 200 && strings.Contains(string(r.body), "07-19") {
		t.Fatal("another merchant read the birthday")
	}
}
