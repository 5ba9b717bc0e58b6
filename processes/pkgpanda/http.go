package pkgpanda

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/procpanda/procpanda/libprocess"
)

// PackageIDHeader is the request header add accepts the package id in,
// as an alternative to the `id` query parameter.
const PackageIDHeader = "Pkgpanda-Package-Id"

// packageJSON is the Pkgpanda API's package object.
type packageJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

func packageBody(pk *PkgpandaPackage) packageJSON {
	return packageJSON{ID: pk.Id, Name: pk.Name, Version: pk.Version}
}

// httpFailure renders a failed operation as the API's JSON error.
func httpFailure(r *PkgpandaResponse) libprocess.Response {
	status := int(r.Status)
	var resp libprocess.Response
	if len(r.MissingPackages) > 0 {
		resp = libprocess.JSONResponse(status, map[string]any{"error": r.Error, "missing_packages": r.MissingPackages})
	} else {
		resp = libprocess.ErrorResponse(status, r.Error)
	}
	if status == http.StatusServiceUnavailable {
		resp.SetHeader("Retry-After", "1")
	}
	return resp
}

// render renders an operation's response with r's status: failures as
// JSON errors, 204 (or a success without a body renderer) as an empty
// body, other successes with success.
func render(r *PkgpandaResponse, success func(*PkgpandaResponse) libprocess.Response) libprocess.Response {
	if r.Status >= 400 {
		return httpFailure(r)
	}
	if r.Status == http.StatusNoContent || success == nil {
		return libprocess.Response{Status: int(r.Status)}
	}
	return success(r)
}

func idsBody(r *PkgpandaResponse) libprocess.Response {
	ids := r.PackageIds
	if ids == nil {
		ids = []string{}
	}
	return libprocess.JSONResponse(int(r.Status), ids)
}

func pkgBody(r *PkgpandaResponse) libprocess.Response {
	return libprocess.JSONResponse(int(r.Status), packageBody(r.Package))
}

func addBody(r *PkgpandaResponse) libprocess.Response {
	return libprocess.JSONResponse(int(r.Status), struct {
		packageJSON
		AlreadyAdded bool `json:"already_added"`
	}{packageBody(r.Package), r.AlreadyAdded})
}

func checksBody(r *PkgpandaResponse) libprocess.Response {
	type entry struct {
		ID     string   `json:"id"`
		Checks []string `json:"checks"`
	}
	out := make([]entry, 0, len(r.Checks))
	for _, c := range r.Checks {
		out = append(out, entry{c.PackageId, c.Checks})
	}
	return libprocess.JSONResponse(int(r.Status), out)
}

// emptyText is the body of a streamed success that printed nothing.
func emptyText(r *PkgpandaResponse) libprocess.Response {
	return libprocess.TextResponse(int(r.Status), "")
}

func removedBody(r *PkgpandaResponse) libprocess.Response {
	return libprocess.JSONResponse(int(r.Status), map[string][]string{"removed": r.PackageIds})
}

func methodNotAllowed(allow ...string) libprocess.Response {
	if slices.Contains(allow, http.MethodGet) {
		allow = append(allow, http.MethodHead) // GET routes serve HEAD too
	}
	r := libprocess.ErrorResponse(http.StatusMethodNotAllowed, "method not allowed; allowed: "+strings.Join(allow, ", "))
	r.SetHeader("Allow", strings.Join(allow, ", "))
	return r
}

// allowed reports whether req's method is one of methods; HEAD counts as
// GET, as HTTP defines it.
func allowed(req *libprocess.Request, methods ...string) bool {
	m := req.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	return slices.Contains(methods, m)
}

// subPath returns the path below the matched route, e.g. "/mesos--0.22.0"
// for /pkgpanda/repository/mesos--0.22.0 ("" or "/" for the route itself).
func subPath(req *libprocess.Request) string {
	path := req.URL.Path
	prefix := "/" + ProcessID + "/" + req.Route
	if i := strings.Index(path, prefix); i >= 0 {
		return path[i+len(prefix):]
	}
	return path
}

