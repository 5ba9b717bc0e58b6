package pkgpanda

import (
	"context"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// A call is one operation on its way from a front-end to its answer.
// Every front-end — the HTTP routes, POST /pkgpanda/api/v1 and
// PkgpandaCall messages — prepares the operation's arguments with the
// table's prepare, makes a call with newCall and submits it; from then on
// the call alone answers its client, exactly once:
//
//	submit ─ admitted? ─no──────────────────────────────────┐
//	   │ yes                                                 │
//	   ├─ staged (a fetch's downloads, no lock; goTracked) ─fail─┤
//	   ├─ queued on its route's actor (enqueue) ─full/draining─┤
//	   ▼                                                     │
//	execute on the actor: locks, checks, perform ─────────── finish ─▶ reply
//
// finish releases the call's uploads, writes the audit line of a
// mutation, and hands the answer to reply: the one function that writes
// to the client (an HTTP response, a stream's last line, an api/v1 body or
// a PkgpandaResponse message). A panic anywhere on the way answers 500
// (see contain).
type call struct {
	p    *Process
	spec *opSpec
	args *opArgs
	who  caller
	// client is the client's context: it cancels a read while it runs
	// and drops a call that has not begun (messages: Background).
	client context.Context
	// reply answers the client; only finish calls it.
	reply func(*pb.PkgpandaResponse)
	// run, if set, replaces perform: the answer the front-end decided,
	// given on the actor after admission (PUT /active/ with elements
	// that cannot name packages).
	run func() *pb.PkgpandaResponse
	// audit is the record of a mutation (nil for reads); ran tells
	// finish whether the operation began under its locks.
	audit    *auditRecord
	ran      bool
	answered atomic.Bool
}

// newCall makes the call of the prepared operation args for who; reply
// answers its client.
func (p *Process) newCall(ctx context.Context, args *opArgs, who caller, reply func(*pb.PkgpandaResponse)) *call {
	spec := &p.ops[args.op]
	c := &call{p: p, spec: spec, args: args, who: who, client: ctx, reply: reply}
	if spec.mutates {
		c.audit = &auditRecord{p: p, op: spec.name, who: who, start: time.Now()}
	}
	return c
}

// submit admits the call (authentication and authorization), stages it
// when its operation has a stage, and queues it on its route's actor.
// Any of them may answer it instead.
func (c *call) submit() {
	p := c.p
	if r := p.admit(c.args.op, c.who); r != nil {
		c.refuse(r.status, r.msg)
		return
	}
	if c.spec.stage != nil {
		if !p.goUpload("staging "+c.spec.name, func() { c.finish(failInternal()) }, c.stage) {
			c.refuse(http.StatusServiceUnavailable, "pkgpanda is shutting down")
		}
		return
	}
	c.enqueue()
}

// stage runs the operation's stage (no lock, on a goroutine Drain waits
// for), then queues the call, or answers the stage's failure.
func (c *call) stage() {
	timeout := c.p.actors[c.spec.actor].limits.Timeout
	if r := c.spec.stage(c.p, c.args, timeout); r != nil {
		if c.spec.failure != nil {
			r = c.spec.failure(c.p, c.args, r)
		}
		c.finish(r)
		return
	}
	c.enqueue()
}

// enqueue hands the call to its route's actor, or answers 503 when the
// queue is full or the process drains.
func (c *call) enqueue() {
	if ok, why := c.p.enqueue(c.p.actors[c.spec.actor], c); !ok {
		c.refuse(http.StatusServiceUnavailable, why)
	}
}

// execute runs the call on its actor's goroutine and answers it. A
// panic answers 500 once the locks the call took are released.
func (c *call) execute(a *actor) {
	c.p.contain("running "+c.spec.name, func() { c.finish(failInternal()) }, func() {
		c.finish(c.underLocks(a))
	})
}

// underLocks takes the call's locks — the write lock and the repository
// lock for a mutation, the read lock for a read — and returns its answer:
// 503 while draining, the interrupted activation's refusal, 499 for a
// client already gone, 503 for a busy repository lock, else what the
// operation answers.
func (c *call) underLocks(a *actor) *pb.PkgpandaResponse {
	p, spec := c.p, c.spec
	if p.isDraining() {
		return failed(http.StatusServiceUnavailable, "pkgpanda is shutting down")
	}
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
		return failed(http.StatusServiceUnavailable, "pkgpanda is shutting down")
	}
	if spec.needsInstall {
		if status, msg := p.installBlocked(); status != 0 {
			return failed(status, "%s", msg)
		}
	}
	if c.client.Err() != nil {
		// Not begun, and its client was already answered (the
		// runtime's route deadline) or reset the connection: nothing
		// runs for a client that is gone. A mutation that has begun
		// always runs to completion.
		if spec.mutates {
			p.log.Warn().Str("operation", spec.name).Msg("queued mutation dropped before it began: its request ended")
		}
		return failed(statusClientClosed, "the request ended before the operation began")
	}
	start := time.Now()
	defer a.record(start)
	if !spec.mutates {
		// A read follows its client and the drain.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		defer context.AfterFunc(c.client, cancel)()
		defer context.AfterFunc(p.drainCtx, cancel)()
		c.ran = true
		return c.perform(ctx, a)
	}
	lock, err := p.lockRepository(a)
	if err != nil {
		return failed(http.StatusServiceUnavailable, "%s", err.Error())
	}
	a.inherit = []*os.File{lock}
	a.audit = c.audit
	defer func() {
		a.inherit, a.audit = nil, nil
		lock.Close() // releases the flock (children that still hold it keep it)
	}()
	c.ran = true
	return c.perform(context.Background(), a)
}

// perform runs the operation (or the front-end's run) and maps a failure
// with the operation's failure rewrite.
func (c *call) perform(ctx context.Context, a *actor) *pb.PkgpandaResponse {
	if c.run != nil {
		return c.run()
	}
	r := c.p.perform(ctx, a, c.args)
	if r.Status >= 400 && c.spec.failure != nil {
		r = c.spec.failure(c.p, c.args, r)
	}
	return r
}

// refuse answers the call without running it: refused (401/403), full
// queue or draining (503), a failed stage.
func (c *call) refuse(status int, msg string) { c.finish(failed(status, "%s", msg)) }

// finish answers the call, once: the uploads it holds are removed first
// (the answer means they are gone), then a mutation's audit line is
// written, then reply answers the client. Later calls do nothing.
func (c *call) finish(r *pb.PkgpandaResponse) {
	if c.answered.Swap(true) {
		return
	}
	c.args.release()
	if c.audit != nil {
		c.p.auditEnd(c.audit, c.outcome(int(r.Status)), int(r.Status), r.Error)
	}
	c.reply(r)
}

// outcome names a mutation's end for the audit log: "ok" or "failed" once
// it ran; before that "refused" (401/403), "rejected" (503: queue full,
// draining, repository lock busy) or "failed".
func (c *call) outcome(status int) string {
	switch {
	case c.ran && status < 400:
		return "ok"
	case c.ran:
		return "failed"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "refused"
	case status == http.StatusServiceUnavailable:
		return "rejected"
	}
	return "failed"
}
