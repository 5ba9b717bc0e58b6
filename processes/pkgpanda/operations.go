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

// opSpec describes one operation, for every front-end: dispatch reads the
// actor and the locks, the Pkgpanda API routes read the path and method
// (for routing, 405 and Allow), api/v1 and PkgpandaCall messages read the
// call type and the number of ids, and all of them run what prepare
// returns, so one call gets one answer (status and text) whichever
// front-end carried it.
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

	// path and method are the operation's Pkgpanda API route below
	// /pkgpanda/<actor>: pathList ("/") or pathItem ("/<id>"); path is
	// pathNone for the CLI-surface operations, whose routes parse their
	// own query parameters.
	path   apiPath
	method string
	// call is the api/v1 call type that asks for it; hasCall is false
	// for operations no call names. CHECK names two (list_checks picks).
	call    PkgpandaCall_Type
	hasCall bool
	// minIDs and maxIDs bound the package ids a call carries (maxIDs -1:
	// no bound).
	minIDs, maxIDs int
	// statuses maps the tool's failures (pkgpanda-cli §4) to statuses.
	statuses statusMap
	// prepare runs the pre-checks that need no subprocess (id validity,
	// argument shapes) and returns the run: the CLI invocations (argv
	// from cli.Tool), their parsing, the checks that need them and the
	// answer. nil for operations only their own route can build (the
	// streamed and uploading CLI-surface routes).
	prepare func(p *Process, in opInput) (*prepared, *PkgpandaResponse)
	// body renders a success over HTTP; nil means 204 with no body.
	body func(*PkgpandaResponse) libprocess.Response
	// help is the one-line description for /help and errors.
	help string
}

// apiPath is the shape of a Pkgpanda API path below its route.
type apiPath int

const (
	pathNone apiPath = iota // not a Pkgpanda API operation
	pathList                // /repository/, /active/
	pathItem                // /repository/<id>, /active/<id>
)

// opInput is what a front-end extracted from a request, before any
// check: ids exactly as the client sent them.
type opInput struct {
	ids []string
	// url is the repository URL of a fetch; badURL marks a value that
	// is not a string (HTTP bodies only).
	url    string
	badURL bool
	// tarball is an ADD's tarball on disk, in its upload file "tarball".
	tarball *upload
}