// serveOp dispatches op for an HTTP request from c (authenticated by
// guard); refusals, a full queue or a draining process are
// answered as JSON errors (503 with Retry-After, 401 with a challenge).
// own is req.ReleaseProcess on the handler's goroutine, nil on any other
// (see invocation.own).
func (p *Process) serveOp(op opID, req *libprocess.Request, respond libprocess.Responder, c caller, own func() bool, run func(ctx context.Context, a *actor, detach func())) {
	p.dispatch(invocation{op: op, caller: c, ctx: req.Context(), own: own, run: run, reject: p.rejectHTTP(respond)})
}

// callerHandler is a pkgpanda route's handler: a libprocess route
// handler that also gets its request's caller, authenticated once by
// guard.
type callerHandler func(req *libprocess.Request, respond libprocess.Responder, c caller)

// guard authenticates the request's Authorization header, once per
// request, and answers 401 at once, before a route parses anything, when
// the request could be admitted to no operation at all (no or bad
// credentials while reads are not open). dispatch still decides for the
// operation itself, with the caller h passes on.
func (p *Process) guard(h callerHandler) libprocess.RouteHandler {
	return func(req *libprocess.Request, respond libprocess.Responder) {
		c := p.httpCaller(req)
		if _, r := p.mayStart(c); r != nil {
			p.rejectHTTP(respond)(r.status, r.msg)
			return
		}
		h(req, respond, c)
	}
}

// postIDs checks that req is a POST carrying between min and max `id`
// query parameters (max 0: no limit) and returns them as sent; the
// table's prepare validates them. When not, it has answered (405 or 400)
// and ok is false.
func postIDs(req *libprocess.Request, respond libprocess.Responder, min, max int) (ids []string, ok bool) {
	if !allowed(req, http.MethodPost) {
		respond(methodNotAllowed(http.MethodPost))
		return nil, false
	}
	raw := req.URL.Query()["id"]
	switch {
	case len(raw) < min:
		respond(libprocess.ErrorResponse(http.StatusBadRequest, fmt.Sprintf("want at least %d `id` query parameter(s)", min)))
		return nil, false
	case max > 0 && len(raw) > max:
		respond(libprocess.ErrorResponse(http.StatusBadRequest, fmt.Sprintf("want at most %d `id` query parameter(s)", max)))
		return nil, false
	}
	return raw, true
}

// streamer answers a streamed run: the response (200, chunked text/plain)
// starts with the first stdout byte, so a run that fails before printing
// anything still gets its proper error status.
type streamer struct {
	respond libprocess.Responder
	detach  func()
	mu      sync.Mutex
	pw      *io.PipeWriter
}

func (s *streamer) Write(b []byte) (int, error) {
	s.mu.Lock()
	if s.pw == nil {
		pr, pw := io.Pipe()
		s.pw = pw
		s.detach()
		s.respond(libprocess.Response{
			Status: http.StatusOK,
			Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "X-Content-Type-Options": {"nosniff"}},
			Stream: pr,
		})
	}
	pw := s.pw
	s.mu.Unlock()
	return pw.Write(b)
}

// started reports whether the streamed response has begun.
func (s *streamer) started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pw != nil
}

// finish ends the run: before any output it answers r as JSON; after
// output began it appends a failure line (the status is already sent)
// and closes the stream.
func (s *streamer) finish(r *PkgpandaResponse, success func(*PkgpandaResponse) libprocess.Response) {
	s.mu.Lock()
	pw := s.pw
	s.mu.Unlock()
	if pw == nil {
		s.respond(render(r, success))
		return
	}
	if r.Status >= 400 {
		_, _ = fmt.Fprintf(pw, "\npkgpanda failed (%d): %s\n", r.Status, r.Error)
	}
	_ = pw.Close()
}

// unauthenticatedWarning is the /help of every route of a process run
// without authentication on purpose (Config.Unauthenticated).
const unauthenticatedWarning = "WARNING: none. This process was started without authentication on purpose " +
	"(--insecure-allow-unauthenticated-mutations): anyone who can reach it may add, activate and remove packages, " +
	"which run as the daemon's user."

