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
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
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
		resp.Header.Set("Retry-After", "1")
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

func removedBody(r *PkgpandaResponse) libprocess.Response {
	return libprocess.JSONResponse(int(r.Status), map[string][]string{"removed": r.PackageIds})
}

func methodNotAllowed(allow ...string) libprocess.Response {
	if slices.Contains(allow, http.MethodGet) {
		allow = append(allow, http.MethodHead) // GET routes serve HEAD too
	}
	r := libprocess.ErrorResponse(http.StatusMethodNotAllowed, "method not allowed; allowed: "+strings.Join(allow, ", "))
	r.Header.Set("Allow", strings.Join(allow, ", "))
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

// serveOp dispatches op for an HTTP request, authenticated by its
// Authorization header; refusals, a full queue or a draining process are
// answered as JSON errors (503 with Retry-After, 401 with a challenge).
func (p *Process) serveOp(op opID, req *libprocess.Request, respond libprocess.Responder, run func(ctx context.Context, a *actor, detach func())) {
	p.dispatch(invocation{op: op, caller: p.httpCaller(req), ctx: req.Context(), run: run, reject: p.rejectHTTP(respond)})
}

// guard answers 401 at once, before a route parses anything, when the
// request could be admitted to no operation at all (no or bad
// credentials while reads are not open). dispatch still decides for the
// operation itself.
func (p *Process) guard(h libprocess.RouteHandler) libprocess.RouteHandler {
	return func(req *libprocess.Request, respond libprocess.Responder) {
		if _, r := p.mayStart(p.httpCaller(req)); r != nil {
			p.rejectHTTP(respond)(r.status, r.msg)
			return
		}
		h(req, respond)
	}
}

// queryIDs validates the repeated `id` query parameter.
func queryIDs(req *libprocess.Request, min, max int) ([]cli.ID, error) {
	raw := req.URL.Query()["id"]
	if len(raw) < min {
		return nil, fmt.Errorf("want at least %d `id` query parameter(s)", min)
	}
	if max > 0 && len(raw) > max {
		return nil, fmt.Errorf("want at most %d `id` query parameter(s)", max)
	}
	return parseIDs(raw)
}

// postIDs checks that req is a POST carrying between min and max `id`
// query parameters (max 0: no limit), all valid package ids. When not, it
// has answered (405 or 400) and ok is false.
func postIDs(req *libprocess.Request, respond libprocess.Responder, min, max int) (ids []cli.ID, ok bool) {
	if !allowed(req, http.MethodPost) {
		respond(methodNotAllowed(http.MethodPost))
		return nil, false
	}
	ids, err := queryIDs(req, min, max)
	if err != nil {
		respond(libprocess.ErrorResponse(http.StatusBadRequest, err.Error()))
		return nil, false
	}
	return ids, true
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

// route installs a route guarded by guard, its help saying how it is
// authenticated and authorized.
func (p *Process) route(name string, h libprocess.Help, handler libprocess.RouteHandler) {
	if a := p.cfg.Authenticator; a != nil {
		h.Authentication = "Required: " + a.Scheme() + " credentials in the Authorization header (realm " + p.cfg.realm() + ")"
		if p.cfg.OpenReads {
			h.Authentication += "; read-only operations are open to callers without credentials"
		}
		h.Authorization = "Any authenticated principal."
		if p.cfg.ACL != nil {
			h.Authorization = "By the ACL: GET (list, active, get, check) needs the read permission; add, fetch, remove, activate and swap need the mutate permission."
		}
	}
	p.lp.Route(name, h, p.guard(handler))
	if err := p.lp.SetRouteTimeout(name, p.cfg.routeDeadline(name)); err != nil {
		panic("pkgpanda: " + err.Error()) // the route was just installed
	}
}

func (p *Process) installRoutes() {
	p.route(RouteListJSON, libprocess.Help{
		TLDR:        "Lists the packages in the local repository.",
		Usage:       "GET /pkgpanda/list.json",
		Description: "Runs `pkgpanda list` and answers 200 with a sorted JSON array of package ids. Tool failures: 502 (unexpected output or crash), 500 (`ERROR:`).",
	}, p.serveListJSON)
	p.route(RouteActiveJSON, libprocess.Help{
		TLDR:        "Lists the active packages.",
		Usage:       "GET /pkgpanda/active.json",
		Description: "Runs `pkgpanda active` and answers 200 with a sorted JSON array of active package ids.",
	}, p.serveActiveJSON)
	p.route(RouteAdd, libprocess.Help{
		TLDR:  "Adds a package tarball to the local repository.",
		Usage: "POST /pkgpanda/add?id=<name>--<version>  (or header " + PackageIDHeader + ": <id>), body: the package's .tar.xz",
		Description: "The request body is the package tarball, as produced by the package build (`<id>.tar.xz`). " +
			"It is written to `<id>.tar.xz` in a private temporary directory and `pkgpanda add` is run on it. " +
			"The id comes from the `id` query parameter or the " + PackageIDHeader + " header, never from a client path, " +
			"and must be a valid package id (400 otherwise). Answers 200 `{\"id\",\"name\",\"version\",\"already_added\"}`; " +
			"413 when the body exceeds the size cap; 503 with Retry-After when too many uploads are being received or their bytes reach the bound; " +
			"409 for `Validation Error`, 404 for `Package Error`, 500 for `ERROR:`.",
	}, p.serveAdd)
	p.route(RouteRemove, libprocess.Help{
		TLDR:        "Removes packages from the local repository.",
		Usage:       "POST /pkgpanda/remove?id=<id>[&id=<id>...]",
		Description: "Runs `pkgpanda remove <id>...` and answers 200 `{\"removed\": [ids]}` (ids not in the repository are skipped by the tool). 409 when a package is active.",
	}, p.serveRemove)
	p.route(RouteActivate, libprocess.Help{
		TLDR:        "Replaces the active set.",
		Usage:       "POST /pkgpanda/activate?id=<id>[&id=<id>...]",
		Description: "Runs `pkgpanda activate <id>...`: the given ids become the whole active set. 204 on success; 409 for `Validation Error`, 404 for `Package Error`.",
	}, p.serveActivate)
	p.route(RouteSwap, libprocess.Help{
		TLDR:        "Swaps the active package of one name.",
		Usage:       "POST /pkgpanda/swap?id=<id>",
		Description: "Runs `pkgpanda swap <id>`, replacing the active package of the same name. 204 on success; 409 when no package of that name is active.",
	}, p.serveSwap)
	p.route(RouteFetch, libprocess.Help{
		TLDR:  "Fetches packages from a remote repository (streamed).",
		Usage: "POST /pkgpanda/fetch?repository_url=<url>&id=<id>[&id=<id>...]",
		Description: "Runs `pkgpanda fetch --repository-url=<url> <id>...` and streams its progress output (chunked text/plain). " +
			"A failure before any output answers a JSON error (409/404/500/502); after output began, the stream ends with a `pkgpanda failed (<status>): <message>` line.",
	}, p.serveFetch)
	p.route(RouteCheck, libprocess.Help{
		TLDR:  "Runs or lists the active packages' checks.",
		Usage: "GET /pkgpanda/check[?list=true]",
		Description: "Without `list`, runs `pkgpanda check` and streams its output (chunked text/plain); a client that goes away cancels it. " +
			"With `list=true`, runs `pkgpanda check --list` and answers 200 `[{\"id\", \"checks\": [...]}]`.",
	}, p.serveCheck)
	p.route(RouteRepository, libprocess.Help{
		TLDR:  "Pkgpanda API: the local package repository.",
		Usage: "GET /pkgpanda/repository/ | GET|POST|DELETE /pkgpanda/repository/<id>",
		Description: p.apiHelp(RouteRepository) +
			"GET /repository/<id>: 404 `Invalid package ID: <id>`, then 404 `Package <id> not found.`, then 500 `Unable to load package <id>.` " +
			"POST /repository/<id> with a JSON body `{\"repository_url\": \"...\"}`: 204; 400 `Request body must be a json object with a `repository_url` key.`, " +
			"then 400 `Invalid package ID: <id>`; 500 `An unexpected error has occurred.` when the fetch fails. " +
			"DELETE /repository/<id>: 204; 409 `Package <id> is active, so it can't be removed.`, then 404 `Invalid package ID: <id>`, then 404 `Package <id> not found.` " +
			apiEdgesHelp,
	}, p.serveAPI)
	p.route(RouteActive, libprocess.Help{
		TLDR:  "Pkgpanda API: the active packages.",
		Usage: "GET|PUT /pkgpanda/active/ | GET /pkgpanda/active/<id>",
		Description: p.apiHelp(RouteActive) +
			"GET /active/<id>: first as GET /repository/<id>, then 404 `Package <id> is not active.` " +
			"PUT /active/ with a JSON array of ids: activates exactly those, 204; 400 `Request body must be a json array of package IDs.`; " +
			"409 `{\"error\": \"Not all packages in the request are present on this node.\", \"missing_packages\": [...]}`; 409 with the tool's message when it refuses the set; " +
			"409 for an empty array (the tool cannot deactivate everything). " + apiEdgesHelp,
	}, p.serveAPI)
	p.route(RouteAPIv1, libprocess.Help{
		TLDR:  "PkgpandaCall/PkgpandaResponse API (JSON or protobuf).",
		Usage: "POST /pkgpanda/api/v1",
		Description: "The body is a `mesos.internal.PkgpandaCall` (see pkgpanda.proto) as `application/json` or `application/x-protobuf` (Content-Type); " +
			"the answer is a `mesos.internal.PkgpandaResponse` in the type chosen by Accept (JSON when absent). " +
			"The HTTP status is the operation's (see the response's `status`). 415 for other content types, 406 for an unacceptable Accept, 400 for a body that does not decode. " +
			"A protobuf body is read field by field, its tarball going straight to disk; a JSON body is capped at 1 MiB (413). " +
			"The Authorization header authenticates; the call's `authorization` field must be absent or equal to it (400). " +
			"The same call can be sent as a libprocess message to pkgpanda@host:port, with the credentials in `authorization`; the response comes back to the sender as a message.",
	}, p.serveAPIv1)
}

func (p *Process) serveListJSON(req *libprocess.Request, respond libprocess.Responder) {
	p.serveIDList(req, respond, opListJSON, p.opList)
}

func (p *Process) serveActiveJSON(req *libprocess.Request, respond libprocess.Responder) {
	p.serveIDList(req, respond, opActiveJSON, p.opActive)
}

// serveIDList answers GET on a route that lists ids (list.json,
// active.json) with op run by that route's actor.
func (p *Process) serveIDList(req *libprocess.Request, respond libprocess.Responder, id opID, op func(context.Context, *actor) *PkgpandaResponse) {
	if !allowed(req, http.MethodGet) {
		respond(methodNotAllowed(http.MethodGet))
		return
	}
	if s := subPath(req); s != "" && s != "/" {
		respond(libprocess.ErrorResponse(http.StatusNotFound, "no such route"))
		return
	}
	p.serveOp(id, req, respond, func(ctx context.Context, a *actor, _ func()) {
		respond(render(op(ctx, a), idsBody))
	})
}

func (p *Process) serveAdd(req *libprocess.Request, respond libprocess.Responder) {
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
	id, err := cli.ParseID(raw)
	if err != nil {
		respond(libprocess.ErrorResponse(http.StatusBadRequest, err.Error()))
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
	c := p.httpCaller(req)
	reject := p.rejectHTTP(respond)
	if r := p.admit(opAdd, c); r != nil {
		reject(r.status, r.msg)
		return
	}
	limit := p.cfg.maxAddSize()
	up, err := p.uploads.begin()
	if err != nil {
		if errors.Is(err, errUploadsFull) {
			p.m.uploadsRejected.Inc()
		}
		fail := uploadFailure(err, limit)
		reject(int(fail.Status), fail.Error)
		return
	}
	// Stream the body to disk on a goroutine Drain waits for (never on
	// the process' goroutine, and outside the write lock), then dispatch
	// the add, which holds only the file name.
	ok := p.goUpload(func() {
		file := up.path(id.String() + ".tar.xz")
		n, err := p.receive(up, id.String()+".tar.xz", body, limit)
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
		p.dispatch(invocation{op: opAdd, caller: c, ctx: req.Context(), reject: reject, release: up.remove,
			run: func(ctx context.Context, a *actor, _ func()) {
				r := p.opAddFile(ctx, a, id, file)
				up.remove() // before answering: the answer means the upload is gone
				respond(render(r, p.ops[opAdd].body))
			}})
	})
	if !ok {
		up.remove()
		reject(http.StatusServiceUnavailable, "pkgpanda is shutting down")
	}
}

// maxJSONBody bounds the JSON bodies of PUT /active/ and
// POST /repository/<id>.
const maxJSONBody = 1 << 20

// withBody hands the request body (at most limit bytes) to then: at once
// when the runtime buffered it, else after reading the stream on a
// goroutine Drain waits for. A larger body answers 413 with tooLarge.
func (p *Process) withBody(req *libprocess.Request, respond libprocess.Responder, limit int64, tooLarge string, then func(body []byte)) {
	if req.BodyStream == nil {
		if int64(len(req.Body)) > limit {
			respond(libprocess.ErrorResponse(http.StatusRequestEntityTooLarge, tooLarge))
			return
		}
		then(req.Body)
		return
	}
	ok := p.goUpload(func() {
		b, err := io.ReadAll(io.LimitReader(req.BodyStream, limit+1))
		switch {
		case errors.Is(err, libprocess.ErrBodyTooLarge) || (err == nil && int64(len(b)) > limit):
			discardSome(req.BodyStream)
			respond(libprocess.ErrorResponse(http.StatusRequestEntityTooLarge, tooLarge))
		case err != nil:
			respond(libprocess.ErrorResponse(http.StatusBadRequest, "reading the request body: "+err.Error()))
		default:
			then(b)
		}
	})
	if !ok {
		p.rejectHTTP(respond)(http.StatusServiceUnavailable, "pkgpanda is shutting down")
	}
}

func (p *Process) serveRemove(req *libprocess.Request, respond libprocess.Responder) {
	ids, ok := postIDs(req, respond, 1, 0)
	if !ok {
		return
	}
	p.serveOp(opRemove, req, respond, func(ctx context.Context, a *actor, _ func()) {
		respond(render(p.opRemove(ctx, a, ids, p.ops[opRemove].statuses), p.ops[opRemove].body))
	})
}

func (p *Process) serveActivate(req *libprocess.Request, respond libprocess.Responder) {
	ids, ok := postIDs(req, respond, 1, 0)
	if !ok {
		return
	}
	p.serveOp(opActivate, req, respond, func(ctx context.Context, a *actor, _ func()) {
		respond(render(p.opActivate(ctx, a, ids, p.ops[opActivate].statuses), nil))
	})
}

func (p *Process) serveSwap(req *libprocess.Request, respond libprocess.Responder) {
	if _, ok := postIDs(req, respond, 1, 1); !ok {
		return
	}
	p.serveAPIOp(opSwap, opInput{ids: req.URL.Query()["id"]}, req, respond)
}

func (p *Process) serveFetch(req *libprocess.Request, respond libprocess.Responder) {
	ids, ok := postIDs(req, respond, 1, 0)
	if !ok {
		return
	}
	url := req.URL.Query().Get("repository_url")
	if url == "" {
		respond(libprocess.ErrorResponse(http.StatusBadRequest, "the `repository_url` query parameter is needed"))
		return
	}
	if _, err := p.cfg.Tool.Fetch(url, ids...); err != nil {
		respond(libprocess.ErrorResponse(http.StatusBadRequest, err.Error()))
		return
	}
	// The progress streams from the download on (a mutation: the client
	// going away does not cancel it, so detaching is moot).
	s := &streamer{respond: respond, detach: func() {}}
	fj := p.newFetchJob(RouteFetch, url, ids, s, cliStatuses())
	done := func(r *PkgpandaResponse) {
		s.finish(r, func(r *PkgpandaResponse) libprocess.Response { return libprocess.TextResponse(http.StatusOK, "") })
	}
	timeout := p.actors[RouteFetch].limits.Timeout
	p.dispatch(invocation{op: opFetch, caller: p.httpCaller(req), ctx: req.Context(),
		stage:   func() *PkgpandaResponse { return fj.stage(timeout) },
		release: fj.release,
		reject: func(status int, msg string) {
			r := failed(status, "%s", msg)
			if s.started() {
				done(r)
				return
			}
			p.rejectHTTP(respond)(status, msg)
		},
		run: func(_ context.Context, a *actor, _ func()) {
			r := fj.install(a)
			fj.release()
			done(r)
		}})
}

func (p *Process) serveCheck(req *libprocess.Request, respond libprocess.Responder) {
	if !allowed(req, http.MethodGet) {
		respond(methodNotAllowed(http.MethodGet))
		return
	}
	list := false
	switch v := req.URL.Query().Get("list"); v {
	case "", "false", "0":
	case "true", "1":
		list = true
	default:
		respond(libprocess.ErrorResponse(http.StatusBadRequest, "`list` must be true or false"))
		return
	}
	if list {
		p.serveAPIOp(opCheckList, opInput{}, req, respond)
		return
	}
	p.serveOp(opCheck, req, respond, func(ctx context.Context, a *actor, _ func()) {
		// The request context lives until the stream is closed, so the
		// client going away keeps cancelling the run after output began.
		s := &streamer{respond: respond, detach: func() {}}
		r, _ := p.opCheck(ctx, a, s)
		s.finish(r, func(r *PkgpandaResponse) libprocess.Response {
			return libprocess.TextResponse(http.StatusOK, "")
		})
	})
}
