// Package reach counts what a merchant's consent banner met, without
// identifying anyone: how often it was shown, which button of its first
// layer was pressed, whether a choice followed, and how many clicks a grant
// and a withdrawal took in the widget. A signal carries no device id,
// token, cookie or address, and nothing of it is stored but counters per
// merchant and day (in the merchant's time zone), gathered in memory and
// written every Interval.
package reach

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/internal/every"
)

// Event is what a signal reports.
type Event string

// Events a widget reports.
const (
	// Shown: the banner (the first layer) came up on a page view.
	Shown Event = "shown"
	// Choose: its "Choose" button opened the second layer.
	Choose Event = "choose"
	// Choice: a button saved a choice (Button says which).
	Choice Event = "choice"
)

// Button is the button that saved a choice.
type Button string

// Buttons that save a choice.
const (
	Accept  Button = "accept"
	Decline Button = "decline"
	Save    Button = "save"
)

// MaxClicks is the most clicks a choice is counted with: more count as
// this many.
const MaxClicks = 20

// Signal is one report from a widget.
type Signal struct {
	Event Event
	// The rest is set on a Choice only. Layer is 1 (the banner) or 2 (the
	// dialog); AfterBanner says the banner was shown on that page view.
	Button      Button
	Layer       int
	AfterBanner bool
	// Clicks counts the clicks in the widget on that page view up to and
	// including the one that saved; Granted and Withdrew say whether the
	// choice switched a purpose on, or one that was on off.
	Clicks            int
	Granted, Withdrew bool
}

// Validate refuses a signal that does not make sense.
func (s Signal) Validate() error {
	bad := func(format string, args ...any) error {
		return apperr.New(apperr.Invalid, format, args...).WithDetail("invalid_signal")
	}
	switch s.Event {
	case Shown, Choose:
		if s != (Signal{Event: s.Event}) {
			return bad("a %q signal carries nothing else", s.Event)
		}
		return nil
	case Choice:
	default:
		return bad("event must be shown, choose or choice")
	}
	switch s.Button {
	case Accept, Decline:
	case Save:
		if s.Layer == 1 {
			return bad("the banner has no save button: layer must be 2")
		}
	default:
		return bad("button must be accept, decline or save")
	}
	if s.Layer != 1 && s.Layer != 2 {
		return bad("layer must be 1 (the banner) or 2 (the dialog)")
	}
	if s.Layer == 1 && !s.AfterBanner {
		return bad("a choice on the banner follows the banner: after_banner must be true")
	}
	if s.Button == Decline && s.Granted || s.Button == Accept && s.Withdrew {
		return bad("%s cannot have switched a purpose that way", s.Button)
	}
	if s.Clicks < 1 || s.Clicks > 10_000 {
		return bad("clicks must be between 1 and 10000")
	}
	return nil
}

// Counter names, as stored.
const (
	nameShown         = "shown"
	nameAccept        = "accept1"
	nameDecline       = "decline1"
	nameChoose        = "choose1"
	nameChose         = "chose"
	prefixGrantClicks = "grant"
	prefixDropClicks  = "withdraw"
)

// counters names the counters a valid signal adds one to.
func (s Signal) counters() []string {
	switch s.Event {
	case Shown:
		return []string{nameShown}
	case Choose:
		return []string{nameChoose}
	}
	var out []string
	if s.Layer == 1 {
		out = append(out, map[Button]string{Accept: nameAccept, Decline: nameDecline}[s.Button])
	}
	if s.AfterBanner {
		out = append(out, nameChose)
	}
	return append(out, clickCounters(ChannelWidget, s.Clicks, s.Granted, s.Withdrew)...)
}

// Channels whose choices count clicks: the widget counts every click on
// its buttons and switches; the center (which works without script) the
// switches a save changed and the button that saved.
const (
	ChannelWidget = "widget"
	ChannelCenter = "center"
)

// clickCounters names the counters of a choice that took clicks on
// channel and switched a purpose on (granted) or one that was on off.
func clickCounters(channel string, clicks int, granted, withdrew bool) []string {
	n := "_" + channel + "_" + strconv.Itoa(min(max(clicks, 1), MaxClicks))
	var out []string
	if granted {
		out = append(out, prefixGrantClicks+n)
	}
	if withdrew {
		out = append(out, prefixDropClicks+n)
	}
	return out
}

// Switched says whether decisions switched a purpose on (from anything
// but a grant) or one that was on off: what a choice's clicks count for.
func Switched(decided []consent.Event) (granted, withdrew bool) {
	for _, e := range decided {
		granted = granted || e.State == consent.Granted && e.Prev != consent.Granted
		withdrew = withdrew || e.Prev == consent.Granted && e.State != consent.Granted
	}
	return granted, withdrew
}

// Key names one counter of one merchant's day.
type Key struct {
	MerchantID string
	// Month is "2006-01", Day its day.
	Month string
	Day   int
	Name  string
}

