package handlers

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/access"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/exports"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/guard"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/receipts"
	"github.com/fineline/fineline/requests"
)

// askedDays is how far back "who asked about me" looks.
const askedDays = 30

// maxOwnEvents bounds the history one data page or download reads.
const maxOwnEvents = 5000

// ownData is everything the merchant holds about the signed-in subject,
// read once for the page and both downloads.
type ownData struct {
	purposes []consent.Purpose
	state    consent.SubjectState
	decided  []consent.Decision
	events   []consent.Event
	fields   []fields.Field
	values   map[string]string
	attrs    []guard.Attribute
	asked    []access.Count
	receipts []receipts.Issued
	// keyNames names the merchant's API keys by actor ("api_key:<id>").
	keyNames map[string]string
}

func (a *API) readOwnData(c *gin.Context) (ownData, error) {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	var d ownData
	var err error
	if d.purposes, d.state, d.decided, err = a.choices(c); err != nil {
		return d, err
	}
	for after := int64(0); len(d.events) < maxOwnEvents; {
		page, next, err := a.Ledger.Events(ctx, m.ID, sess.SubjectID, after, consent.MaxPage)
		if err != nil {
			return d, err
		}
		d.events = append(d.events, page...)
		if next == 0 {
			break
		}
		after = next
	}
	if d.fields, d.values, err = a.ownFields(c); err != nil {
		return d, err
	}
	if a.Guard != nil {
		if d.attrs, err = a.Guard.List(ctx, m.ID); err != nil {
			return d, err
		}
	}
	if a.Access != nil {
		now := time.Now().UTC()
		days := make([]string, askedDays)
		for i := range days {
			days[i] = now.AddDate(0, 0, -i).Format(time.DateOnly)
		}
		if d.asked, err = a.Access.Counts(ctx, m.ID, sess.SubjectID, days); err != nil {
			return d, err
		}
		if a.Exports != nil {
			exps, err := a.Exports.On(ctx, m.ID, days)
			if err != nil {
				return d, err
			}
			d.asked = append(d.asked, listedBy(exps, d.events, m.ID, sess.SubjectID)...)
		}
		slices.SortFunc(d.asked, func(x, y access.Count) int {
			return strings.Compare(y.Day+x.Actor+x.Purpose+string(x.Kind), x.Day+y.Actor+y.Purpose+string(y.Kind))
		})
	}
	if d.receipts, err = a.Center.Receipts.Store.SubjectReceipts(ctx, m.ID, sess.SubjectID); err != nil {
		return d, err
	}
	keys, err := a.Merchants.Keys(ctx, m.ID)
	if err != nil {
		return d, err
	}
	d.keyNames = make(map[string]string, len(keys))
	for _, k := range keys {
		d.keyNames["api_key:"+k.ID] = k.Name
	}
	return d, nil
}

// listedBy counts, per day, key and purpose, the exports that listed the
// subject whose events are given.
func listedBy(exps []exports.Export, events []consent.Event, merchantID, subjectID string) []access.Count {
	n := map[access.Key]int64{}
	var order []access.Key
	for _, e := range exps {
		if !exports.Listed(e, events) {
			continue
		}
		k := access.Key{MerchantID: merchantID, SubjectID: subjectID, Day: e.CreatedAt.UTC().Format(time.DateOnly), Kind: access.Export, Actor: e.Actor, Purpose: e.Purpose}
		if n[k] == 0 {
			order = append(order, k)
		}
		n[k]++
	}
	out := make([]access.Count, len(order))
	for i, k := range order {
		out[i] = access.Count{Key: k, N: n[k]}
	}
	return out
}

type dataEventView struct{ When, Choice, Channel, Notice string }

type dataPurposeView struct {
	Name, Status string
	History      []dataEventView
}

type dataValueView struct{ Label, Value, Purposes string }

type dataReceiptView struct{ When, URL string }

type dataAttributeView struct{ Label, Explanation, Purposes string }

type dataRecipientView struct{ Name, Role, Country, Purposes string }

type dataAskedView struct {
	Day, System, What, Purpose string
	N                          int64
}