// route installs a route guarded by guard, its help saying how it is
// authenticated and, for the operations ops, authorized.
func (p *Process) route(name string, h libprocess.Help, ops []opID, handler callerHandler) {
	if a := p.cfg.Authenticator; a != nil {
		h.Authentication = "Required: " + a.Scheme() + " credentials in the Authorization header (realm " + p.cfg.realm() + ")"
		if p.cfg.OpenReads {
			h.Authentication += "; read-only operations are open to callers without credentials"
		}
		h.Authorization = "Any authenticated principal."
		if p.cfg.ACL != nil {
			h.Authorization = p.aclHelp(ops)
		}
	} else if p.cfg.Unauthenticated {
		h.Authentication = unauthenticatedWarning
	}
	p.lp.Route(name, h, p.guard(handler))
	if err := p.lp.SetRouteTimeout(name, p.cfg.routeDeadline(name)); err != nil {
		panic("pkgpanda: " + err.Error()) // the route was just installed
	}
}

// aclHelp says, from the table, which permission each of ops needs.
func (p *Process) aclHelp(ops []opID) string {
	var read, mutate []string
	for _, op := range ops {
		if s := &p.ops[op]; s.mutates {
			mutate = append(mutate, s.name)
		} else {
			read = append(read, s.name)
		}
	}
	var parts []string
	if len(read) > 0 {
		parts = append(parts, "the read permission for "+strings.Join(read, ", "))
	}
	if len(mutate) > 0 {
		parts = append(parts, "the mutate permission for "+strings.Join(mutate, ", "))
	}
	return "By the ACL: " + strings.Join(parts, "; ") + "."
}

// routeOps returns the operations a route serves, in table order.
func (p *Process) routeOps(route string) []opID {
	var out []opID
	for op := range p.ops {
		if p.ops[op].actor == route {
			out = append(out, opID(op))
		}
	}
	return out
}

// routeHelp builds a route's /help from the table's help of its
// operations: their summaries (the TLDR), their requests (the usage) and
// what each answers (the description).
func (p *Process) routeHelp(route string, ops []opID) libprocess.Help {
	var summaries, usages, answers []string
	for _, op := range ops {
		h := &p.ops[op].help
		summaries = append(summaries, h.summary)
		usages = append(usages, h.usage)
		if len(ops) == 1 {
			answers = append(answers, h.answers)
		} else {
			answers = append(answers, h.usage+": "+h.summary+". "+h.answers)
		}
	}
	tldr := strings.Join(summaries, "; ") + "."
	if route == RouteRepository || route == RouteActive {
		tldr = "Pkgpanda API: " + tldr
		answers = append(answers, apiEdgesHelp)
	} else if r := []rune(tldr); len(r) > 0 {
		tldr = strings.ToUpper(string(r[0])) + string(r[1:])
	}
	return libprocess.Help{TLDR: tldr, Usage: strings.Join(usages, " | "), Description: strings.Join(answers, " ")}
}

// callsHelp lists the api/v1 call types and what each asks for, from the
// table.
func (p *Process) callsHelp() string {
	var calls []string
	for op := range p.ops {
		s := &p.ops[op]
		if !s.hasCall {
			continue
		}
		name := s.call.String()
		if op == int(opCheckList) {
			name += " with list_checks"
		}
		calls = append(calls, name+" ("+s.help.usage+": "+s.help.summary+")")
	}
	return "Calls: " + strings.Join(calls, "; ") + "."
}

