package libprocess

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// ReleaseProcess lets a route handler that runs on its request's own
// goroutine give its process back and go on working there: the process
// serves its other events at once, as if the handler had returned, while
// the handler may block until it answers. This spares work that takes
// long (running a command, waiting for a peer) the hand-offs to a
// goroutine of its own and back, without holding up the process.
//
// Only the handler itself may call it, before it returns: a call from a
// goroutine the handler started would release the process while the
// handler still holds it. It reports false, and does nothing, when the
// handler runs on the process' goroutine (the process was busy when the
// request came) or the request was not routed by the runtime; the
// handler must then not block, and answers later from a goroutine of its
// own. Calling it again after it succeeded reports true.
//
// Once released, the request's context is cancelled at the route's
// deadline and when the client resets its connection, as for any pending
// request; a handler that blocks must follow it. Its client waits for the
// handler to return: if no answer came by the deadline it then gets 504,
// and the answer that comes later is dropped. The handler is no longer
// one of the process' events: it must not touch state the process owns
// other than through Dispatch.
func (r *Request) ReleaseProcess() bool {
	h := r.ev
	if h == nil {
		return false
	}
	if h.released {
		return true
	}
	// Not checked against goroutineID: that costs tens of microseconds
	// on a processor whose caches went cold while the process was idle,
	// more than the hand-offs this saves.
	p := h.inline.Load()
	if p == nil {
		return false
	}
	h.released = true
	p.inlineGID.Store(0)
	p.mbox.endInline()
	h.mu.Lock()
	h.watch = time.AfterFunc(h.watchIn(time.Now()), h.tick)
	h.mu.Unlock()
	return true
}

// ownGoroutine is what a request served inline needs once its handler
// releases the process: the runtime's server (metrics, log), the client's
// connection (for resets) and the request's default deadline.
type ownGoroutine struct {
	// inline is the process whose handler runs on the request's goroutine,
	// set by serveInline for the handler's duration.
	inline atomic.Pointer[Process]
	srv    *server
	conn   net.Conn // as fasthttp has it (see underlying)
	start  time.Time
	// deadline is the runtime's RouteTimeout from start; the route's own
	// timeout, once routed, replaces it (routeDeadline).
	deadline time.Time

	// released is set by ReleaseProcess; only the request's goroutine
	// touches it.
	released bool
	// watch ticks while a released handler runs: at the route deadline
	// and every disconnectPoll before it. It, expired and settled are
	// guarded by the event's mu.
	watch *time.Timer
	// expired: the deadline passed before an answer came; the client
	// gets 504.
	expired bool
	// settled: the released handler returned; the watch has ended.
	settled bool
}

// watchIn is how long the watch of a released handler sleeps from now:
// until the deadline, or disconnectPoll if that comes first.
func (h *httpEvent) watchIn(now time.Time) time.Duration {
	return min(routeDeadline(h, h.start, h.deadline).Sub(now), disconnectPoll)
}

// tick watches a released handler: at the route's deadline it gives the
// request up (504 once the handler returns) and cancels its context;
// before that it cancels the context if the client reset its connection.
func (h *httpEvent) tick() {
	now := time.Now()
	deadline := routeDeadline(h, h.start, h.deadline)
	h.mu.Lock()
	if h.settled {
		h.mu.Unlock()
		return
	}
	if !now.Before(deadline) {
		expired := !h.done
		if expired {
			h.done, h.expired = true, true
		}
		h.mu.Unlock()
		h.req.st.cancel()
		if expired {
			h.srv.rt.metrics.routeTimeouts.Add(1)
			h.srv.rt.log.Warn().Str("path", h.req.URL.Path).Dur("after", now.Sub(h.start)).
				Msg("HTTP request given up at its route's deadline; 504 once its handler returns")
		}
		return
	}
	h.watch.Reset(h.watchIn(now))
	h.mu.Unlock()
	if h.conn != nil && peerReset(underlying(h.conn)) {
		h.req.st.cancel()
	}
}

// settle ends the watch of a released handler that has returned and
// reports whether the request was given up at its deadline.
func (h *httpEvent) settle() (expired bool) {
	h.mu.Lock()
	h.settled = true
	if h.watch != nil {
		h.watch.Stop()
	}
	expired = h.expired
	h.mu.Unlock()
	return expired
}

// expiredResponse is the answer to a request given up at its deadline.
func expiredResponse() Response {
	return TextResponse(http.StatusGatewayTimeout, "route deadline exceeded")
}