type dataPage struct {
	base
	Purposes   []dataPurposeView
	Level      string
	Values     []dataValueView
	Receipts   []dataReceiptView
	Attributes []dataAttributeView
	Recipients []dataRecipientView
	// Systems are the labels of the merchant's webhook endpoints: systems
	// told of every change of choice.
	Systems   []string
	Asked     []dataAskedView
	AskedDays int
	CanErase  bool
	// Requests are the shopper's requests about data held elsewhere;
	// Requested is set just after one was made.
	CanRequest bool
	Requests   []dataRequestView
	Requested  string
}

type dataRequestView struct{ Kind, Status, Received, Due, Note string }

// channelName words a channel for the shopper.
func channelName(l *locales.Localizer, ch consent.Channel) string {
	return l.T("channel_" + string(ch))
}

// eventChoice words what an event recorded; labels names fields by key.
func eventChoice(l *locales.Localizer, e consent.Event, labels map[string]string) string {
	field := labels[e.Field]
	if field == "" {
		field = e.Field // a field the merchant no longer has
	}
	switch {
	case e.Field != "" && e.State == consent.Provided:
		return l.Tf("data_event_provided", "Field", field)
	case e.Field != "":
		return l.Tf("data_event_erased", "Field", field)
	case e.State == consent.LevelChosen:
		return l.Tf("change_level", "Level", levelName(l, e.Level))
	case e.State == consent.Granted:
		return l.T("data_event_granted")
	case e.State == consent.Denied:
		return l.T("data_event_denied")
	}
	return l.T("data_event_withdrawn")
}

// shownValue is a stored value as a person reads it: a date's day and
// month named (and its year when it has one), anything else as stored.
func shownValue(l *locales.Localizer, f fields.Field, v string) string {
	if f.Type != fields.TypeDate {
		return v
	}
	m, day, ok := fields.MonthDay(v)
	if !ok {
		return v
	}
	out := strconv.Itoa(day) + " " + l.T("month_"+strconv.Itoa(int(m)))
	if len(v) == 10 {
		out += " " + v[:4]
	}
	return out
}

// recipientViews words the merchant's declared recipients.
func (a *API) recipientViews(c *gin.Context, ps []consent.Purpose) ([]dataRecipientView, error) {
	if a.Recipients == nil {
		return nil, nil
	}
	rs, err := a.Recipients.Get(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return nil, err
	}
	l := localizer(c)
	var out []dataRecipientView
	for _, r := range rs.Recipients {
		out = append(out, dataRecipientView{Name: r.Name, Role: l.T("recipient_" + string(r.Role)), Country: r.Country, Purposes: purposeNames(l, ps, r.Purposes)})
	}
	return out, nil
}

