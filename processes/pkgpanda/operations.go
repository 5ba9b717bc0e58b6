package pkgpanda

import (
	"context"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// opID names one operation of the pkgpanda process. Every front-end (the
// CLI-surface routes, the Pkgpanda API routes, POST /pkgpanda/api/v1 and
// PkgpandaCall messages) maps what it was asked for to one opID and hands
// it to a call (call.go), which authenticates, authorizes and queues it.
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

// opSpec describes one operation, for every front-end, as one row of the
// operation table: a call reads the actor and the locks; the Pkgpanda
// API routes read the path and method (for routing, 405 and Allow);
// api/v1 and PkgpandaCall messages read the call type and the number of
// ids; /help reads the help. Every front-end then runs the same steps,
// in perform: prepare (no subprocess), stage (no lock), the pre-checks
// and the command (under the locks), parse, failure; so one call gets one
// answer (status and text) whichever front-end carried it.
type opSpec struct {
	// name identifies the operation in logs, audit lines and refusals.
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
	// own query parameters (and then go through prepare all the same).
	path   apiPath
	method string
	// call is the api/v1 call type that asks for it; hasCall is false
	// for operations no call names. CHECK names two (list_checks picks).
	call    pb.PkgpandaCall_Type
	hasCall bool
	// minIDs and maxIDs bound the package ids a call carries (maxIDs -1:
	// no bound).
	minIDs, maxIDs int

	// prepare runs the pre-checks that need no subprocess (id validity,
	// argument shapes) on what a front-end extracted, and returns the
	// operation's typed arguments or the answer.
	prepare func(p *Process, in opInput) (*opArgs, *pb.PkgpandaResponse)
	// stage, if set, runs after admission and before queueing, without
	// any lock, on a goroutine Drain waits for (a fetch's downloads);
	// timeout is the actor's. A non-nil result is the answer.
	stage func(p *Process, in *opArgs, timeout time.Duration) *pb.PkgpandaResponse
	// checks run under the operation's locks before its command, in
	// order; the first that answers is the answer. They read `list` and
	// `active` through the cache (so they are reads, not runs of their
	// own, when nothing changed).
	checks []precheck
	// command is the CLI command the operation runs: its argv and its
	// parse. Its argv is nil for the operations answered by their checks
	// alone (noCommand says why); its parse is never nil.
	command
	// noCommand documents why an operation runs no command of its own.
	noCommand string
	// perPackage runs the command once per package of opArgs.pkgs, in
	// order (add: the upload; a fetch: its downloads); a package already
	// in the repository is not run, only parsed (nil stdout). A failed
	// run of a package fetched from a file:// repository answers a
	// generic error (hideFileFailure).
	perPackage bool
	// stream says what an HTTP answer streams: nothing, the command's
	// stdout (check) or the progress lines (fetch).
	stream streamKind
	// statuses maps the tool's failures (docs/pkgpanda-cli.md §4.3) to statuses.
	statuses statusMap
	// okStatus is the status of a success: 200, or 204 when the
	// operation answers no body.
	okStatus int
	// failure, if set, rewrites a failed answer, of the stage or of the
	// run (POST /repository/<id> answers DC/OS's text).
	failure func(p *Process, in *opArgs, r *pb.PkgpandaResponse) *pb.PkgpandaResponse
	// body renders a success over HTTP; nil means no body (204).
	body func(*pb.PkgpandaResponse) libprocess.Response
	// help documents the operation under /help.
	help opHelp
}

// opHelp is an operation's part of its route's /help.
type opHelp struct {
	// summary says in one line what the operation does.
	summary string
	// usage is the HTTP request that asks for it.
	usage string
	// answers lists what it answers: the success, then the failures.
	answers string
}

// streamKind is what an operation's HTTP answer streams (chunked
// text/plain, from the first byte on; see streamer).
type streamKind int

const (
	streamNone     streamKind = iota
	streamStdout              // the command's stdout, as it comes
	streamProgress            // the progress lines of a fetch
)

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
	// Once prepare succeeds, the operation holds it (opArgs.ups).
	tarball *upload
	// out receives what the operation streams (see opSpec.stream); nil
	// collects it.
	out io.Writer
}

