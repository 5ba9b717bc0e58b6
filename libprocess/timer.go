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

// numQuantiles is how many percentiles a Timer publishes.
const numQuantiles = 6

// timerQuantile is one of the percentiles libprocess publishes for a time
// series: its /metrics/snapshot suffix and its quantile.
type timerQuantile struct {
	suffix string
	q      float64
}

// timerQuantiles returns the percentiles libprocess publishes for a time
// series.
func timerQuantiles() [numQuantiles]timerQuantile {
	return [numQuantiles]timerQuantile{
		{"/p50", 0.5}, {"/p90", 0.9}, {"/p95", 0.95}, {"/p99", 0.99}, {"/p999", 0.999}, {"/p9999", 0.9999},
	}
}

// Timer is a duration metric in the form of libprocess' Timer<Milliseconds>:
// registered as "<name>", it shows in /metrics/snapshot as "<name>_ms",
// the last value recorded in milliseconds, and, once it holds at least two
// values (as libprocess' Statistics), "<name>_ms/count", "/min", "/max",
// "/p50", "/p90", "/p95", "/p99", "/p999" and "/p9999" over its window:
// the last 1000 values (count is how many values the window holds).
// Percentiles interpolate linearly between neighbouring values, as
// libprocess' Statistics does. In /metrics/prometheus it is a summary in
// seconds: the same quantiles over the window, and the count and sum of
// every value ever recorded. Memory is fixed: one window per timer.
// Record is safe for concurrent use.
type Timer struct {
	mu     sync.Mutex
	window [timerWindow]float64 // milliseconds, a ring
	n      int                  // values held, at most timerWindow
	next   int                  // ring position of the next value
	last   float64
	any    bool
	total  uint64  // values ever recorded
	sumMs  float64 // their sum, milliseconds
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
	t.total++
	t.sumMs += ms
	t.mu.Unlock()
}

// timerStats is what a timer shows at one moment, in milliseconds.
type timerStats struct {
	any       bool    // a value was recorded
	last      float64 // the last value
	n         int     // values in the window
	min, max  float64 // over the window
	quantiles [numQuantiles]float64
	total     uint64  // values ever recorded
	sum       float64 // their sum
}

// stats reads the timer, sorting its window in scratch, which it returns
// for reuse.
func (t *Timer) stats(scratch []float64) (timerStats, []float64) {
	t.mu.Lock()
	st := timerStats{any: t.any, last: t.last, n: t.n, total: t.total, sum: t.sumMs}
	scratch = append(scratch[:0], t.window[:t.n]...)
	t.mu.Unlock()
	if len(scratch) == 0 {
		return st, scratch
	}
	slices.Sort(scratch)
	st.min, st.max = scratch[0], scratch[len(scratch)-1]
	for i, pc := range timerQuantiles() {
		st.quantiles[i] = percentile(scratch, pc.q)
	}
	return st, scratch
}

// snapshotInto adds the timer's metrics under base ("<name>_ms") to out:
// nothing before the first value, the statistics from two values on.
func (st *timerStats) snapshotInto(base string, out map[string]float64) {
	if !st.any {
		return
	}
	out[base] = st.last
	if st.n < 2 {
		return
	}
	out[base+"/count"] = float64(st.n)
	out[base+"/min"] = st.min
	out[base+"/max"] = st.max
	for i, pc := range timerQuantiles() {
		out[base+pc.suffix] = st.quantiles[i]
	}
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
