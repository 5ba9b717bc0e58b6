package pkgpanda

import (
	"context"
	"net/http"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/subprocess"
)

// job is one request waiting for, or being run by, a route's actor.
type job struct {
	// write marks a mutation: it takes the write lock and is never
	// cancelled; reads take the read lock and follow ctx.
	write bool
	// ctx is the client's context (reads); nil means none.
	ctx context.Context
	// run does the work under the lock and answers. detach stops the
	// client's context from cancelling ctx (used once a streamed response
	// has started, after which the runtime no longer tracks the client
	// through the request context).
	run func(ctx context.Context, detach func())
	// reject answers without running (draining, client gone).
	reject func(status int, msg string)
}

// actor runs one route's jobs one at a time, in arrival order.
type actor struct {
	route  string
	limits RouteLimits
	runner *subprocess.Runner
	queue  chan *job
	runs   *libprocess.Counter
	fails  *libprocess.Counter
	full   *libprocess.Counter
}

// enqueue hands j to the route's actor without blocking. It reports false
// (and answers nothing) when the queue is full or the process is draining;
// the caller answers 503.
func (p *Process) enqueue(a *actor, j *job) (ok bool, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return false, "pkgpanda is shutting down"
	}
	select {
	case a.queue <- j:
		return true, ""
	default:
		a.full.Inc()
		return false, "the " + a.route + " queue is full"
	}
}

// loop is the actor's goroutine; it ends when the queue is closed by Drain
// and every queued job has been answered.
func (p *Process) loop(a *actor) {
	defer p.actorsDone.Done()
	for j := range a.queue {
		p.execute(a, j)
	}
}

func (p *Process) execute(a *actor, j *job) {
	if p.isDraining() {
		j.reject(http.StatusServiceUnavailable, "pkgpanda is shutting down")
		return
	}
	if j.write {
		p.rw.Lock()
		defer p.rw.Unlock()
	} else {
		p.rw.RLock()
		defer p.rw.RUnlock()
	}
	if p.isDraining() {
		j.reject(http.StatusServiceUnavailable, "pkgpanda is shutting down")
		return
	}
	if j.write {
		j.run(context.Background(), func() {})
		return
	}
	client := j.ctx
	if client == nil {
		client = context.Background()
	}
	if client.Err() != nil {
		j.reject(statusClientClosed, "the client went away")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopClient := context.AfterFunc(client, cancel)
	defer stopClient()
	stopDrain := context.AfterFunc(p.drainCtx, cancel)
	defer stopDrain()
	j.run(ctx, func() { stopClient() })
}

// statusClientClosed answers a request whose client went away; nobody
// reads it (nginx's 499).
const statusClientClosed = 499

// rejectHTTP answers an HTTP request that could not be queued or run.
func rejectHTTP(respond libprocess.Responder) func(status int, msg string) {
	return func(status int, msg string) {
		r := libprocess.ErrorResponse(status, msg)
		if status == http.StatusServiceUnavailable {
			r.Header.Set("Retry-After", "1")
		}
		respond(r)
	}
}
