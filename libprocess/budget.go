package libprocess

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// byteBudget counts bytes held against a maximum, for readers that may
// wait: Config.InboundBodyBudget is one budget for the bodies every
// connection is reading or has delivered to a mailbox; a reader that
// needs more than is left waits (acquire), without reading its socket,
// until others give bytes back or its deadline passes. (Outbound, a send
// that does not fit fails at once, as libprocess never blocks a sender:
// see sendBudget.)
type byteBudget struct {
	max   int64
	gauge *atomic.Int64 // bytes held, shown in /metrics/snapshot; nil: not shown
	waits *atomic.Int64 // acquires that had to wait, counted as they start waiting; nil for budgets only tried

	mu      sync.Mutex
	used    int64
	waiters int
	freed   chan struct{} // closed and replaced when bytes come back while someone waits
}

func newByteBudget(max int64, gauge, waits *atomic.Int64) *byteBudget {
	return &byteBudget{max: max, gauge: gauge, waits: waits, freed: make(chan struct{})}
}

// budgetResult says how an acquire went.
type budgetResult int

const (
	budgetGranted budgetResult = iota // the bytes are held
	budgetTimeout                     // the deadline passed first
	budgetStopped                     // stop was closed first
)

// acquire takes n bytes, waiting until deadline (zero: no deadline) or
// until stop is closed.
func (b *byteBudget) acquire(n int64, deadline time.Time, stop <-chan struct{}) budgetResult {
	if n <= 0 {
		return budgetGranted
	}
	waited := false
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		b.mu.Lock()
		if b.used+n <= b.max {
			b.used += n
			if waited {
				b.waiters--
			}
			b.mu.Unlock()
			b.addGauge(n)
			return budgetGranted
		}
		if !waited {
			b.waiters++
			waited = true
			if b.waits != nil {
				b.waits.Add(1)
			}
		}
		freed := b.freed
		b.mu.Unlock()
		if timer == nil && !deadline.IsZero() {
			timer = time.NewTimer(time.Until(deadline))
		}
		var expired <-chan time.Time
		if timer != nil {
			expired = timer.C
		}
		select {
		case <-freed:
		case <-expired:
			b.giveUp()
			return budgetTimeout
		case <-stop:
			b.giveUp()
			return budgetStopped
		}
	}
}

func (b *byteBudget) addGauge(n int64) {
	if b.gauge != nil {
		b.gauge.Add(n)
	}
}

func (b *byteBudget) giveUp() {
	b.mu.Lock()
	b.waiters--
	b.mu.Unlock()
}

// release gives back n bytes taken by acquire.
func (b *byteBudget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.waiters > 0 {
		close(b.freed)
		b.freed = make(chan struct{})
	}
	b.mu.Unlock()
	b.addGauge(-n)
}

// errBudget is the text of the 503 a request gets when the body budget
// stays exhausted until its deadline.
const errBudget = "inbound body budget exhausted"

// takeBudget takes n bytes of the body budget for a request from peer,
// waiting until deadline, and counts waits and refusals.
func (s *server) takeBudget(n int64, deadline time.Time, peer net.Addr) bool {
	switch s.budget.acquire(n, deadline, s.closed) {
	case budgetGranted:
		return true
	case budgetTimeout:
		s.rt.metrics.bodyBudgetRefused.Add(1)
		s.rt.log.Warn().Stringer("peer", peer).Int64("budget", s.budget.max).Msg("refusing request: inbound body budget exhausted until the request deadline")
	}
	return false
}