// installRoutes installs every route: each route's handler extracts what
// its requests carry and runs the table's operation (serveTableOp); the
// help comes from the table.
func (p *Process) installRoutes() {
	handlers := map[string]callerHandler{
		RouteListJSON:   p.serveListJSON,
		RouteActiveJSON: p.serveActiveJSON,
		RouteAdd:        p.serveAdd,
		RouteRemove:     p.serveRemove,
		RouteActivate:   p.serveActivate,
		RouteSwap:       p.serveSwap,
		RouteFetch:      p.serveFetch,
		RouteCheck:      p.serveCheck,
		RouteRepository: p.serveAPI,
		RouteActive:     p.serveAPI,
	}
	for _, name := range RouteNames() {
		ops := p.routeOps(name)
		p.route(name, p.routeHelp(name, ops), ops, handlers[name])
	}
	var calls []opID
	for op := range p.ops {
		if p.ops[op].hasCall {
			calls = append(calls, opID(op))
		}
	}
	p.route(RouteAPIv1, libprocess.Help{
		TLDR:  "PkgpandaCall/PkgpandaResponse API (JSON or protobuf).",
		Usage: "POST /pkgpanda/api/v1",
		Description: "The body is a `mesos.internal.PkgpandaCall` (see pkgpanda.proto) as `application/json` or `application/x-protobuf` (Content-Type); " +
			"the answer is a `mesos.internal.PkgpandaResponse` in the type chosen by Accept (JSON when absent). " +
			"A call runs the same operation as its HTTP route, with the same checks, and the HTTP status is the operation's (see the response's `status`; 200 where the route answers 204). " +
			"415 for other content types, 406 for an unacceptable Accept, 400 for a body that does not decode. " +
			"A protobuf body is read field by field, its tarball going straight to disk; a JSON body is capped at 1 MiB (413). " +
			"The Authorization header authenticates; the call's `authorization` field must be absent or equal to it (400). " +
			"The same call can be sent as a libprocess message to pkgpanda@host:port, with the credentials in `authorization`; the response comes back to the sender as a message. " +
			p.callsHelp(),
	}, calls, p.serveAPIv1)
}

func (p *Process) serveListJSON(req *libprocess.Request, respond libprocess.Responder, c caller) {
	p.serveIDList(req, respond, c, opListJSON)
}

func (p *Process) serveActiveJSON(req *libprocess.Request, respond libprocess.Responder, c caller) {
	p.serveIDList(req, respond, c, opActiveJSON)
}

// serveIDList answers GET on a route that lists ids (list.json,
// active.json).
func (p *Process) serveIDList(req *libprocess.Request, respond libprocess.Responder, c caller, op opID) {
	if !allowed(req, http.MethodGet) {
		respond(methodNotAllowed(http.MethodGet))
		return
	}
	if s := subPath(req); s != "" && s != "/" {
		respond(libprocess.ErrorResponse(http.StatusNotFound, "no such route"))
		return
	}
	p.serveTableOp(op, opInput{}, req, respond, c, nil)
}

// serveAdd reads the package id (query or header), checks it before
// reading anything (with the table's prepare's own check), streams the
// body to an upload file and runs the add as an ADD call would.
func (p *Process) serveAdd(req *libprocess.Request, respond libprocess.Responder, c caller) {
	if !allowed(req, http.MethodPost) {
		respond(methodNotAllowed(http.MethodPost))
		return
	}
	q, h := req.URL.Query().Get("id"), req.Header().Get(PackageIDHeader)
	raw := q
	switch {
	case q == "" && h == "":
		respond(libprocess.ErrorResponse(http.StatusBadRequest, "the package id is needed: `id` query parameter or "+PackageIDHeader+" header"))
		return
	case q == "":
		raw = h
	case h != "" && h != q:
		respond(libprocess.ErrorResponse(http.StatusBadRequest, "the `id` query parameter and the "+PackageIDHeader+" header differ"))
		return
	}
	if _, fail := parseToolIDs([]string{raw}); fail != nil {
		respond(render(fail, nil))
		return
	}
	var body io.Reader = bytes.NewReader(req.Body)
	if req.BodyStream != nil {
		body = req.BodyStream
	} else if len(req.Body) == 0 {
		respond(libprocess.ErrorResponse(http.StatusBadRequest, "the request body must be the package tarball"))
		return
	}
	// Nothing is written for a caller that would be refused.
	reject := p.rejectHTTP(respond)
	if r := p.admit(opAdd, c); r != nil {
		reject(r.status, r.msg)
		return
	}
	limit := p.cfg.maxAddSize()
	up, run, err := p.beginUpload()
	if err != nil {
		if errors.Is(err, errUploadsFull) {
			p.m.uploadsRejected.Inc()
		}
		fail := uploadFailure(err, limit)
		reject(int(fail.Status), fail.Error)
		return
	}
	// Stream the body to disk on a goroutine Drain waits for (never on
	// the process' goroutine, and outside the write lock), then run the
	// add, which holds only the file name.
	run(func() { reject(http.StatusInternalServerError, internalError) }, func() {
		n, err := p.receive(up, tarballFile, body, limit)
		up.received()
		if err == nil && n == 0 {
			err = errors.New("the tarball is empty")
		}
		if err != nil {
			up.remove()
			discardSome(body)
			fail := uploadFailure(err, limit)
			reject(int(fail.Status), fail.Error)
			return
		}
		p.serveTableOp(opAdd, opInput{ids: []string{raw}, tarball: up}, req, respond, c, nil)
	})
}