// Store adds counts and reads them back.
type Store interface {
	// AddReachCounts adds each count to its counter and deletes from counts
	// each one it wrote: on an error, what is left was not written.
	AddReachCounts(ctx context.Context, counts map[Key]int64) error
	// ReachMonth returns a merchant's counters of a month by day and name.
	ReachMonth(ctx context.Context, merchantID, month string) (map[int]map[string]int64, error)
}

// Counter gathers counts in memory and writes them every Interval.
type Counter struct {
	Store    Store
	Interval time.Duration
	// Max bounds the counters held between writes; past it signals are
	// dropped (and logged), so memory stays bounded if the store is down.
	Max int
	Log *slog.Logger

	mu      sync.Mutex
	pending map[Key]int64
	dropped int64
}

// Add counts a valid signal on the merchant's day of at (a time in the
// merchant's zone).
func (c *Counter) Add(merchantID string, at time.Time, s Signal) { c.add(merchantID, at, s.counters()) }

// AddChoice counts a choice made on channel (other than the widget, whose
// signals say it) with the clicks it took.
func (c *Counter) AddChoice(merchantID string, at time.Time, channel string, clicks int, granted, withdrew bool) {
	c.add(merchantID, at, clickCounters(channel, clicks, granted, withdrew))
}

func (c *Counter) add(merchantID string, at time.Time, names []string) {
	if len(names) == 0 {
		return
	}
	month, day := at.Format("2006-01"), at.Day()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[Key]int64{}
	}
	for _, name := range names {
		k := Key{MerchantID: merchantID, Month: month, Day: day, Name: name}
		if _, ok := c.pending[k]; ok || len(c.pending) < c.Max {
			c.pending[k]++
		} else {
			c.dropped++
		}
	}
}

// Run writes the counts every Interval until ctx ends, then what is left.
func (c *Counter) Run(ctx context.Context) {
	every.Flush(ctx, c.Interval, 10*time.Second, nil, c.Flush)
}

// Flush writes the counts gathered so far; those a store error left
// unwritten are kept for the next write.
func (c *Counter) Flush(ctx context.Context) {
	c.mu.Lock()
	batch, dropped := c.pending, c.dropped
	c.pending, c.dropped = nil, 0
	c.mu.Unlock()
	if dropped > 0 {
		c.Log.Warn("banner counts dropped: the store took too long to take them", "dropped", dropped)
	}
	if len(batch) == 0 {
		return
	}
	if err := c.Store.AddReachCounts(ctx, batch); err != nil {
		c.Log.Warn("banner counts not written; retrying with the next", "counters", len(batch), "err", err)
		c.mu.Lock()
		c.dropped += every.Restore(&c.pending, batch, c.Max)
		c.mu.Unlock()
	}
}

// Pending is how many counters are held, not yet written.
func (c *Counter) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Day is one day's counts.
type Day struct {
	Shown, Accept, Decline, Choose, Chose int64
	// GrantClicks and WithdrawClicks count choices by channel and clicks.
	GrantClicks, WithdrawClicks map[string]map[int]int64
}

// DayOf reads a day's counters.
func DayOf(names map[string]int64) Day {
	d := Day{Shown: names[nameShown], Accept: names[nameAccept], Decline: names[nameDecline], Choose: names[nameChoose],
		Chose: names[nameChose], GrantClicks: map[string]map[int]int64{}, WithdrawClicks: map[string]map[int]int64{}}
	for name, n := range names {
		kind, rest, _ := strings.Cut(name, "_")
		channel, clicks, _ := strings.Cut(rest, "_")
		k, err := strconv.Atoi(clicks)
		if err != nil || channel == "" {
			continue
		}
		into := map[string]map[string]map[int]int64{prefixGrantClicks: d.GrantClicks, prefixDropClicks: d.WithdrawClicks}[kind]
		if into == nil {
			continue
		}
		if into[channel] == nil {
			into[channel] = map[int]int64{}
		}
		into[channel][k] += n
	}
	return d
}

// Add adds o's counts to d's.
func (d *Day) Add(o Day) {
	d.Shown += o.Shown
	d.Accept += o.Accept
	d.Decline += o.Decline
	d.Choose += o.Choose
	d.Chose += o.Chose
	for _, into := range []struct{ to, from map[string]map[int]int64 }{{d.GrantClicks, o.GrantClicks}, {d.WithdrawClicks, o.WithdrawClicks}} {
		for ch, m := range into.from {
			if into.to[ch] == nil {
				into.to[ch] = map[int]int64{}
			}
			for k, n := range m {
				into.to[ch][k] += n
			}
		}
	}
}

// Median is the median of a count of clicks (the lower middle value of an
// even number), and how many were counted; 0, 0 when none were.
func Median(byClicks map[int]int64) (median int, n int64) {
	for _, k := range byClicks {
		n += k
	}
	if n == 0 {
		return 0, 0
	}
	var seen int64
	for clicks := 1; clicks <= MaxClicks; clicks++ {
		if seen += byClicks[clicks]; 2*seen >= n {
			return clicks, n
		}
	}
	return MaxClicks, n
}
