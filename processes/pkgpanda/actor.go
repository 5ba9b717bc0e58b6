package pkgpanda

import (
	"context"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/subprocess"
)

// job is one operation waiting for, or being run by, a route's actor. Jobs
// are made only by dispatch.
type job struct {
	// op is the operation; its spec decides the locks: mutations take
	// the write lock and the on-disk repository lock and are never
	// cancelled; reads take the read lock and follow ctx.
	op opID
	// ctx is the client's context (reads); nil means none.
	ctx context.Context
	// run does the work under the locks and answers. detach stops the
	// client's context from cancelling ctx (used once a streamed response
	// has started, after which the runtime no longer tracks the client
	// through the request context).
	run func(ctx context.Context, detach func())
	// reject answers without running (draining, client gone, refused).
	reject func(status int, msg string)
	// release, if set, frees what the job holds once it is done.
	release func()
	// audit is the audit record of a mutation (nil for reads).
	audit *auditRecord
}

// finish releases what j holds and rejects it (in that order: the answer
// means the upload is gone).
func (j *job) finish(status int, msg string) {
	if j.release != nil {
		j.release()
	}
	j.reject(status, msg)
}

// actor runs one route's jobs one at a time, in arrival order: on its own
// goroutine, or, for a read that finds it idle, on the request's (claim).
type actor struct {
	route  string
	limits RouteLimits
	runner *subprocess.Runner
	queue  chan *job
	runs   *libprocess.Counter
	fails  *libprocess.Counter
	full   *libprocess.Counter
	// inherit holds the files handed to the children of the running job
	// (the repository lock during a mutation). Only the goroutine running
	// the job touches it.
	inherit []*os.File
	// timer is pkgpanda/<route>/duration (shown as duration_ms): how
	// long the actor spent running each job. metrics counts exit
	// statuses. Both are set by Start.
	timer   *libprocess.Timer
	metrics *libprocess.Metrics
	// exit0 is metrics' pkgpanda/<route>/exit_status/0, set by Start.
	exit0 *libprocess.Counter
	// audit is the record of the mutation being run, for its tool runs;
	// only the goroutine running the job touches it.
	audit *auditRecord

	// busy is held while a job runs, by the actor's goroutine or by a
	// request's own goroutine (claim). waiting counts the jobs enqueued
	// and not yet begun (at most limits.QueueLimit, the queue_depth
	// gauge): a claim never overtakes one of them. A job leaves waiting
	// once the actor's goroutine holds busy for it, so the queue (of
	// QueueLimit) never holds more than waiting.
	busy    sync.Mutex
	waiting atomic.Int32
	// claims counts the jobs run on their caller's goroutine.
	claims atomic.Int64
}

// enqueue hands j to the route's actor without blocking. It reports false
// (and answers nothing) when the queue is full or the process is draining;
// the caller answers 503. Only dispatch calls it.
func (p *Process) enqueue(a *actor, j *job) (ok bool, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return false, "pkgpanda is shutting down"
	}
	if int(a.waiting.Load()) >= a.limits.QueueLimit {
		a.full.Inc()
		return false, "the " + a.route + " queue is full"
	}
	a.waiting.Add(1)
	a.queue <- j // never blocks: see waiting
	return true, ""
}

// loop is the actor's goroutine; it ends when the queue is closed by Drain
// and every queued job has been answered.
func (p *Process) loop(a *actor) {
	defer p.actorsDone.Done()
	for j := range a.queue {
		a.busy.Lock()
		a.waiting.Add(-1)
		p.execute(a, j)
		a.busy.Unlock()
	}
}

// claim takes a's turn for a job run by its caller, when a is idle with
// nothing queued: the job then comes next in arrival order, and runs
// without the hand-offs to the actor's goroutine and back. Drain waits
// for a claimed job as for the actor's own. It reports false when a is
// busy, has jobs queued or the process is draining; release with
// unclaim.
func (p *Process) claim(a *actor) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining || !p.started || a.waiting.Load() != 0 || !a.busy.TryLock() {
		return false
	}
	p.actorsDone.Add(1)
	return true
}

// runClaimed runs j on the calling goroutine in the turn claim took, and
// gives the turn back (execute contains a panic in j).
func (p *Process) runClaimed(a *actor, j *job) {
	defer p.unclaim(a)
	a.claims.Add(1)
	p.execute(a, j)
}

// unclaim gives back a turn taken by claim.
func (p *Process) unclaim(a *actor) {
	a.busy.Unlock()
	p.actorsDone.Done()
}

// execute runs j on the calling goroutine (the actor's, or a claimed
// turn's), containing a panic in it: j is answered 500 once the locks it
// took are released, and the caller goes on (see contain).
func (p *Process) execute(a *actor, j *job) {
	p.contain("running "+p.ops[j.op].name, func() {
		j.finish(http.StatusInternalServerError, internalError)
	}, func() { p.runJob(a, j) })
}

// runJob takes j's locks, answers it without running when the process
// drains, an interrupted activation blocks it or its client is gone, and
// otherwise runs it.
func (p *Process) runJob(a *actor, j *job) {
	if j.release != nil {
		defer j.release()
	}
	if p.isDraining() {
		j.finish(http.StatusServiceUnavailable, "pkgpanda is shutting down")
		return
	}
	spec := p.ops[j.op]
	if spec.mutates {
		p.rw.Lock()
		defer p.rw.Unlock()
		// Kept read results are dropped once the mutation is done,
		// before the unlock lets readers in. Its own pre-checks still
		// reuse what readers left: nothing changes under the lock
		// before the mutation itself runs.
		defer p.cache.invalidate()
	} else {
		p.rw.RLock()
		defer p.rw.RUnlock()
	}
	if p.isDraining() {
		j.finish(http.StatusServiceUnavailable, "pkgpanda is shutting down")
		return
	}
	if spec.needsInstall {
		if status, msg := p.installBlocked(); status != 0 {
			j.finish(status, msg)
			return
		}
	}
	if spec.mutates {
		if j.ctx != nil && j.ctx.Err() != nil {
			// Not begun, and its client was already answered (the
			// runtime's route deadline) or reset the connection: a
			// mutation nobody waits for is not started. One that has
			// begun always runs to completion.
			p.log.Warn().Str("operation", spec.name).Msg("queued mutation dropped before it began: its request ended")
			j.finish(statusClientClosed, "the request ended before the operation began")
			return
		}
		lock, err := p.lockRepository(a)
		if err != nil {
			j.finish(http.StatusServiceUnavailable, err.Error())
			return
		}
		a.inherit = []*os.File{lock}
		a.audit = j.audit
		defer func() {
			a.inherit = nil
			a.audit = nil
			lock.Close() // releases the flock (children that still hold it keep it)
		}()
		start := time.Now()
		j.run(context.Background(), func() {})
		a.record(start)
		p.auditRan(j.audit)
		return
	}
	client := j.ctx
	if client == nil {
		client = context.Background()
	}
	if client.Err() != nil {
		j.finish(statusClientClosed, "the client went away")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopClient := context.AfterFunc(client, cancel)
	defer stopClient()
	stopDrain := context.AfterFunc(p.drainCtx, cancel)
	defer stopDrain()
	start := time.Now()
	j.run(ctx, func() { stopClient() })
	a.record(start)
}

// record adds a job's run time to the route's timer.
func (a *actor) record(start time.Time) {
	if a.timer != nil {
		a.timer.Record(time.Since(start))
	}
}

// statusClientClosed answers a request whose client went away; nobody
// reads it (nginx's 499).
const statusClientClosed = 499