// opArgs are an operation's checked arguments, built by its prepare: what
// its stage, checks, argv and parse read. One opArgs serves one call.
type opArgs struct {
	op opID
	// ids are the package ids, all valid. PUT /active/ has them only
	// once its check found every id of raw in the repository.
	ids []cli.ID
	// raw are the ids as the client sent them (PUT /active/, where a
	// string that is no id counts as missing).
	raw []string
	// url is a fetch's repository URL.
	url string
	// pkgs are the tarballs a perPackage operation adds, in order; pkg
	// is the one of the run under way.
	pkgs []pkgFile
	pkg  pkgFile
	// stdout, if set, receives the command's stdout as it comes; the
	// command's parse then sees none. progress, if set, receives a
	// fetch's progress lines (`\rFetching: <id>`, `\rFetched: <id>\n`).
	stdout, progress io.Writer
	// ups are the uploads the call holds (an add's tarball, a fetch's
	// downloads), removed by release.
	ups []*upload
}

// pkgFile is one package tarball to add.
type pkgFile struct {
	id cli.ID
	// path is the tarball, named <id>.tar.xz as the CLI wants; empty
	// for a package already in the repository (nothing to add).
	path string
}

// release removes the call's uploads. It may be called more than once.
func (in *opArgs) release() {
	for _, up := range in.ups {
		up.remove()
	}
}

// command is a pkgpanda CLI command as an operation runs it.
type command struct {
	// cmd names the command in "unexpected output of pkgpanda <cmd>".
	cmd string
	// argv builds the command's argv (cli.Tool) from the arguments.
	argv func(t cli.Tool, in *opArgs) ([]string, error)
	// parse fills the success answer from the command's stdout (nil when
	// it ran none, or streamed it). An error is the tool breaking its
	// ABI: 502.
	parse func(in *opArgs, stdout []byte, r *pb.PkgpandaResponse) error
	// cached marks `list` and `active`: their result (the PackageIds
	// parse fills) is reused under key while its inputs are unchanged
	// (cache.go).
	cached bool
	key    cacheKey
}

// precheck is a check an operation makes under its locks before its
// command: nil lets it go on, anything else is the answer.
type precheck func(ctx context.Context, p *Process, a *actor, in *opArgs) *pb.PkgpandaResponse

