// Package every runs the periodic writes of what is gathered in memory:
// a flush every interval (and when woken), and a last one, on a deadline
// of its own, when the process stops.
package every

import (
	"context"
	"time"
)

// Flush calls flush every interval, and whenever wake fires (nil: never),
// until ctx ends; then once more, with last to finish in.
func Flush(ctx context.Context, interval, last time.Duration, wake <-chan struct{}, flush func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), last)
			flush(stop)
			cancel()
			return
		case <-t.C:
		case <-wake:
		}
		flush(ctx)
	}
}

// Restore puts back into pending (made when nil) the counts a write did not
// take: a counter held already takes its count, a new one only while
// pending holds fewer than max. It returns the count it dropped.
func Restore[K comparable](pending *map[K]int64, batch map[K]int64, max int) (dropped int64) {
	if *pending == nil {
		*pending = make(map[K]int64, len(batch))
	}
	for k, n := range batch {
		if _, ok := (*pending)[k]; ok || len(*pending) < max {
			(*pending)[k] += n
		} else {
			dropped += n
		}
	}
	return dropped
}
