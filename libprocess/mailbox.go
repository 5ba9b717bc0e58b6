package libprocess

import (
	"sync"
	"time"
)

type eventKind uint8

const (
	evMessage eventKind = iota + 1
	evHTTP
	evDispatch
	evExited
	evTerminate
	evInitialize // never queued: the loop serves it first
	evFinalize   // never queued: shutdown serves it last
)

// String names the kind in logs.
func (k eventKind) String() string {
	switch k {
	case evMessage:
		return "message"
	case evHTTP:
		return "HTTP request"
	case evDispatch:
		return "dispatched function"
	case evExited:
		return "exited handler"
	case evTerminate:
		return "terminate"
	case evInitialize:
		return "initialize"
	case evFinalize:
		return "finalize"
	}
	return "unknown"
}

// event is one entry of a mailbox. It is stored by value so enqueueing a
// message allocates nothing beyond the message body.
type event struct {
	kind eventKind
	msg  Message      // evMessage
	held int64        // evMessage: InboundBodyBudget bytes its body holds until handled
	http *httpEvent   // evHTTP
	fn   func()       // evDispatch
	upid UPID         // evExited
	done chan<- error // evDispatch: optional completion signal
}

// detail is what a log says about the event besides its kind.
func (e *event) detail() string {
	switch e.kind {
	case evMessage:
		return e.msg.Name
	case evHTTP:
		return e.http.req.URL.Path
	case evExited:
		return e.upid.ID
	}
	return ""
}

// mailbox is a bounded multi-producer, single-consumer event queue. The
// consumer swaps the pending slice for its own empty one, so steady-state
// enqueue and drain allocate nothing.
//
// It also holds the process' turn (see turn.go), under the same lock,
// since who may take the turn depends on what is queued.
type mailbox struct {
	mu        sync.Mutex
	pending   []event
	capacity  int
	closed    bool
	terminate bool          // a terminate event is pending
	turn      turn          // who serves events now (turn.go)
	wake      chan struct{} // capacity 1: "pending is non-empty"
	space     chan struct{} // closed by take when producers wait for room
	// onFree, if set (under mu), is called without the lock each time
	// the turn becomes free with nothing queued; tests use it to know the
	// next request serves inline.
	onFree func()
	// queuedOnly, if set (under mu), makes tryInline fail, so every event
	// goes through the loop; benchmarks use it to measure what serving
	// inline buys.
	queuedOnly bool
}

// newMailbox returns a mailbox whose turn the loop holds; it gives it up
// once the process is initialized and nothing is queued.
func newMailbox(capacity int) *mailbox {
	return &mailbox{capacity: capacity, wake: make(chan struct{}, 1), turn: turnLoop}
}

// put enqueues e. It fails with ErrTerminated after close and with
// ErrMailboxFull at capacity. Terminate and exited events are never
// refused while open: losing one would leave a process running forever or
// waiting on a peer that is gone, and exited events are bounded anyway by
// the number of links.
func (m *mailbox) put(e event) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrTerminated
	}
	switch {
	case e.kind == evTerminate:
		m.terminate = true
	case e.kind == evExited:
	case len(m.pending) >= m.capacity:
		m.mu.Unlock()
		return ErrMailboxFull
	}
	wasEmpty := len(m.pending) == 0
	m.pending = append(m.pending, e)
	m.mu.Unlock()
	if wasEmpty {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// putWait is put for producers that can wait: a connection reading from a
// peer blocks, up to timeout, while the mailbox is full, so TCP pushes back
// on the sender instead of the message being dropped. It gives up with
// ErrMailboxFull after timeout.
func (m *mailbox) putWait(e event, timeout time.Duration) error {
	var timer *time.Timer
	for {
		m.mu.Lock()
		if m.closed || len(m.pending) < m.capacity {
			m.mu.Unlock()
			err := m.put(e)
			if err != ErrMailboxFull {
				if timer != nil {
					timer.Stop()
				}
				return err
			}
			continue
		}
		if m.space == nil {
			m.space = make(chan struct{})
		}
		space := m.space
		m.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(timeout)
		}
		select {
		case <-space:
		case <-timer.C:
			return ErrMailboxFull
		}
	}
}

// depth returns the number of queued events.
func (m *mailbox) depth() int {
	m.mu.Lock()
	n := len(m.pending)
	m.mu.Unlock()
	return n
}

// close refuses further events and returns those still queued.
func (m *mailbox) close() []event {
	m.mu.Lock()
	m.closed = true
	out := m.pending
	m.pending = nil
	if m.space != nil {
		close(m.space)
		m.space = nil
	}
	m.mu.Unlock()
	return out
}