// operationTable returns the spec of every operation, indexed by opID.
func operationTable() [numOps]opSpec {
	getPackage := []precheck{checkInRepository, checkLoadable}
	return [numOps]opSpec{
		opListJSON: {name: "list.json", actor: routeListJSON,
			prepare: prepareNone, command: listCommand(), statuses: readStatuses(), okStatus: http.StatusOK, body: idsBody,
			help: opHelp{summary: "Lists the packages in the local repository", usage: "GET /pkgpanda/list.json",
				answers: "Runs `pkgpanda list`: 200 with a sorted JSON array of package ids. Tool failures: 502 (unexpected output or crash), 500 (`ERROR:`)."}},
		opActiveJSON: {name: "active.json", actor: routeActiveJSON, needsInstall: true,
			prepare: prepareNone, command: activeCommand(), statuses: readStatuses(), okStatus: http.StatusOK, body: idsBody,
			help: opHelp{summary: "Lists the active packages", usage: "GET /pkgpanda/active.json",
				answers: "Runs `pkgpanda active`: 200 with a sorted JSON array of active package ids. Tool failures: 502 (unexpected output or crash), 500 (`ERROR:`)."}},
		opAdd: {name: "add", actor: routeAdd, mutates: true, needsInstall: true,
			call: pb.PkgpandaCall_ADD, hasCall: true, minIDs: 1, maxIDs: 1,
			prepare: prepareAdd, command: addCommand(parseAdded), perPackage: true,
			statuses: cliStatuses(), okStatus: http.StatusOK, body: addBody,
			help: opHelp{summary: "Adds a package tarball to the local repository",
				usage: "POST /pkgpanda/add?id=<name>--<version>  (or header " + packageIDHeader + ": <id>), body: the package's .tar.xz",
				answers: "The request body is the package tarball, as produced by the package build (`<id>.tar.xz`). " +
					"It is written to a private temporary directory, named `<id>.tar.xz` and `pkgpanda add` is run on it. " +
					"The id comes from the `id` query parameter or the " + packageIDHeader + " header, never from a client path, " +
					"and must be a valid package id (400 otherwise). Answers 200 `{\"id\",\"name\",\"version\",\"already_added\"}`; " +
					"413 when the body exceeds the size cap; 503 with Retry-After when too many uploads are being received or their bytes reach the bound; " +
					"409 for `Validation Error`, 404 for `Package Error`, 500 for `ERROR:`."}},
		opRemove: {name: "remove", actor: routeRemove, mutates: true, needsInstall: true,
			prepare: prepareToolIDs, command: removeCommand(), statuses: cliStatuses(), okStatus: http.StatusOK, body: removedBody,
			help: opHelp{summary: "Removes packages from the local repository", usage: "POST /pkgpanda/remove?id=<id>[&id=<id>...]",
				answers: "Runs `pkgpanda remove <id>...`: 200 `{\"removed\": [ids]}` (ids not in the repository are skipped by the tool). 409 when a package is active."}},
		opActivate: {name: "activate", actor: routeActivate, mutates: true, needsInstall: true,
			prepare: prepareToolIDs, command: activateCommand(), statuses: cliStatuses(), okStatus: http.StatusNoContent,
			help: opHelp{summary: "Replaces the active set", usage: "POST /pkgpanda/activate?id=<id>[&id=<id>...]",
				answers: "Runs `pkgpanda activate <id>...`: the given ids become the whole active set. 204 on success; 409 for `Validation Error`, 404 for `Package Error`."}},
		opSwap: {name: "swap", actor: routeSwap, mutates: true, needsInstall: true,
			call: pb.PkgpandaCall_SWAP, hasCall: true, minIDs: 1, maxIDs: 1,
			prepare: prepareToolIDs, command: swapCommand(), statuses: cliStatuses(), okStatus: http.StatusNoContent,
			help: opHelp{summary: "Swaps the active package of one name", usage: "POST /pkgpanda/swap?id=<id>",
				answers: "Runs `pkgpanda swap <id>`, replacing the active package of the same name. 204 on success; 409 when no package of that name is active."}},
		opFetch: {name: "fetch", actor: routeFetch, mutates: true, needsInstall: true,
			prepare: prepareFetch, stage: stageFetch, command: addCommand(parseFetched), perPackage: true, stream: streamProgress,
			statuses: cliStatuses(), okStatus: http.StatusOK, body: emptyText,
			help: opHelp{summary: "Fetches packages from a remote repository (streamed)",
				usage: "POST /pkgpanda/fetch?repository_url=<url>&id=<id>[&id=<id>...]",
				answers: "Downloads each package (`<url>/packages/<name>/<id>.tar.xz`; file:// or http(s)://) and runs `pkgpanda add` on it, " +
					"streaming the progress `pkgpanda fetch` prints (chunked text/plain). " +
					"A failure before any output answers a JSON error (409/404/500/502); after output began, the stream ends with a `pkgpanda failed (<status>): <message>` line."}},
		opCheck: {name: "check", actor: routeCheck, needsInstall: true,
			call: pb.PkgpandaCall_CHECK, hasCall: true,
			prepare: prepareNone, command: checkCommand(), stream: streamStdout, statuses: checkStatuses(), okStatus: http.StatusOK, body: emptyText,
			help: opHelp{summary: "Runs the active packages' checks (streamed)", usage: "GET /pkgpanda/check",
				answers: "Runs `pkgpanda check` and streams its output (chunked text/plain); a client that goes away cancels it. " +
					"A failing check is 500 (before any output) or a `pkgpanda failed (500): ...` line."}},
		opCheckList: {name: "check.list", actor: routeCheck, needsInstall: true,
			call: pb.PkgpandaCall_CHECK, hasCall: true,
			prepare: prepareNone, command: checkListCommand(), statuses: cliStatuses(), okStatus: http.StatusOK, body: checksBody,
			help: opHelp{summary: "Lists the active packages' checks", usage: "GET /pkgpanda/check?list=true",
				answers: "Runs `pkgpanda check --list`: 200 `[{\"id\", \"checks\": [...]}]`."}},
		opRepoList: {name: "repository.list", actor: routeRepository, path: pathList, method: http.MethodGet,
			call: pb.PkgpandaCall_LIST, hasCall: true,
			prepare: prepareNone, command: listCommand(), statuses: readStatuses(), okStatus: http.StatusOK, body: idsBody,
			help: opHelp{summary: "the repository's ids, sorted", usage: "GET /pkgpanda/repository/",
				answers: "200 with a JSON array of ids; 500 when `pkgpanda list` fails."}},
		opRepoGet: {name: "repository.get", actor: routeRepository, path: pathItem, method: http.MethodGet,
			call: pb.PkgpandaCall_GET_PACKAGE, hasCall: true, minIDs: 1, maxIDs: 1,
			prepare: prepareAPIIDs(http.StatusNotFound), checks: getPackage,
			command:   command{parse: parsePackage},
			noCommand: "answered by its checks: the repository's listing (cached `pkgpanda list`) and the package's pkginfo.json",
			statuses:  readStatuses(), okStatus: http.StatusOK, body: pkgBody,
			help: opHelp{summary: "one package of the repository", usage: "GET /pkgpanda/repository/<id>",
				answers: "200 `{\"id\",\"name\",\"version\"}`; 404 `Invalid package ID: <id>`, then 404 `Package <id> not found.`, then 500 `Unable to load package <id>.` (pkginfo.json unreadable or not an object), 500 `An unexpected error has occurred.` (pkginfo.json not decodable as JSON)."}},
		opRepoFetch: {name: "repository.fetch", actor: routeRepository, mutates: true, needsInstall: true, path: pathItem, method: http.MethodPost,
			call: pb.PkgpandaCall_FETCH, hasCall: true, minIDs: 1, maxIDs: -1,
			prepare: prepareRepoFetch, stage: stageFetch, command: addCommand(parseFetched), perPackage: true,
			statuses: apiFetchStatuses(), okStatus: http.StatusNoContent, failure: unexpectedFetchFailure,
			help: opHelp{summary: "fetch a package into the repository", usage: "POST /pkgpanda/repository/<id>",
				answers: "With a JSON body `{\"repository_url\": \"...\"}`, downloads the package and runs `pkgpanda add` on it: 204; " +
					"400 `Request body must be a json object with a `repository_url` key.`, then 400 `Invalid package ID: <id>`; " +
					"500 `An unexpected error has occurred.` when the fetch fails."}},
		opRepoDelete: {name: "repository.delete", actor: routeRepository, mutates: true, needsInstall: true, path: pathItem, method: http.MethodDelete,
			call: pb.PkgpandaCall_REMOVE, hasCall: true, minIDs: 1, maxIDs: -1,
			prepare: prepareAPIIDs(http.StatusNotFound), checks: []precheck{checkNotActive, checkInRepository},
			command: removeCommand(), statuses: apiDeleteStatuses(), okStatus: http.StatusNoContent, failure: hideNoActiveFolder,
			help: opHelp{summary: "remove an inactive package from the repository", usage: "DELETE /pkgpanda/repository/<id>",
				answers: "Runs `pkgpanda remove <id>`: 204; 409 `Package <id> is active, so it can't be removed.`, then 404 `Invalid package ID: <id>`, then 404 `Package <id> not found.`"}},
		opActiveList: {name: "active.list", actor: routeActive, needsInstall: true, path: pathList, method: http.MethodGet,
			call: pb.PkgpandaCall_ACTIVE, hasCall: true,
			prepare: prepareNone, command: activeCommand(), statuses: readStatuses(), okStatus: http.StatusOK, body: idsBody, failure: hideNoActiveFolder,
			help: opHelp{summary: "the active ids, sorted", usage: "GET /pkgpanda/active/",
				answers: "200 with a JSON array of ids; 500 when `pkgpanda active` fails (`An unexpected error has occurred.` on an install with no active folder)."}},
		opActiveGet: {name: "active.get", actor: routeActive, needsInstall: true, path: pathItem, method: http.MethodGet,
			call: pb.PkgpandaCall_GET_ACTIVE_PACKAGE, hasCall: true, minIDs: 1, maxIDs: 1,
			prepare: prepareAPIIDs(http.StatusNotFound), checks: append(slices.Clip(getPackage), checkActive),
			command:   command{parse: parsePackage},
			noCommand: "answered by its checks: those of GET /repository/<id>, then the active set (cached `pkgpanda active`)",
			statuses:  readStatuses(), okStatus: http.StatusOK, body: pkgBody, failure: hideNoActiveFolder,
			help: opHelp{summary: "one active package", usage: "GET /pkgpanda/active/<id>",
				answers: "200 `{\"id\",\"name\",\"version\"}`; first as GET /repository/<id>, then 404 `Package <id> is not active.`"}},
		opActivePut: {name: "active.put", actor: routeActive, mutates: true, needsInstall: true, path: pathList, method: http.MethodPut,
			call: pb.PkgpandaCall_ACTIVATE, hasCall: true, minIDs: 0, maxIDs: -1,
			prepare: prepareActivePut, checks: []precheck{checkAllPresent},
			command: activateCommand(), statuses: apiActivateStatuses(), okStatus: http.StatusNoContent,
			help: opHelp{summary: "activate exactly the given packages", usage: "PUT /pkgpanda/active/",
				answers: "With a JSON array of ids, runs `pkgpanda activate <id>...`: 204; 400 `Request body must be a json array of package IDs.`; " +
					"409 `{\"error\": \"Not all packages in the request are present on this node.\", \"missing_packages\": [...]}`; 409 with the tool's message when it refuses the set; " +
					"409 for an empty array (the tool cannot deactivate everything)."}},
	}
}