// maxJSONBody bounds the JSON bodies of PUT /active/ and
// POST /repository/<id>.
const maxJSONBody = 1 << 20

// withBody hands the request body (at most limit bytes) to then: at once
// when the runtime buffered it, else after reading the stream on a
// goroutine Drain waits for. A larger body answers 413 with tooLarge.
// then's own is req.ReleaseProcess when then runs on the handler's
// goroutine and nil on the reading one, where the process must not be
// released (see libprocess.Request.ReleaseProcess).
func (p *Process) withBody(req *libprocess.Request, respond libprocess.Responder, limit int64, tooLarge string, then func(body []byte, own func() bool)) {
	if req.BodyStream == nil {
		if int64(len(req.Body)) > limit {
			respond(libprocess.ErrorResponse(http.StatusRequestEntityTooLarge, tooLarge))
			return
		}
		then(req.Body, nil)
		return
	}
	ok := p.goUpload("reading a request body", func() {
		respond(libprocess.ErrorResponse(http.StatusInternalServerError, internalError))
	}, func() {
		b, err := io.ReadAll(io.LimitReader(req.BodyStream, limit+1))
		switch {
		case errors.Is(err, libprocess.ErrBodyTooLarge) || (err == nil && int64(len(b)) > limit):
			discardSome(req.BodyStream)
			respond(libprocess.ErrorResponse(http.StatusRequestEntityTooLarge, tooLarge))
		case err != nil:
			respond(libprocess.ErrorResponse(http.StatusBadRequest, "reading the request body: "+err.Error()))
		default:
			then(b, nil)
		}
	})
	if !ok {
		p.rejectHTTP(respond)(http.StatusServiceUnavailable, "pkgpanda is shutting down")
	}
}

func (p *Process) serveRemove(req *libprocess.Request, respond libprocess.Responder, c caller) {
	if ids, ok := postIDs(req, respond, 1, 0); ok {
		p.serveTableOp(opRemove, opInput{ids: ids}, req, respond, c, nil)
	}
}

func (p *Process) serveActivate(req *libprocess.Request, respond libprocess.Responder, c caller) {
	if ids, ok := postIDs(req, respond, 1, 0); ok {
		p.serveTableOp(opActivate, opInput{ids: ids}, req, respond, c, nil)
	}
}

func (p *Process) serveSwap(req *libprocess.Request, respond libprocess.Responder, c caller) {
	if ids, ok := postIDs(req, respond, 1, 1); ok {
		p.serveTableOp(opSwap, opInput{ids: ids}, req, respond, c, nil)
	}
}

func (p *Process) serveFetch(req *libprocess.Request, respond libprocess.Responder, c caller) {
	if ids, ok := postIDs(req, respond, 1, 0); ok {
		p.serveTableOp(opFetch, opInput{ids: ids, url: req.URL.Query().Get("repository_url")}, req, respond, c, nil)
	}
}

func (p *Process) serveCheck(req *libprocess.Request, respond libprocess.Responder, c caller) {
	if !allowed(req, http.MethodGet) {
		respond(methodNotAllowed(http.MethodGet))
		return
	}
	op := opCheck
	switch v := req.URL.Query().Get("list"); v {
	case "", "false", "0":
	case "true", "1":
		op = opCheckList
	default:
		respond(libprocess.ErrorResponse(http.StatusBadRequest, "`list` must be true or false"))
		return
	}
	p.serveTableOp(op, opInput{}, req, respond, c, nil)
}