// yourData shows the signed-in shopper everything the merchant holds about
// them, who it goes to, who asked about them, and how long it is kept.
func (a *API) yourData(c *gin.Context) error {
	d, err := a.readOwnData(c)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	m := merchant(c)
	p := dataPage{base: a.newPage(c), Level: levelName(localizer(c), d.state.PrivacyLevel()), AskedDays: askedDays, CanErase: a.Erasure != nil}
	l := p.L
	labels := make(map[string]string, len(d.fields))
	for _, f := range d.fields {
		labels[f.Key] = f.TextFor(l.Lang).Label
	}
	for i, pur := range d.purposes {
		v := dataPurposeView{Name: pur.TextFor(l.Lang).Name, Status: purposeStatus(l, d.state, pur, d.decided[i])}
		for _, e := range d.events {
			if e.Purpose == pur.Key {
				v.History = append(v.History, dataEventView{When: formatTime(e.RecordedAt), Choice: eventChoice(l, e, labels), Channel: channelName(l, e.Channel),
					Notice: strconv.Itoa(e.NoticeVersion)})
			}
		}
		p.Purposes = append(p.Purposes, v)
	}
	for i := len(d.receipts) - 1; i >= 0; i-- {
		r := d.receipts[i]
		p.Receipts = append(p.Receipts, dataReceiptView{When: formatTime(r.CreatedAt), URL: basePath(c) + "receipts/" + r.ID})
	}
	for _, f := range d.fields {
		if v, ok := d.values[f.Key]; ok {
			p.Values = append(p.Values, dataValueView{Label: f.TextFor(l.Lang).Label, Value: shownValue(l, f, v), Purposes: purposeNames(l, d.purposes, f.Purposes)})
		}
	}
	for _, at := range d.attrs {
		if at.Field {
			continue // a volunteered field: listed with its value above
		}
		var uses []string
		for _, pur := range d.purposes {
			if pur.Uses(at.Category) {
				uses = append(uses, pur.Key)
			}
		}
		t := at.TextFor(l.Lang)
		p.Attributes = append(p.Attributes, dataAttributeView{Label: t.Label, Explanation: t.Explanation, Purposes: purposeNames(l, d.purposes, uses)})
	}
	if p.Recipients, err = a.recipientViews(c, d.purposes); err != nil {
		return err
	}
	if a.Webhooks != nil {
		eps, err := a.Webhooks.List(ctx, m.ID)
		if err != nil {
			return err
		}
		for _, ep := range eps {
			if ep.Label != "" && !slices.Contains(p.Systems, ep.Label) {
				p.Systems = append(p.Systems, ep.Label)
			}
		}
	}
	for _, n := range d.asked {
		system := d.keyNames[n.Actor]
		if system == "" {
			system = l.T("data_asked_unknown_system")
		}
		p.Asked = append(p.Asked, dataAskedView{Day: n.Day, System: system, What: l.T("access_" + string(n.Kind)),
			Purpose: purposeNames(l, d.purposes, []string{n.Purpose}), N: n.N})
	}
	if a.Requests != nil {
		p.CanRequest = true
		rs, err := a.Requests.Of(ctx, m.ID, d.state.SubjectID)
		if err != nil {
			return err
		}
		for _, r := range rs {
			v := dataRequestView{Kind: l.T("request_" + string(r.Kind)), Received: formatTime(r.ReceivedAt), Due: formatTime(r.DueAt), Note: r.Note,
				Status: l.Tf("request_status_"+string(r.Status), "When", formatTime(r.CompletedAt))}
			p.Requests = append(p.Requests, v)
		}
		if k, err := requests.ParseKind(c.Query("requested")); err == nil {
			p.Requested = l.T("request_" + string(k))
		}
	}
	return a.render(c, http.StatusOK, "data", p)
}