// callOp returns the operation an api/v1 call asks for.
func (p *Process) callOp(call *pb.PkgpandaCall) (opID, bool) {
	if call.Type == pb.PkgpandaCall_CHECK {
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
	switch r.Status {
	case http.StatusServiceUnavailable:
		r.SetHeader("Retry-After", "1")
	case http.StatusUnauthorized:
		if c := p.challenge(); c != "" {
			r.SetHeader("WWW-Authenticate", c)
		}
	}
}

// prepareOp runs op's prepare on what a front-end extracted. On success
// the call holds in's tarball (released with its uploads); on failure
// the caller still owns it.
func (p *Process) prepareOp(op opID, in opInput) (*opArgs, *pb.PkgpandaResponse) {
	s := &p.ops[op]
	args, fail := s.prepare(p, in)
	if fail != nil {
		return nil, fail
	}
	args.op = op
	if in.tarball != nil && !slices.Contains(args.ups, in.tarball) {
		args.ups = append(args.ups, in.tarball)
	}
	switch s.stream {
	case streamStdout:
		args.stdout = in.out
	case streamProgress:
		args.progress = in.out
	}
	return args, nil
}

// perform is the one execution path of every operation, on its actor
// under its locks: the checks, then the command (once, or once per
// package) with its parse. call.perform applies the failure rewrite.
func (p *Process) perform(ctx context.Context, a *actor, in *opArgs) *pb.PkgpandaResponse {
	s := &p.ops[in.op]
	for _, check := range s.checks {
		if r := check(ctx, p, a, in); r != nil {
			return r
		}
	}
	r := ok(s.okStatus)
	switch {
	case s.argv == nil:
		if err := s.parse(in, nil, r); err != nil {
			return failed(http.StatusBadGateway, "answering %s: %v", s.name, err)
		}
	case s.perPackage:
		for _, pkg := range in.pkgs {
			in.pkg = pkg
			if a.audit != nil {
				// Its argv names the tarball's path, not the package.
				a.audit.ids = append(a.audit.ids, pkg.id.String())
			}
			if pkg.path == "" { // already in the repository
				if err := s.parse(in, nil, r); err != nil {
					return failed(http.StatusBadGateway, "answering %s: %v", s.name, err)
				}
				continue
			}
			if fail := p.runCommand(ctx, a, &s.command, in, s.statuses, r); fail != nil {
				return p.hideFileFailure(in, fail)
			}
		}
	default:
		if fail := p.runCommand(ctx, a, &s.command, in, s.statuses, r); fail != nil {
			return fail
		}
	}
	return r
}
