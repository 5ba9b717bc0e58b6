package libprocess

import (
	"math"
	"slices"
	"sync"
	"time"
)

// timerWindow is how many of its most recent values a Timer keeps for its
// statistics, as the capacity of libprocess' TimeSeries.
const timerWindow = 1000

// Timer is a duration metric in the form of libprocess' Timer<Milliseconds>:
// registered as "<name>", it shows in /metrics/snapshot as "<name>_ms",
// the last value recorded in milliseconds, and, once it holds at least two
// values (as libprocess' Statistics), "<name>_ms/count", "/min", "/max",
// "/p50", "/p90", "/p95", "/p99", "/p999" and "/p9999" over its window:
// the last 1000 values (count is how many values the window holds).
// Percentiles interpolate linearly between neighbouring values, as
// libprocess' Statistics does. Memory is fixed: one window per timer.
// Record is safe for concurrent use.
type Timer struct {
	mu     sync.Mutex
	window [timerWindow]float64 // milliseconds, a ring
	n      int                  // values held, at most timerWindow
	next   int                  // ring position of the next value
	last   float64
	any    bool
}

// Record adds one duration.
func (t *Timer) Record(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	t.mu.Lock()
	t.window[t.next] = ms
	t.next = (t.next + 1) % timerWindow
	if t.n < timerWindow {
		t.n++
	}
	t.last, t.any = ms, true
	t.mu.Unlock()
}

// snapshotInto adds the timer's metrics under base ("<name>_ms") to out,
// sorting its window in scratch, which it returns for reuse.
func (t *Timer) snapshotInto(base string, out map[string]float64, scratch []float64) []float64 {
	t.mu.Lock()
	if !t.any {
		t.mu.Unlock()
		return scratch
	}
	out[base] = t.last
	scratch = append(scratch[:0], t.window[:t.n]...)
	t.mu.Unlock()
	if len(scratch) < 2 {
		return scratch
	}
	slices.Sort(scratch)
	out[base+"/count"] = float64(len(scratch))
	out[base+"/min"] = scratch[0]
	out[base+"/max"] = scratch[len(scratch)-1]
	// The statistics libprocess publishes for a time series.
	percentiles := [...]struct {
		suffix string
		p      float64
	}{
		{"/p50", 0.5}, {"/p90", 0.9}, {"/p95", 0.95}, {"/p99", 0.99}, {"/p999", 0.999}, {"/p9999", 0.9999},
	}
	for _, pc := range percentiles {
		out[base+pc.suffix] = percentile(scratch, pc.p)
	}
	return scratch
}

// percentile of sorted values, interpolating linearly between the two
// values around position p*(n-1).
func percentile(sorted []float64, p float64) float64 {
	pos := p * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	if lo == hi {
		return sorted[lo]
	}
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}
