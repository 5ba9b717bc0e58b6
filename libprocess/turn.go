package libprocess

import (
	"fmt"
	"net/http"
	"runtime/debug"
)

// turn says who holds a process' turn to serve its events. This file is
// the whole execution model of a process; nothing else serves an event.
//
// A process' events are served by whoever holds its turn:
//
//   - turnLoop: the process' own goroutine (Process.run). It holds the
//     turn from Spawn through OnInitialize, and while it serves batches
//     taken from the mailbox (mailbox.take), until a take finds nothing.
//   - turnInline: the goroutine of an HTTP connection whose request found
//     the process idle with nothing queued (Process.serveInline). It holds
//     the turn for that one request's handler and gives it back
//     (mailbox.endInline). Handing the request to the loop and the answer
//     back costs two goroutine switches, more than a typical route; serving
//     inline is what keeps route throughput near a bare fasthttp server's
//     (BenchmarkRouteThroughput's ratio). Only HTTP requests are served
//     inline: a message's connection delivers it and reads on, and must
//     not wait for its handler.
//   - turnFree: nobody. The next event queued wakes the loop, or the next
//     HTTP request is served inline.
//
// Invariants, all kept under the mailbox's lock, since taking the turn
// depends on what is queued:
//
//  1. One event at a time per process: there is one holder at a time, and
//     only the holder serves events.
//  2. Queue order: an inline caller takes the turn only when nothing is
//     queued and no terminate is pending, so an inline event never
//     overtakes a queued one. Events queued while it serves wait for the
//     loop, which endInline wakes.
//  3. Who may block: no holder. Handlers must not block (see
//     RouteHandler); an inline holder serves its one event and gives the
//     turn back; the loop blocks only on its mailbox's wake channel, and
//     only while it does not hold the turn. Process.DispatchWait from a
//     handler would block the holder on itself; nothing detects that (Go
//     gives goroutines no identity to compare, and a marker on the event
//     being served cannot tell its handler from a goroutine the handler
//     started), so DispatchWait documents it.
//  4. Every event, whoever holds the turn, goes through
//     Process.serveAndRecover, which recovers a panic in it: a panic costs
//     the event, never the process or the connection.
type turn uint8

const (
	turnFree turn = iota
	turnLoop
	turnInline
)

// take is the loop's turn: it swaps the pending events into buf (which
// must be empty) and returns them with whether a terminate is among them,
// holding the turn for the loop. It returns ok false, taking nothing, when
// nothing is pending (the turn becomes free) or an inline caller holds the
// turn (which wakes the loop when it is done).
func (m *mailbox) take(buf []event) (batch []event, term, ok bool) {
	m.mu.Lock()
	if m.turn == turnInline {
		m.mu.Unlock()
		return nil, false, false
	}
	if len(m.pending) == 0 {
		m.turn = turnFree
		onFree := m.onFree
		m.mu.Unlock()
		if onFree != nil {
			onFree()
		}
		return nil, false, false
	}
	m.turn = turnLoop
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

// tryInline takes the turn for the caller if it is free and nothing is
// queued; the caller must then serve its one event and call endInline.
func (m *mailbox) tryInline() bool {
	m.mu.Lock()
	ok := m.turn == turnFree && len(m.pending) == 0 && !m.closed && !m.terminate && !m.queuedOnly
	if ok {
		m.turn = turnInline
	}
	m.mu.Unlock()
	return ok
}

// endInline gives the turn back after an inline event and wakes the loop
// for whatever was queued meanwhile.
func (m *mailbox) endInline() {
	m.mu.Lock()
	m.turn = turnFree
	queued := len(m.pending) > 0
	onFree := m.onFree
	m.mu.Unlock()
	if queued {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	} else if onFree != nil {
		onFree()
	}
}

// run is the process' goroutine: it initializes the process, then serves
// batches of events while it holds the turn and sleeps on the mailbox's
// wake channel while it does not, until a terminate.
func (p *Process) run() {
	if p.onInit != nil {
		p.serveAndRecover(&event{kind: evInitialize})
	}
	var spare []event
	for {
		for {
			batch, term, ok := p.mbox.take(spare[:0])
			if !ok {
				break
			}
			if term {
				p.shutdown(batch)
				return
			}
			for i := range batch {
				p.serveAndRecover(&batch[i])
				batch[i] = event{} // drop references for the GC
			}
			spare = batch
		}
		<-p.mbox.wake
	}
}

// serveInline serves e, an HTTP request's event, on the caller's goroutine
// if the turn is free and nothing is queued. It reports false, having done
// nothing, otherwise; the event must then be queued.
func (p *Process) serveInline(e *event) bool {
	if !p.mbox.tryInline() {
		return false
	}
	p.serveAndRecover(e)
	p.mbox.endInline()
	return true
}

// serveAndRecover is the one function every event passes through, from the
// loop or inline, and the one place a panic in a handler is recovered, as
// net/http recovers one per request: it is logged with its stack and
// counted in libprocess/handler_panics, whoever waits for the event is
// answered, and the process goes on with its next event.
func (p *Process) serveAndRecover(e *event) {
	panicked := true
	defer func() {
		if panicked {
			p.logPanic(e, recover())
		}
		p.settle(e, panicked)
	}()
	p.handle(e)
	panicked = false
}

// handle runs the handler an event is for.
func (p *Process) handle(e *event) {
	switch e.kind {
	case evMessage:
		p.rt.metrics.messagesHandled.Add(1)
		if h := p.handlers[e.msg.Name]; h != nil {
			h(&e.msg)
		} else {
			p.rt.log.Debug().Str("process", p.id).Str("message", e.msg.Name).Str("from", e.msg.From.String()).Msg("no handler installed for message; dropped")
		}
	case evHTTP:
		p.serveHTTP(e.http)
	case evDispatch:
		e.fn()
	case evExited:
		if p.exited != nil {
			p.exited(e.upid)
		}
	case evInitialize:
		p.onInit()
	case evFinalize:
		p.onFinal()
	}
}

// settle answers whoever waits for an event once it has been served or
// its handler panicked.
func (p *Process) settle(e *event, panicked bool) {
	switch e.kind {
	case evMessage:
		// The body's budget comes back when the handler returns: what
		// it keeps of the body is its own to bound.
		p.rt.releaseInbound(e.held)
	case evHTTP:
		if panicked {
			// No-op if the handler answered before it panicked.
			e.http.respond(ErrorResponse(http.StatusInternalServerError, "internal error in the route handler"))
		}
	case evDispatch:
		if e.done != nil {
			var err error
			if panicked {
				err = fmt.Errorf("process %q: dispatched function panicked", p.id)
			}
			e.done <- err
		}
	}
}

// logPanic logs and counts a panic recovered from an event's handler.
func (p *Process) logPanic(e *event, v any) {
	p.rt.metrics.handlerPanics.Add(1)
	p.rt.log.Error().Str("process", p.id).Str("event", e.kind.String()).Str("detail", e.detail()).
		Str("panic", fmt.Sprint(v)).Bytes("stack", debug.Stack()).
		Msg("handler panicked; the event is abandoned and the process goes on")
}

// String names the holder in logs and tests.
func (t turn) String() string {
	switch t {
	case turnFree:
		return "free"
	case turnLoop:
		return "loop"
	case turnInline:
		return "inline"
	}
	return "unknown"
}