// operationTable returns the spec of every operation, indexed by opID.
func operationTable() [numOps]opSpec {
	return [numOps]opSpec{
		opListJSON:   {name: "list.json", actor: RouteListJSON, statuses: cliStatuses(), body: idsBody, help: "the repository's ids"},
		opActiveJSON: {name: "active.json", actor: RouteActiveJSON, needsInstall: true, statuses: cliStatuses(), body: idsBody, help: "the active ids"},
		opAdd: {name: "add", actor: RouteAdd, mutates: true, needsInstall: true,
			call: PkgpandaCall_ADD, hasCall: true, minIDs: 1, maxIDs: 1, statuses: cliStatuses(),
			prepare: (*Process).prepareAdd, body: addBody, help: "add an uploaded package tarball"},
		opRemove: {name: "remove", actor: RouteRemove, mutates: true, needsInstall: true, statuses: cliStatuses(),
			body: removedBody, help: "pkgpanda remove"},
		opActivate: {name: "activate", actor: RouteActivate, mutates: true, needsInstall: true, statuses: cliStatuses(),
			help: "pkgpanda activate"},
		opSwap: {name: "swap", actor: RouteSwap, mutates: true, needsInstall: true,
			call: PkgpandaCall_SWAP, hasCall: true, minIDs: 1, maxIDs: 1, statuses: cliStatuses(),
			prepare: (*Process).prepareSwap, help: "pkgpanda swap"},
		opFetch: {name: "fetch", actor: RouteFetch, mutates: true, needsInstall: true, statuses: cliStatuses(),
			help: "pkgpanda fetch, streamed"},
		opCheck: {name: "check", actor: RouteCheck, needsInstall: true,
			call: PkgpandaCall_CHECK, hasCall: true, statuses: checkStatuses(),
			prepare: (*Process).prepareCheck, help: "pkgpanda check"},
		opCheckList: {name: "check.list", actor: RouteCheck, needsInstall: true,
			call: PkgpandaCall_CHECK, hasCall: true, statuses: cliStatuses(),
			prepare: (*Process).prepareCheckList, body: checksBody, help: "pkgpanda check --list"},
		opRepoList: {name: "repository.list", actor: RouteRepository, path: pathList, method: http.MethodGet,
			call: PkgpandaCall_LIST, hasCall: true, statuses: cliStatuses(),
			prepare: (*Process).prepareRepoList, body: idsBody, help: "the repository's ids, sorted"},
		opRepoGet: {name: "repository.get", actor: RouteRepository, path: pathItem, method: http.MethodGet,
			call: PkgpandaCall_GET_PACKAGE, hasCall: true, minIDs: 1, maxIDs: 1, statuses: cliStatuses(),
			prepare: (*Process).prepareRepoGet, body: pkgBody, help: "one package of the repository"},
		opRepoFetch: {name: "repository.fetch", actor: RouteRepository, mutates: true, needsInstall: true, path: pathItem, method: http.MethodPost,
			call: PkgpandaCall_FETCH, hasCall: true, minIDs: 1, maxIDs: -1, statuses: apiFetchStatuses(),
			prepare: (*Process).prepareRepoFetch, help: "fetch a package into the repository"},
		opRepoDelete: {name: "repository.delete", actor: RouteRepository, mutates: true, needsInstall: true, path: pathItem, method: http.MethodDelete,
			call: PkgpandaCall_REMOVE, hasCall: true, minIDs: 1, maxIDs: -1, statuses: apiDeleteStatuses(),
			prepare: (*Process).prepareRepoDelete, help: "remove an inactive package from the repository"},
		opActiveList: {name: "active.list", actor: RouteActive, needsInstall: true, path: pathList, method: http.MethodGet,
			call: PkgpandaCall_ACTIVE, hasCall: true, statuses: cliStatuses(),
			prepare: (*Process).prepareActiveList, body: idsBody, help: "the active ids, sorted"},
		opActiveGet: {name: "active.get", actor: RouteActive, needsInstall: true, path: pathItem, method: http.MethodGet,
			call: PkgpandaCall_GET_ACTIVE_PACKAGE, hasCall: true, minIDs: 1, maxIDs: 1, statuses: cliStatuses(),
			prepare: (*Process).prepareActiveGet, body: pkgBody, help: "one active package"},
		opActivePut: {name: "active.put", actor: RouteActive, mutates: true, needsInstall: true, path: pathList, method: http.MethodPut,
			call: PkgpandaCall_ACTIVATE, hasCall: true, minIDs: 0, maxIDs: -1, statuses: apiActivateStatuses(),
			prepare: (*Process).prepareActivePut, help: "activate exactly the given packages"},
	}
}

// callOp returns the operation an api/v1 call asks for.
func (p *Process) callOp(call *PkgpandaCall) (opID, bool) {
	if call.Type == PkgpandaCall_CHECK {
		if call.ListChecks {
			return opCheckList, true
		}
		return opCheck, true
	}
	for op := range p.ops {
		if s := &p.ops[op]; s.hasCall && s.call == call.Type {
			return opID(op), true
		}
	}
	return 0, false
}

// apiOps returns the Pkgpanda API operations served at shape under route,
// in table order (the order Allow lists their methods in).
func (p *Process) apiOps(route string, shape apiPath) []opID {
	var out []opID
	for op := range p.ops {
		if s := &p.ops[op]; s.actor == route && s.path == shape && shape != pathNone {
			out = append(out, opID(op))
		}
	}
	return out
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
