package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/internal/lag"
	"github.com/fineline/fineline/mail"
)

// Delivery follows each endpoint's cursor in its merchant's change feed.
// A step takes the retries that are due, then a page of new events, then
// (when nothing else waits) a page of a replay, sends them concurrently,
// and saves in one write the new cursor and the messages to retry with
// their attempt counts; a batch of attempt records is saved beside it. A
// crash before that write sends the page again, with the same ids: at
// least once. While an endpoint has MaxPending messages waiting, new
// events wait in the feed (nothing is lost; the cursor holds them), and
// the first success after failures makes every waiting message due.

// AttemptBatches is how many batches of attempt records an endpoint keeps.
const AttemptBatches = 1000

// DisableAfter is how long an endpoint may fail without one success
// before it is disabled.
const DisableAfter = 5 * 24 * time.Hour

// schedule is the wait before each retry of a failed message: at once,
// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h (each ±10%).
func schedule() []time.Duration {
	return []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
		10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}
}

// Retry is a message waiting to be sent again: a ledger event (Subject,
// Seq) or a note (Note).
type Retry struct {
	Subject string
	Seq     int64
	Note    int64
	// Attempts made so far.
	Attempts int
	NextAt   time.Time
	Replay   bool
}

// Replaying is a replay being sent: the ledger's events, then the notes.
type Replaying struct {
	N            int
	Cursor       string
	Since, Until time.Time
	LedgerDone   bool
	NotePos      int64
}

// State is how delivery to an endpoint stands.
type State struct {
	MerchantID string
	EndpointID string
	// Cursor is where the endpoint stands in its merchant's change feed.
	Cursor  string
	Pending []Retry
	// FailingSince is the first failure after the last success.
	FailingSince time.Time
	LastSuccess  time.Time
	// NotBefore slows the endpoint down after a 429, 502, 504 or a
	// Retry-After.
	NotBefore      time.Time
	DisabledAt     time.Time
	DisabledReason string
	// NoteNext is the next note position to send (0: the endpoint's start).
	NoteNext int64
	// ReplayNext is the number of the next replay to take.
	ReplayNext int
	Replaying  *Replaying
	// AttemptBatches counts the batches of attempt records saved.
	AttemptBatches int64
	Delivered      int64
	// GivenUp counts messages whose every retry failed.
	GivenUp int64
}

// Replay is a request to send a window of past events again.
type Replay struct {
	MerchantID, EndpointID string
	N                      int
	Since, Until           time.Time
	// From is the feed cursor before Since; FromNote the first note at or
	// after it.
	From      string
	FromNote  int64
	CreatedAt time.Time
}

// Attempt is one try at sending one message.
type Attempt struct {
	MessageID string
	Type      string
	Subject   string
	Seq       int64
	// N counts the attempts at this message, from 1.
	N       int
	At      time.Time
	Status  int
	Error   string
	Latency time.Duration
	// NextRetry is when it is tried again; zero if delivered or given up.
	NextRetry time.Time
	Replay    bool
}

// Leaser shares endpoints among instances: one delivers each at a time.
type Leaser interface {
	// HoldLease takes or renews the named lease for ttl; false while
	// another owner holds it.
	HoldLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
}

// Dispatcher delivers every endpoint's messages.
type Dispatcher struct {
	Store   Store
	Feed    Feed
	Secrets SecretBox
	Guard   *Guard
	// Leases, when set, shares endpoints with other instances; nil
	// delivers every endpoint from this process (the embedded store).
	Leases Leaser
	Owner  string
	Mailer mail.Sender
	Log    *slog.Logger
	Now    func() time.Time
	// Poll is how often an idle endpoint looks for new events.
	Poll time.Duration
	// Timeout bounds one attempt.
	Timeout time.Duration
	// Concurrency bounds the requests in flight to one endpoint.
	Concurrency int
	// Page bounds the messages of one step; MaxPending the messages
	// waiting for a retry before new events wait in the feed.
	Page, MaxPending int

	// waiting is, per endpoint this instance delivers to, what waits for
	// a retry: what Waiting reports to the metrics.
	waitMu  sync.Mutex
	waiting map[string]waitingState
	// behind is, per endpoint, when the oldest change not yet sent was
	// recorded, as of its latest read of the feed (absent: caught up).
	behind lag.Oldest
}

