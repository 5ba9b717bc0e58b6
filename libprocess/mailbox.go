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
)

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

// holder says who is serving a process' events: nobody, its own goroutine
// (the loop), or a caller that found it idle (inline).
type holder uint8

const (
	heldByNone holder = iota
	heldByLoop
	heldByInline
)

// mailbox is a bounded multi-producer, single-consumer event queue. The
// consumer swaps the pending slice for its own empty one, so steady-state
// enqueue and drain allocate nothing.
//
// It also decides who serves the process' events, one at a time: the
// process' goroutine (the loop), or — for an HTTP request that finds the
// process idle with nothing queued — the request's own connection
// goroutine, which then runs the route inline instead of handing the
// request to the loop and waiting to be handed the answer back (two
// goroutine hand-offs that cost more than a typical route). Both hold the
// process through heldBy, so events are still served one at a time and
// in the order they were queued.
type mailbox struct {
	mu        sync.Mutex
	pending   []event
	capacity  int
	closed    bool
	terminate bool          // a terminate event is pending
	heldBy    holder        // who serves events now
	wake      chan struct{} // capacity 1: "pending is non-empty"
	space     chan struct{} // closed by take when producers wait for room
}

// newMailbox returns a mailbox held by the loop, which releases it once
// the process is initialized.
func newMailbox(capacity int) *mailbox {
	return &mailbox{capacity: capacity, wake: make(chan struct{}, 1), heldBy: heldByLoop}
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

// take is the loop's turn: it swaps the pending events into buf (which
// must be empty) and returns them with whether a terminate is among them,
// holding the process for the loop until a take finds nothing to serve.
// It returns ok false, taking nothing, when nothing is pending or an
// inline caller holds the process (which wakes the loop when it is done).
func (m *mailbox) take(buf []event) (batch []event, term, ok bool) {
	m.mu.Lock()
	if m.heldBy == heldByInline {
		m.mu.Unlock()
		return nil, false, false
	}
	if len(m.pending) == 0 {
		m.heldBy = heldByNone
		m.mu.Unlock()
		return nil, false, false
	}
	m.heldBy = heldByLoop
	out := m.pending
	m.pending = buf
	term = m.terminate
	if m.space != nil {
		close(m.space)
		m.space = nil
	}
	m.mu.Unlock()
	return out, term, true
}

// tryInline holds the process for the caller if nobody serves it and
// nothing is queued (so serving now keeps the order events arrived in);
// the caller must then serve its one event and call endInline.
func (m *mailbox) tryInline() bool {
	m.mu.Lock()
	ok := m.heldBy == heldByNone && len(m.pending) == 0 && !m.closed && !m.terminate
	if ok {
		m.heldBy = heldByInline
	}
	m.mu.Unlock()
	return ok
}

// endInline releases the process after an inline event and wakes the loop
// for whatever was queued meanwhile.
func (m *mailbox) endInline() {
	m.mu.Lock()
	m.heldBy = heldByNone
	queued := len(m.pending) > 0
	m.mu.Unlock()
	if queued {
		select {
		case m.wake <- struct{}{}:
		default:
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
