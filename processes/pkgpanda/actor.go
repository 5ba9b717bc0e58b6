package pkgpanda

import (
	"os"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/subprocess"
)

// actor runs one route's calls one at a time, in arrival order, on its own
// goroutine (loop): a route's CLI runs never overlap. Its queue holds at
// most limits.QueueLimit calls; a call beyond it is answered 503.
type actor struct {
	route  string
	limits RouteLimits
	runner *subprocess.Runner
	queue  chan *call
	runs   *libprocess.Counter
	fails  *libprocess.Counter
	full   *libprocess.Counter
	// inherit holds the files handed to the children of the running call
	// (the repository lock during a mutation). Only the actor's goroutine
	// touches it.
	inherit []*os.File
	// timer is pkgpanda/<route>/duration (shown as duration_ms): how
	// long the actor spent on each call. metrics counts exit statuses.
	// Both are set by Start.
	timer   *libprocess.Timer
	metrics *libprocess.Metrics
	// exit0 is metrics' pkgpanda/<route>/exit_status/0, set by Start.
	exit0 *libprocess.Counter
	// audit is the record of the mutation being run, for its tool runs;
	// only the actor's goroutine touches it.
	audit *auditRecord
}

// enqueue hands c to the route's actor without blocking. It reports false
// (and answers nothing) when the queue is full or the process is draining;
// the caller answers 503.
func (p *Process) enqueue(a *actor, c *call) (ok bool, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return false, "pkgpanda is shutting down"
	}
	select {
	case a.queue <- c:
		return true, ""
	default:
		a.full.Inc()
		return false, "the " + a.route + " queue is full"
	}
}

// loop is the actor's goroutine; it ends when Drain has closed the queue
// and every queued call has been answered (503: the process drains).
func (p *Process) loop(a *actor) {
	defer p.actorsDone.Done()
	for c := range a.queue {
		c.execute(a)
	}
}

// record adds a call's time on the actor to the route's timer.
func (a *actor) record(start time.Time) {
	if a.timer != nil {
		a.timer.Record(time.Since(start))
	}
}

// statusClientClosed answers a request whose client went away; nobody
// reads it (nginx's 499).
const statusClientClosed = 499