type waitingState struct {
	retries      int
	failingSince time.Time
}

// Behind reports how far behind the feed the most lagging endpoint this
// instance delivers to is: the age of the oldest change it has not sent
// yet, as of its latest read of a full page of the feed (0: caught up).
func (d *Dispatcher) Behind(now time.Time) time.Duration { return d.behind.Max(now) }

// Waiting reports the messages waiting for a retry at the endpoints this
// instance delivers to, and for how long the longest-failing of them has
// been failing (0 when none is).
func (d *Dispatcher) Waiting(now time.Time) (retries int, failing time.Duration) {
	d.waitMu.Lock()
	defer d.waitMu.Unlock()
	for _, w := range d.waiting {
		retries += w.retries
		if !w.failingSince.IsZero() {
			failing = max(failing, now.Sub(w.failingSince))
		}
	}
	return retries, failing
}

const leaseTTL = 30 * time.Second

// Run delivers until ctx ends: one worker per endpoint, started and
// stopped as endpoints come and go.
func (d *Dispatcher) Run(ctx context.Context) {
	client := d.Guard.Client(d.Timeout)
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	defer wg.Wait()
	type worker struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	running := map[string]worker{}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		eps, err := d.Store.AllEndpoints(ctx)
		if err != nil && ctx.Err() == nil {
			d.Log.Warn("webhook endpoints not listed", "err", err)
		}
		live := map[string]bool{}
		for _, e := range eps {
			key := e.MerchantID + "/" + e.ID
			live[key] = true
			if w, ok := running[key]; ok {
				select {
				case <-w.done: // it stopped (disabled): leave it stopped
				default:
				}
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			w := worker{cancel: cancel, done: make(chan struct{})}
			running[key] = w
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(w.done)
				d.work(wctx, client, e.MerchantID, e.ID)
			}()
		}
		for key, w := range running {
			if !live[key] && err == nil {
				w.cancel()
				delete(running, key)
			}
		}
		select {
		case <-ctx.Done():
			for _, w := range running {
				w.cancel()
			}
			return
		case <-tick.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// work delivers one endpoint until ctx ends, it is deleted or disabled.
func (d *Dispatcher) work(ctx context.Context, client *http.Client, merchantID, id string) {
	var (
		ep              Endpoint
		keys            [][]byte
		st              State
		loaded, holding bool
		epAt, leaseAt   time.Time
		conc            = d.Concurrency
	)
	for ctx.Err() == nil {
		if time.Since(epAt) > 2*time.Second {
			e, err := d.Store.Endpoint(ctx, merchantID, id)
			if apperr.Is(err, apperr.NotFound) {
				return
			}
			if err == nil {
				keys, err = signingKeys(d.Secrets, e, d.Now())
			}
			if err != nil {
				d.Log.Warn("webhook endpoint not read", "endpoint", id, "err", err)
				sleep(ctx, d.Poll)
				continue
			}
			ep, epAt = e, time.Now()
		}
		if d.Leases != nil && time.Since(leaseAt) > leaseTTL/3 {
			ok, err := d.Leases.HoldLease(ctx, "webhook/"+merchantID+"/"+id, d.Owner, leaseTTL)
			if err != nil && ctx.Err() == nil {
				d.Log.Warn("webhook endpoint lease not taken", "endpoint", id, "err", err)
			}
			if err != nil || !ok {
				holding, loaded = false, false
				sleep(ctx, leaseTTL/3)
				continue
			}
			if !holding {
				loaded = false
			}
			holding, leaseAt = true, time.Now()
		}
		if !loaded {
			s, err := d.Store.DeliveryState(ctx, merchantID, id)
			if apperr.Is(err, apperr.NotFound) {
				s, err = State{MerchantID: merchantID, EndpointID: id, Cursor: ep.Start, ReplayNext: 1}, nil
			}
			if err != nil {
				d.Log.Warn("webhook delivery state not read", "endpoint", id, "err", err)
				sleep(ctx, d.Poll)
				continue
			}
			st, loaded = s, true
		}
		if !st.DisabledAt.IsZero() {
			return
		}
		worked, err := d.step(ctx, client, ep, keys, &st, &conc)
		if err != nil {
			if ctx.Err() == nil {
				d.Log.Warn("webhook delivery step failed", "endpoint", id, "err", err)
			}
			loaded = false
			sleep(ctx, d.Poll)
			continue
		}
		if !st.DisabledAt.IsZero() {
			d.tellDisabled(ctx, ep, st)
			return
		}
		if !worked {
			sleep(ctx, d.Poll)
		}
	}
}

// step sends one batch; false if there was nothing to do.
func (d *Dispatcher) step(ctx context.Context, client *http.Client, ep Endpoint, keys [][]byte, st *State, conc *int) (bool, error) {
	now := d.Now()
	if now.Before(st.NotBefore) {
		return false, nil
	}
	var batch []message
	var keepPending []Retry
	for _, r := range st.Pending {
		if r.NextAt.After(now) || len(batch) >= d.Page {
			keepPending = append(keepPending, r)
			continue
		}
		if r.Note > 0 {
			n, err := d.Store.Note(ctx, ep.MerchantID, r.Note)
			if err != nil {
				return false, err
			}
			m, err := newNoteMessage(n, r.Attempts, r.Replay)
			if err != nil {
				return false, err
			}
			batch = append(batch, m)
			continue
		}
		e, err := d.Feed.Event(ctx, ep.MerchantID, r.Subject, r.Seq)
		if apperr.Is(err, apperr.NotFound) {
			continue // the event is gone (its subject erased): nothing to tell
		}
		if err != nil {
			return false, err
		}
		m, err := newMessage(e, r.Attempts, r.Replay)
		if err != nil {
			return false, err
		}
		batch = append(batch, m)
	}
	cursor := st.Cursor
	if len(st.Pending) < d.MaxPending && len(batch) < d.Page {
		after, err := consent.ParseChangesCursor(ep.MerchantID, st.Cursor)
		if err != nil {
			return false, err
		}
		want := d.Page - len(batch)
		page, err := d.Feed.Changes(ctx, ep.MerchantID, after, want, func(e consent.Event) bool { return ep.Wants(e.Type()) })
		if err != nil {
			return false, err
		}
		// A full page means more waits behind it: the endpoint is behind
		// by at least this page's first change.
		if len(page.Events) >= want && len(page.Events) > 0 {
			d.behind.Note(ep.MerchantID+"/"+ep.ID, page.Events[0].RecordedAt)
		} else {
			d.behind.Note(ep.MerchantID+"/"+ep.ID, time.Time{})
		}
		for _, e := range page.Events {
			m, err := newMessage(e, 0, false)
			if err != nil {
				return false, err
			}
			batch = append(batch, m)
		}
		cursor = page.Next.String()
	}
	noteNext := st.NoteNext
	if noteNext == 0 {
		noteNext = max(ep.StartNote, 1)
	}
	if len(st.Pending) < d.MaxPending && len(batch) < d.Page {
		notes, next, err := readNotes(ctx, d.Store, ep.MerchantID, noteNext, d.Page-len(batch))
		if err != nil {
			return false, err
		}
		for _, n := range notes {
			if !ep.Wants(n.Type) {
				continue
			}
			m, err := newNoteMessage(n, 0, false)
			if err != nil {
				return false, err
			}
			batch = append(batch, m)
		}
		noteNext = next
	}
	replayMoved := false
	if len(batch) == 0 && len(st.Pending) < d.MaxPending {
		var err error
		if batch, replayMoved, err = d.replayPage(ctx, ep, st); err != nil {
			return false, err
		}
	}
	if len(batch) == 0 && cursor == st.Cursor && noteNext == st.NoteNext && !replayMoved {
		return false, nil
	}
	results := d.deliver(ctx, client, ep, keys, batch, *conc)
	d.record(ep, st, batch, results, keepPending, now, conc)
	st.Cursor, st.NoteNext = cursor, noteNext
	if len(batch) > 0 {
		attempts := make([]Attempt, len(batch))
		for i := range batch {
			attempts[i] = results[i].attempt
		}
		if err := d.Store.SaveAttempts(ctx, ep.MerchantID, ep.ID, st.AttemptBatches, attempts); err != nil {
			return false, err
		}
		st.AttemptBatches++
	}
	return true, d.Store.SaveDeliveryState(ctx, *st)
}

// replayPage takes the next page of the replay under way, or starts the
// next one asked for.
func (d *Dispatcher) replayPage(ctx context.Context, ep Endpoint, st *State) ([]message, bool, error) {
	if st.Replaying == nil {
		r, err := d.Store.Replay(ctx, ep.MerchantID, ep.ID, max(st.ReplayNext, 1))
		if apperr.Is(err, apperr.NotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		st.Replaying = &Replaying{N: r.N, Cursor: r.From, Since: r.Since, Until: r.Until, NotePos: r.FromNote}
		st.ReplayNext = r.N + 1
	}
	rp := st.Replaying
	if rp.LedgerDone {
		notes, next, err := readNotes(ctx, d.Store, ep.MerchantID, max(rp.NotePos, 1), d.Page)
		if err != nil {
			return nil, false, err
		}
		var batch []message
		done := len(notes) < d.Page
		for _, n := range notes {
			if n.At.After(rp.Until) {
				done = true
				break
			}
			if ep.Wants(n.Type) && !n.At.Before(rp.Since) {
				m, err := newNoteMessage(n, 0, true)
				if err != nil {
					return nil, false, err
				}
				batch = append(batch, m)
			}
		}
		rp.NotePos = next
		if done {
			st.Replaying = nil
		}
		return batch, true, nil
	}
	after, err := consent.ParseChangesCursor(ep.MerchantID, rp.Cursor)
	if err != nil {
		return nil, false, err
	}
	past := false
	page, err := d.Feed.Changes(ctx, ep.MerchantID, after, d.Page, func(e consent.Event) bool {
		if e.RecordedAt.After(rp.Until) {
			past = true
		}
		return !past && !e.RecordedAt.Before(rp.Since) && ep.Wants(e.Type())
	})
	if err != nil {
		return nil, false, err
	}
	var batch []message
	for _, e := range page.Events {
		m, err := newMessage(e, 0, true)
		if err != nil {
			return nil, false, err
		}
		batch = append(batch, m)
	}
	rp.Cursor = page.Next.String()
	if past || (len(page.Events) == 0 && !page.More) {
		rp.LedgerDone = true
	}
	return batch, true, nil
}

// result is how one attempt went.
type result struct {
	attempt    Attempt
	ok         bool
	retryAfter time.Duration
}

// deliver sends the batch with up to conc requests in flight.
func (d *Dispatcher) deliver(ctx context.Context, client *http.Client, ep Endpoint, keys [][]byte, batch []message, conc int) []result {
	out := make([]result, len(batch))
	u, err := url.Parse(ep.URL)
	if err != nil {
		for i, m := range batch {
			out[i] = result{attempt: m.attempt(d.Now(), 0, "the endpoint's url does not parse", 0)}
		}
		return out
	}
	sem := make(chan struct{}, max(conc, 1))
	var wg sync.WaitGroup
	for i, m := range batch {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = d.send(withScheme(ctx, u), client, ep, keys, m)
		}()
	}
	wg.Wait()
	return out
}

func (m message) attempt(at time.Time, status int, errText string, latency time.Duration) Attempt {
	return Attempt{MessageID: m.id, Type: m.typ, Subject: m.event.SubjectID, Seq: m.event.Seq, N: m.attempts + 1, At: at.UTC(),
		Status: status, Error: errText, Latency: latency, Replay: m.replay}
}

// send makes one attempt.
func (d *Dispatcher) send(ctx context.Context, client *http.Client, ep Endpoint, keys [][]byte, m message) result {
	at := d.Now()
	ts := at.Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(m.body))
	if err != nil {
		return result{attempt: m.attempt(at, 0, "request not built", 0)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Fineline-Webhooks/1")
	req.Header.Set("webhook-id", m.id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(keys, m.id, ts, m.body))
	start := time.Now()
	resp, err := client.Do(req)
	latency := time.Since(start)
	if err != nil {
		return result{attempt: m.attempt(at, 0, attemptError(err), latency)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	r := result{attempt: m.attempt(at, resp.StatusCode, "", latency)}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		r.ok = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.attempt.Error = "redirects are not followed"
	default:
		r.attempt.Error = http.StatusText(resp.StatusCode)
	}
	if !r.ok {
		r.retryAfter = retryAfter(resp, at)
		if r.retryAfter == 0 && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout) {
			r.retryAfter = 5 * time.Second
		}
	}
	return r
}

// attemptError says why an attempt got no answer, without the URL (which
// the merchant knows) or anything it carried.
func attemptError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timed out"
		}
		err = ue.Err
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), at
// most an hour.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Hour)
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// record applies a batch's results to the state: retries, the failing
// streak, slowing down, disabling.
func (d *Dispatcher) record(ep Endpoint, st *State, batch []message, results []result, keepPending []Retry, now time.Time, conc *int) {
	sched := schedule()
	anyOK, anyFailed := false, false
	var slow time.Duration
	var failed []Retry
	for i, m := range batch {
		r := &results[i]
		if r.ok {
			anyOK = true
			st.Delivered++
			continue
		}
		anyFailed = true
		if r.attempt.Status == http.StatusGone {
			st.DisabledAt, st.DisabledReason = now.UTC(), "the receiver answered 410 Gone"
		}
		n := m.attempts + 1
		if n-1 < len(sched) {
			next := now.Add(jitter(sched[n-1])).UTC()
			failed = append(failed, Retry{Subject: m.event.SubjectID, Seq: m.event.Seq, Note: m.note, Attempts: n, NextAt: next, Replay: m.replay})
			r.attempt.NextRetry = next
		} else {
			st.GivenUp++
		}
		slow = max(slow, r.retryAfter)
	}
	if anyOK {
		if !st.FailingSince.IsZero() {
			// The receiver is back: what waits is due now.
			for i := range keepPending {
				keepPending[i].NextAt = now.UTC()
			}
		}
		st.FailingSince, st.LastSuccess = time.Time{}, now.UTC()
	} else if anyFailed && st.FailingSince.IsZero() {
		st.FailingSince = now.UTC()
	}
	st.Pending = append(keepPending, failed...)
	d.waitMu.Lock()
	if d.waiting == nil {
		d.waiting = map[string]waitingState{}
	}
	d.waiting[ep.MerchantID+"/"+ep.ID] = waitingState{retries: len(st.Pending), failingSince: st.FailingSince}
	d.waitMu.Unlock()
	if slow > 0 {
		st.NotBefore = now.Add(slow).UTC()
		*conc = max(1, *conc/2)
	} else if anyOK {
		*conc = min(d.Concurrency, *conc+*conc/4+1)
	}
	if st.DisabledAt.IsZero() && !st.FailingSince.IsZero() && now.Sub(st.FailingSince) >= DisableAfter {
		st.DisabledAt, st.DisabledReason = now.UTC(), fmt.Sprintf("no delivery succeeded for %s", DisableAfter)
	}
}

// tellDisabled emails the endpoint's contact that it was disabled.
func (d *Dispatcher) tellDisabled(ctx context.Context, ep Endpoint, st State) {
	d.Log.Warn("webhook endpoint disabled", "merchant", ep.MerchantID, "endpoint", ep.ID, "reason", st.DisabledReason)
	if ep.ContactEmail == "" || d.Mailer == nil {
		return
	}
	label := ep.Label
	if label == "" {
		label = ep.ID
	}
	text := fmt.Sprintf("Fineline stopped sending changes to your webhook endpoint %q (%s).\n\nWhy: %s.\n\n"+
		"Nothing is lost: the events stay in your ledger. When the receiver works again, register it again and ask for a replay of the window you missed:\n"+
		"POST /v1/webhook-endpoints/{id}/replay {\"since\":\"%s\",\"until\":\"...\"}\n",
		label, ep.URL, st.DisabledReason, st.LastSuccess.Format(time.RFC3339))
	if err := d.Mailer.Send(ctx, mail.Message{To: ep.ContactEmail, Subject: "Webhook endpoint disabled: " + label, Text: text}); err != nil {
		d.Log.Warn("webhook disabled notice not sent", "endpoint", ep.ID, "err", err)
	}
}
