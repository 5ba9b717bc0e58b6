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
	http *httpEvent   // evHTTP
	fn   func()       // evDispatch
	upid UPID         // evExited
	done chan<- error // evDispatch: optional completion signal
}

// mailbox is a bounded multi-producer, single-consumer event queue. The
// consumer swaps the pending slice for its own empty one, so steady-state
// enqueue and drain allocate nothing.
type mailbox struct {
	mu        sync.Mutex
	pending   []event
	capacity  int
	closed    bool
	terminate bool          // a terminate event is pending
	wake      chan struct{} // capacity 1: "pending is non-empty"
	space     chan struct{} // closed by take when producers wait for room
}

func newMailbox(capacity int) *mailbox {
	return &mailbox{capacity: capacity, wake: make(chan struct{}, 1)}
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

// take swaps the pending events into buf (which must be empty) and returns
// them with whether a terminate is among them.
func (m *mailbox) take(buf []event) ([]event, bool) {
	m.mu.Lock()
	out := m.pending
	m.pending = buf
	term := m.terminate
	if m.space != nil {
		close(m.space)
		m.space = nil
	}
	m.mu.Unlock()
	return out, term
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