// ownEventJSON is a ledger event in the shopper's download: every field
// the hash covers, so that the chain can be checked from the file alone.
type ownEventJSON struct {
	Seq            int64  `json:"seq"`
	Purpose        string `json:"purpose,omitempty"`
	State          string `json:"state"`
	Field          string `json:"field,omitempty"`
	Level          string `json:"level,omitempty"`
	NoticeVersion  int    `json:"notice_version"`
	Channel        string `json:"channel"`
	Actor          string `json:"actor"`
	RecordedAt     string `json:"recorded_at"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	GivenAt        string `json:"given_at,omitempty"`
	Source         string `json:"source,omitempty"`
	Proof          string `json:"proof,omitempty"`
	Prev           string `json:"prev,omitempty"`
	Locale         string `json:"locale,omitempty"`
	PrevNotice     int    `json:"prev_notice,omitempty"`
	PrevHash       string `json:"prev_hash"`
	Hash           string `json:"hash"`
}

type ownValueJSON struct {
	Field string `json:"field"`
	Value string `json:"value"`
	// Purposes are those the value is kept for: it goes when the last is off.
	Purposes []string `json:"purposes"`
}

type ownReceiptJSON struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// Token is the signed receipt (a JWT), as downloaded from its page.
	Token string `json:"token"`
}

type ownAccessJSON struct {
	Day     string `json:"day"`
	System  string `json:"system"`
	Kind    string `json:"kind"`
	Purpose string `json:"purpose"`
	Count   int64  `json:"count"`
}

type ownDataJSON struct {
	Merchant     string           `json:"merchant"`
	MerchantID   string           `json:"merchant_id"`
	Subject      string           `json:"subject"`
	GeneratedAt  time.Time        `json:"generated_at"`
	PrivacyLevel string           `json:"privacy_level"`
	Decisions    []decisionJSON   `json:"decisions"`
	Events       []ownEventJSON   `json:"events"`
	Values       []ownValueJSON   `json:"values"`
	Receipts     []ownReceiptJSON `json:"receipts"`
	Access       []ownAccessJSON  `json:"access"`
}

// hashTime is t as the event's hash covers it, "" for a zero time.
func hashTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return consent.HashTime(t)
}

func (a *API) ownDataJSON(c *gin.Context, d ownData) ownDataJSON {
	sess, _ := session(c)
	m := merchant(c)
	out := ownDataJSON{Merchant: m.Name, MerchantID: m.ID, Subject: sess.SubjectID, GeneratedAt: time.Now().UTC().Truncate(time.Second),
		PrivacyLevel: string(d.state.PrivacyLevel()), Decisions: []decisionJSON{}, Events: []ownEventJSON{}, Values: []ownValueJSON{}, Receipts: []ownReceiptJSON{}, Access: []ownAccessJSON{}}
	for _, dec := range d.decided {
		out.Decisions = append(out.Decisions, toDecisionJSON(dec))
	}
	for _, e := range d.events {
		out.Events = append(out.Events, ownEventJSON{Seq: e.Seq, Purpose: e.Purpose, State: string(e.State), Field: e.Field, Level: string(e.Level),
			NoticeVersion: e.NoticeVersion, Channel: string(e.Channel), Actor: e.Actor, RecordedAt: hashTime(e.RecordedAt), IdempotencyKey: e.IdempotencyKey,
			GivenAt: hashTime(e.GivenAt), Source: e.Source, Proof: e.Proof, Prev: string(e.Prev), Locale: e.Locale, PrevNotice: e.PrevNotice, PrevHash: e.PrevHash, Hash: e.Hash})
	}
	for _, f := range d.fields {
		if v, ok := d.values[f.Key]; ok {
			out.Values = append(out.Values, ownValueJSON{Field: f.Key, Value: v, Purposes: f.Purposes})
		}
	}
	for _, r := range d.receipts {
		out.Receipts = append(out.Receipts, ownReceiptJSON{ID: r.ID, CreatedAt: r.CreatedAt, Token: r.Token})
	}
	for _, n := range d.asked {
		system := d.keyNames[n.Actor]
		if system == "" {
			system = n.Actor
		}
		out.Access = append(out.Access, ownAccessJSON{Day: n.Day, System: system, Kind: string(n.Kind), Purpose: n.Purpose, Count: n.N})
	}
	return out
}

// downloadData gives the shopper their data as JSON, signed with the
// center's receipt key: a flattened JWS (RFC 7515 §7.2.2) whose payload is
// the data, checkable against /.well-known/jwks.json.
func (a *API) downloadData(c *gin.Context) error {
	d, err := a.readOwnData(c)
	if err != nil {
		return err
	}
	payload, err := json.MarshalIndent(a.ownDataJSON(c, d), "", "  ")
	if err != nil {
		return err
	}
	signed, err := a.Center.Signer.SignDetached(payload, "application/json")
	if err != nil {
		return err
	}
	c.Header("Content-Disposition", `attachment; filename="`+merchant(c).Slug+`-my-data.json"`)
	c.Data(http.StatusOK, "application/json", signed)
	return nil
}

// downloadDataCSV gives the shopper their choices, values and who asked as
// one table for people: a row per event, value and access count.
func (a *API) downloadDataCSV(c *gin.Context) error {
	d, err := a.readOwnData(c)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	rows := [][]string{{"kind", "when", "purpose", "what", "channel_or_system", "notice_version", "count"}}
	for _, e := range d.events {
		what := string(e.State)
		if e.Field != "" {
			what += " " + e.Field
		}
		if e.Level != "" {
			what += " " + string(e.Level)
		}
		rows = append(rows, []string{"event", hashTime(e.RecordedAt), e.Purpose, what, string(e.Channel), strconv.Itoa(e.NoticeVersion), ""})
	}
	for _, f := range d.fields {
		if v, ok := d.values[f.Key]; ok {
			rows = append(rows, []string{"value", "", strings.Join(f.Purposes, " "), f.Key + ": " + v, "", "", ""})
		}
	}
	for _, n := range d.asked {
		system := d.keyNames[n.Actor]
		if system == "" {
			system = n.Actor
		}
		rows = append(rows, []string{"access", n.Day, n.Purpose, string(n.Kind), system, "", strconv.FormatInt(n.N, 10)})
	}
	for _, r := range rows {
		for i, cell := range r {
			r[i] = csvSafe(cell)
		}
	}
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	c.Header("Content-Disposition", `attachment; filename="`+merchant(c).Slug+`-my-data.csv"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", b.Bytes())
	return nil
}

// csvSafe keeps a cell from being read as a formula by a spreadsheet.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
