package reach

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"
)

func TestSignals(t *testing.T) {
	ok := []struct {
		s    Signal
		want []string
	}{
		{Signal{Event: Shown}, []string{"shown"}},
		{Signal{Event: Choose}, []string{"choose1"}},
		{Signal{Event: Choice, Button: Accept, Layer: 1, AfterBanner: true, Clicks: 1, Granted: true}, []string{"accept1", "chose", "grant_widget_1"}},
		{Signal{Event: Choice, Button: Decline, Layer: 1, AfterBanner: true, Clicks: 1, Withdrew: true}, []string{"decline1", "chose", "withdraw_widget_1"}},
		{Signal{Event: Choice, Button: Save, Layer: 2, AfterBanner: true, Clicks: 3, Granted: true, Withdrew: true}, []string{"chose", "grant_widget_3", "withdraw_widget_3"}},
		{Signal{Event: Choice, Button: Accept, Layer: 2, Clicks: 250, Granted: true}, []string{"grant_widget_20"}},
		{Signal{Event: Choice, Button: Save, Layer: 2, Clicks: 2}, nil},
	}
	for _, c := range ok {
		if err := c.s.Validate(); err != nil {
			t.Errorf("%+v: %v", c.s, err)
		}
		if got := c.s.counters(); !slices.Equal(got, c.want) {
			t.Errorf("%+v counts %v, want %v", c.s, got, c.want)
		}
	}
	for _, s := range []Signal{
		{},
		{Event: "seen"},
		{Event: Shown, Clicks: 1},
		{Event: Choose, Layer: 1},
		{Event: Choice, Button: Save, Layer: 1, Clicks: 1},
		{Event: Choice, Button: "ok", Layer: 2, Clicks: 1},
		{Event: Choice, Button: Accept, Layer: 3, Clicks: 1},
		{Event: Choice, Button: Accept, Layer: 1, Clicks: 0},
		{Event: Choice, Button: Accept, Layer: 1, Clicks: 10_001},
		{Event: Choice, Button: Decline, Layer: 1, Clicks: 1, Granted: true},
		{Event: Choice, Button: Accept, Layer: 1, Clicks: 1, Withdrew: true},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v was taken", s)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   map[int]int64
		want int
		n    int64
	}{
		{nil, 0, 0},
		{map[int]int64{1: 1}, 1, 1},
		{map[int]int64{1: 1, 3: 1}, 1, 2},
		{map[int]int64{1: 1, 3: 2}, 3, 3},
		{map[int]int64{2: 5, 7: 4, 20: 1}, 2, 10},
		{map[int]int64{2: 4, 7: 5, 20: 1}, 7, 10},
	} {
		if m, n := Median(c.in); m != c.want || n != c.n {
			t.Errorf("Median(%v) = %d, %d; want %d, %d", c.in, m, n, c.want, c.n)
		}
	}
}

type memStore struct {
	fail bool
	got  map[Key]int64
}

func (m *memStore) AddReachCounts(_ context.Context, counts map[Key]int64) error {
	if m.fail {
		return errors.New("down")
	}
	if m.got == nil {
		m.got = map[Key]int64{}
	}
	for k, n := range counts {
		m.got[k] += n
		delete(counts, k)
	}
	return nil
}

func (m *memStore) ReachMonth(context.Context, string, string) (map[int]map[string]int64, error) {
	return nil, nil
}

// Counts a write could not take are kept for the next, and counted once;
// past Max, new counters are dropped rather than held.
func TestCounterKeepsWhatWasNotWritten(t *testing.T) {
	st := &memStore{fail: true}
	c := &Counter{Store: st, Interval: time.Hour, Max: 3, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	at := time.Date(2027, 3, 5, 23, 30, 0, 0, time.FixedZone("Tokyo", 9*3600))
	c.Add("m1", at, Signal{Event: Shown})
	c.Add("m1", at, Signal{Event: Shown})
	c.Flush(context.Background())
	c.Add("m1", at, Signal{Event: Choice, Button: Accept, Layer: 1, AfterBanner: true, Clicks: 1, Granted: true})
	if c.Pending() != 3 {
		t.Fatalf("pending %d", c.Pending())
	}
	st.fail = false
	c.Flush(context.Background())
	want := map[Key]int64{
		{MerchantID: "m1", Month: "2027-03", Day: 5, Name: "shown"}:   2,
		{MerchantID: "m1", Month: "2027-03", Day: 5, Name: "accept1"}: 1,
		{MerchantID: "m1", Month: "2027-03", Day: 5, Name: "chose"}:   1,
	}
	if len(st.got) != len(want) {
		t.Fatalf("wrote %v", st.got)
	}
	for k, n := range want {
		if st.got[k] != n {
			t.Errorf("%+v = %d, want %d", k, st.got[k], n)
		}
	}
	if c.Pending() != 0 {
		t.Errorf("pending %d after a write", c.Pending())
	}
}
