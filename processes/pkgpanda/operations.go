package pkgpanda

import (
	"context"
	"net/http"

	"github.com/procpanda/procpanda/libprocess"
)

// opID names one operation of the pkgpanda process. Every front-end (the
// CLI-surface routes, the Pkgpanda API routes, POST /pkgpanda/api/v1 and
// PkgpandaCall messages) maps what it was asked for to one opID and hands
// it to dispatch, which authenticates, authorizes and queues it.
type opID int

// The operations. Front-ends that serve the same thing share an opID
// (api/v1 LIST and GET /repository/ are both opRepoList).
const (
	opListJSON   opID = iota // GET /list.json
	opActiveJSON             // GET /active.json
	opAdd                    // POST /add, ADD
	opRemove                 // POST /remove
	opActivate               // POST /activate
	opSwap                   // POST /swap, SWAP
	opFetch                  // POST /fetch
	opCheck                  // GET /check, CHECK
	opCheckList              // GET /check?list=true, CHECK with list_checks
	opRepoList               // GET /repository/, LIST
	opRepoGet                // GET /repository/<id>, GET_PACKAGE
	opRepoFetch              // POST /repository/<id>, FETCH
	opRepoDelete             // DELETE /repository/<id>, REMOVE
	opActiveList             // GET /active/, ACTIVE
	opActiveGet              // GET /active/<id>, GET_ACTIVE_PACKAGE
	opActivePut              // PUT /active/, ACTIVATE
	numOps
)

// opSpec is what dispatch needs to know about an operation.
type opSpec struct {
	// name identifies the operation in logs and refusals.
	name string
	// actor is the route whose actor runs the operation.
	actor string
	// mutates marks operations that change the repository or the install:
	// they need the "mutate" permission, take the write lock and the
	// on-disk repository lock, and are never cancelled once running.
	mutates bool
	// needsInstall marks operations that must not run while an
	// interrupted activation is left on disk (they would act on, or
	// report, a half-swapped install).
	needsInstall bool
}

// operationTable returns the spec of every operation, indexed by opID.
func operationTable() [numOps]opSpec {
	return [numOps]opSpec{
		opListJSON:   {name: "list.json", actor: RouteListJSON},
		opActiveJSON: {name: "active.json", actor: RouteActiveJSON, needsInstall: true},
		opAdd:        {name: "add", actor: RouteAdd, mutates: true, needsInstall: true},
		opRemove:     {name: "remove", actor: RouteRemove, mutates: true, needsInstall: true},
		opActivate:   {name: "activate", actor: RouteActivate, mutates: true, needsInstall: true},
		opSwap:       {name: "swap", actor: RouteSwap, mutates: true, needsInstall: true},
		opFetch:      {name: "fetch", actor: RouteFetch, mutates: true, needsInstall: true},
		opCheck:      {name: "check", actor: RouteCheck, needsInstall: true},
		opCheckList:  {name: "check.list", actor: RouteCheck, needsInstall: true},
		opRepoList:   {name: "repository.list", actor: RouteRepository},
		opRepoGet:    {name: "repository.get", actor: RouteRepository},
		opRepoFetch:  {name: "repository.fetch", actor: RouteRepository, mutates: true, needsInstall: true},
		opRepoDelete: {name: "repository.delete", actor: RouteRepository, mutates: true, needsInstall: true},
		opActiveList: {name: "active.list", actor: RouteActive, needsInstall: true},
		opActiveGet:  {name: "active.get", actor: RouteActive, needsInstall: true},
		opActivePut:  {name: "active.put", actor: RouteActive, mutates: true, needsInstall: true},
	}
}

// invocation is one operation asked for by a front-end.
type invocation struct {
	op     opID
	caller caller
	// ctx is the client's context: it cancels a read-only run when the
	// client goes away; nil means none (messages).
	ctx context.Context
	// run does the work under the locks and answers. detach stops the
	// client's context from cancelling the run (used once a streamed
	// response has started).
	run func(ctx context.Context, a *actor, detach func())
	// reject answers without running: refused, queue full, draining,
	// interrupted activation, repository lock busy.
	reject func(status int, msg string)
	// release, if set, frees what the invocation holds (an uploaded
	// tarball) once it has been run or rejected.
	release func()
	// stage, if set, prepares the operation without any lock, on a
	// goroutine Drain waits for, after admission and before queueing (a
	// fetch's downloads); a non-nil result is the answer instead.
	stage func() *PkgpandaResponse
	// audit is the mutation's audit record, set by dispatch.
	audit *auditRecord
}

// dispatch is the one way into the actors: it authorizes inv's caller for
// inv's operation (admit) and queues it on the operation's actor. Every
// front-end calls it; nothing else calls enqueue. inv.reject receives a
// refusal or a full queue; otherwise inv.run is called later, on the
// actor's goroutine.
func (p *Process) dispatch(inv invocation) {
	spec := p.ops[inv.op]
	if inv.audit == nil && spec.mutates {
		inv.audit = p.auditStart(spec, inv.caller)
		inv.reject = p.auditReject(inv.audit, inv.reject)
	}
	if r := p.admit(inv.op, inv.caller); r != nil {
		if inv.release != nil {
			inv.release()
		}
		inv.reject(r.status, r.msg)
		return
	}
	a := p.actors[spec.actor]
	if inv.stage != nil {
		stage := inv.stage
		inv.stage = nil
		ok := p.goUpload(func() {
			if r := stage(); r != nil {
				if inv.release != nil {
					inv.release()
				}
				inv.reject(int(r.Status), r.Error)
				return
			}
			p.dispatch(inv)
		})
		if !ok {
			if inv.release != nil {
				inv.release()
			}
			inv.reject(http.StatusServiceUnavailable, "pkgpanda is shutting down")
		}
		return
	}
	j := &job{
		op:  inv.op,
		ctx: inv.ctx,
		run: func(ctx context.Context, detach func()) {
			inv.run(ctx, a, detach)
		},
		reject:  inv.reject,
		release: inv.release,
		audit:   inv.audit,
	}
	if ok, why := p.enqueue(a, j); !ok {
		j.finish(http.StatusServiceUnavailable, why)
	}
}

// rejectHTTP answers an HTTP request that could not be queued or run:
// a JSON error, with Retry-After on 503 and the realm's challenge on 401.
func (p *Process) rejectHTTP(respond libprocess.Responder) func(status int, msg string) {
	return func(status int, msg string) {
		r := libprocess.ErrorResponse(status, msg)
		p.decorate(&r)
		respond(r)
	}
}

// decorate adds the headers an HTTP answer of its status needs:
// Retry-After on 503, the authentication challenge on 401.
func (p *Process) decorate(r *libprocess.Response) {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	switch r.Status {
	case http.StatusServiceUnavailable:
		r.Header.Set("Retry-After", "1")
	case http.StatusUnauthorized:
		if c := p.challenge(); c != "" {
			r.Header.Set("WWW-Authenticate", c)
		}
	}
}
