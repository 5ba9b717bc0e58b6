package pkgpanda

import (
	"bytes"
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// The Pkgpanda API's texts, DC/OS's character for character
// (docs/pkgpanda-cli.md §6.2), and this API's own where docs/pkgpanda-cli.md §6.4 lets it answer better.
const (
	msgFetchBody       = "Request body must be a json object with a `repository_url` key."
	msgActiveBody      = "Request body must be a json array of package IDs."
	msgUnexpected      = "An unexpected error has occurred."
	msgNotFoundURL     = "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."
	msgBadURLValue     = "`repository_url` must be a non-empty string."
	msgActiveElements  = "Request body must be a json array of package IDs: every element must be a string, or every element a number, boolean or null."
	msgEmptyActivation = "Refusing to activate an empty set of packages: the pkgpanda tool cannot deactivate every package."
)

// apiFetchStatuses maps fetch's failures as POST /repository/<id>: any
// failure of the fetch itself is DC/OS's 500.
func apiFetchStatuses() statusMap {
	return statusMap{validation: http.StatusInternalServerError, pkg: http.StatusInternalServerError, toolErr: http.StatusInternalServerError}
}

// parseAPIIDs validates ids as the Pkgpanda API does: the first invalid
// one answers status with DC/OS's text, naming it as the client sent it.
func parseAPIIDs(raw []string, status int) ([]cli.ID, *PkgpandaResponse) {
	ids := make([]cli.ID, 0, len(raw))
	for _, s := range raw {
		id, err := cli.ParseID(s)
		if err != nil {
			return nil, failed(status, "Invalid package ID: %s", s)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// parseToolIDs validates ids for the CLI-surface operations, answering 400
// with the reason.
func parseToolIDs(raw []string) ([]cli.ID, *PkgpandaResponse) {
	ids, err := parseIDs(raw)
	if err != nil {
		return nil, failed(http.StatusBadRequest, "%v", err)
	}
	return ids, nil
}

// The prepares of the operation table: the checks that need no
// subprocess, turning what a front-end extracted into opArgs.

// prepareNone prepares the operations that take no arguments.
func prepareNone(*Process, opInput) (*opArgs, *PkgpandaResponse) { return &opArgs{}, nil }

// prepareToolIDs prepares the CLI-surface operations on package ids.
func prepareToolIDs(_ *Process, in opInput) (*opArgs, *PkgpandaResponse) {
	ids, fail := parseToolIDs(in.ids)
	if fail != nil {
		return nil, fail
	}
	return &opArgs{ids: ids}, nil
}

// prepareAPIIDs prepares the Pkgpanda API operations on package ids: an
// invalid id answers status with DC/OS's text.
func prepareAPIIDs(status int) func(*Process, opInput) (*opArgs, *PkgpandaResponse) {
	return func(_ *Process, in opInput) (*opArgs, *PkgpandaResponse) {
		ids, fail := parseAPIIDs(in.ids, status)
		if fail != nil {
			return nil, fail
		}
		return &opArgs{ids: ids}, nil
	}
}

// prepareActivePut keeps the ids as sent: its check compares them with
// the repository's listing. The tool cannot deactivate everything, so an
// empty set is refused here.
func prepareActivePut(_ *Process, in opInput) (*opArgs, *PkgpandaResponse) {
	if len(in.ids) == 0 {
		return nil, failed(http.StatusConflict, "%s", msgEmptyActivation)
	}
	return &opArgs{raw: in.ids}, nil
}

// prepareRepoFetch checks in DC/OS's order (the body's shape was checked
// by the front-end): the id, then the URL. The fetch's own failures are
// DC/OS's 500 with its text (unexpectedFetchFailure).
func prepareRepoFetch(p *Process, in opInput) (*opArgs, *PkgpandaResponse) {
	ids, fail := parseAPIIDs(in.ids, http.StatusBadRequest)
	if fail != nil {
		return nil, fail
	}
	if in.badURL || in.url == "" {
		return nil, failed(http.StatusBadRequest, "%s", msgBadURLValue)
	}
	return fetchArgs(p, ids, in.url)
}

// prepareFetch prepares POST /fetch.
func prepareFetch(p *Process, in opInput) (*opArgs, *PkgpandaResponse) {
	ids, fail := parseToolIDs(in.ids)
	if fail != nil {
		return nil, fail
	}
	if in.url == "" {
		return nil, failed(http.StatusBadRequest, "the `repository_url` query parameter is needed")
	}
	return fetchArgs(p, ids, in.url)
}

// fetchArgs checks a fetch's URL and ids as `pkgpanda fetch` would take
// them (a fetch runs `pkgpanda add` on its downloads, but accepts only
// what the CLI's fetch would).
func fetchArgs(p *Process, ids []cli.ID, url string) (*opArgs, *PkgpandaResponse) {
	if _, err := p.cfg.Tool.Fetch(url, ids...); err != nil {
		return nil, failed(http.StatusBadRequest, "%v", err)
	}
	return &opArgs{ids: ids, url: url}, nil
}

// unexpectedFetchFailure replaces a failed fetch's 500 or 502 with
// DC/OS's text, logging the reason; other statuses (limits, timeouts,
// shutdown) stay.
func unexpectedFetchFailure(p *Process, in *opArgs, r *PkgpandaResponse) *PkgpandaResponse {
	if r.Status != http.StatusInternalServerError && r.Status != http.StatusBadGateway {
		return r
	}
	p.log.Warn().Str("repository_url", in.url).Int32("status", r.Status).Str("reason", r.Error).Msg("fetching into the repository failed")
	return failed(http.StatusInternalServerError, "%s", msgUnexpected)
}

// prepareAdd takes the tarball of an ADD (or POST /add), received in its
// upload file "tarball", and names it <id>.tar.xz: the CLI takes the id
// from the file name.
func prepareAdd(_ *Process, in opInput) (*opArgs, *PkgpandaResponse) {
	ids, fail := parseToolIDs(in.ids)
	if fail != nil {
		return nil, fail
	}
	if in.tarball == nil {
		return nil, failed(http.StatusBadRequest, "ADD needs the tarball")
	}
	file := in.tarball.path(ids[0].String() + ".tar.xz")
	if err := os.Rename(in.tarball.path(tarballFile), file); err != nil {
		return nil, failed(http.StatusInternalServerError, "naming the tarball: %v", err)
	}
	return &opArgs{ids: ids, pkgs: []pkgFile{{id: ids[0], path: file}}, ups: []*upload{in.tarball}}, nil
}

// isJSONMedia reports whether a Content-Type is JSON as Flask's is_json
// decides: application/json or application/*+json, parameters ignored.
func isJSONMedia(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// parseFetchBody reads POST /repository/<id>'s body: ok is false unless
// it is a JSON object with a repository_url key sent as JSON; badURL
// marks a repository_url that is not a string.
func parseFetchBody(contentType string, body []byte) (url string, badURL, ok bool) {
	if !isJSONMedia(contentType) {
		return "", false, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return "", false, false
	}
	v, has := obj["repository_url"]
	if !has {
		return "", false, false
	}
	if err := json.Unmarshal(v, &url); err != nil {
		return "", true, true
	}
	return url, false, true
}

// parseActiveBody reads PUT /active/'s body. It returns the elements as
// ids when all are strings, or, when none is, the distinct elements
// sorted (all of them missing from any repository); fail is the answer
// otherwise. Python's set and sorted decide what DC/OS accepts: elements
// must be hashable (scalars) and comparable (strings with strings,
// numbers and booleans together, null alone); equal numbers are one
// element, the first sent kept.
func parseActiveBody(contentType string, body []byte) (ids []string, others []any, fail *PkgpandaResponse) {
	if !isJSONMedia(contentType) || !json.Valid(body) {
		return nil, nil, failed(http.StatusBadRequest, "%s", msgActiveBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var arr []any
	if err := dec.Decode(&arr); err != nil || arr == nil {
		return nil, nil, failed(http.StatusBadRequest, "%s", msgActiveBody)
	}
	type num struct {
		v   float64
		raw any
	}
	var nums []num
	strs, nulls := 0, 0
	for _, e := range arr {
		switch v := e.(type) {
		case string:
			strs++
			ids = append(ids, v)
		case nil:
			nulls++
		case bool:
			f := 0.0
			if v {
				f = 1
			}
			nums = append(nums, num{f, v})
		case json.Number:
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return nil, nil, failed(http.StatusBadRequest, "%s", msgActiveElements)
			}
			nums = append(nums, num{f, v})
		default: // arrays and objects: unhashable, DC/OS crashes
			return nil, nil, failed(http.StatusBadRequest, "%s", msgActiveElements)
		}
	}
	kinds := 0
	for _, n := range []int{strs, nulls, len(nums)} {
		if n > 0 {
			kinds++
		}
	}
	switch {
	case kinds > 1: // not comparable: DC/OS crashes sorting them
		return nil, nil, failed(http.StatusBadRequest, "%s", msgActiveElements)
	case nulls > 0:
		return nil, []any{nil}, nil
	case len(nums) > 0:
		var distinct []num
		for _, n := range nums {
			if !slices.ContainsFunc(distinct, func(d num) bool { return d.v == n.v }) {
				distinct = append(distinct, n)
			}
		}
		slices.SortStableFunc(distinct, func(a, b num) int {
			switch {
			case a.v < b.v:
				return -1
			case a.v > b.v:
				return 1
			}
			return 0
		})
		for _, d := range distinct {
			others = append(others, d.raw)
		}
		return nil, others, nil
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil, nil
}

// apiEdgesHelp documents the routing of the Pkgpanda API routes.
const apiEdgesHelp = "As DC/OS's app: without the trailing slash, 301 to `<route>/` for every method; an id containing '/' is 404; " +
	"a method the path lacks is 405 with Allow (HEAD and OPTIONS included); OPTIONS is 200 with that Allow; jsonp is ignored; " +
	"a body is JSON only with Content-Type application/json or application/*+json, else it counts as absent."

// serveAPI serves the Pkgpanda API routes (/repository/..., /active/...)
// from the operation table, routing as Werkzeug does for DC/OS's app:
// the route without its trailing slash is 301 to the slash form for every
// method, an id never contains '/' (404), a method the path lacks is 405
// with Allow (HEAD where GET is, and OPTIONS), OPTIONS is 200 with the
// same Allow, and jsonp is ignored.
func (p *Process) serveAPI(req *libprocess.Request, respond libprocess.Responder, c caller) {
	sub := subPath(req)
	if sub == "" {
		loc := req.Route + "/" // relative: right behind any prefix
		if q := req.URL.RawQuery; q != "" {
			loc += "?" + q
		}
		r := libprocess.ErrorResponse(http.StatusMovedPermanently, "Moved permanently to "+loc)
		r.SetHeader("Location", loc)
		respond(r)
		return
	}
	shape, raw := pathList, ""
	if sub != "/" {
		raw = strings.TrimPrefix(sub, "/")
		if raw == sub || strings.Contains(raw, "/") {
			respond(libprocess.ErrorResponse(http.StatusNotFound, msgNotFoundURL))
			return
		}
		shape = pathItem
	}
	ops := p.apiOps(req.Route, shape)
	allow := []string{http.MethodHead, http.MethodOptions}
	for _, op := range ops {
		allow = append(allow, p.ops[op].method)
	}
	method := req.Method
	switch method {
	case http.MethodOptions:
		respond(libprocess.Response{Status: http.StatusOK, Header: http.Header{"Allow": {strings.Join(allow, ", ")}}})
		return
	case http.MethodHead:
		method = http.MethodGet
	}
	i := slices.IndexFunc(ops, func(op opID) bool { return p.ops[op].method == method })
	if i < 0 {
		r := libprocess.ErrorResponse(http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
		r.SetHeader("Allow", strings.Join(allow, ", "))
		respond(r)
		return
	}
	op := ops[i]
	var in opInput
	if shape == pathItem {
		in.ids = []string{raw}
	}
	ct := req.Header().Get("Content-Type")
	switch op {
	case opRepoFetch:
		p.withBody(req, respond, maxJSONBody, "the request body is too large", func(body []byte, own func() bool) {
			url, badURL, ok := parseFetchBody(ct, body)
			if !ok {
				respond(render(failed(http.StatusBadRequest, "%s", msgFetchBody), nil))
				return
			}
			in.url, in.badURL = url, badURL
			p.serveTableOp(op, in, req, respond, c, own)
		})
	case opActivePut:
		p.withBody(req, respond, maxJSONBody, "the request body is too large", func(body []byte, own func() bool) {
			ids, others, fail := parseActiveBody(ct, body)
			switch {
			case fail != nil:
				respond(render(fail, nil))
			case others != nil:
				// Elements no repository holds (numbers, booleans,
				// null): all missing. Answered by the operation's
				// actor all the same, after authorization.
				p.serveOp(opActivePut, req, respond, c, own, func(context.Context, *actor, func()) {
					respond(libprocess.JSONResponse(http.StatusConflict, map[string]any{"error": msgNotAllPresent, "missing_packages": others}))
				})
			default:
				in.ids = ids
				p.serveTableOp(op, in, req, respond, c, own)
			}
		})
	default:
		p.serveTableOp(op, in, req, respond, c, nil)
	}
}

// serveTableOp runs op for an HTTP request exactly as api/v1 runs the
// same call: the table's prepare, then start (every route comes here,
// the CLI-surface ones once they have read their query parameters or
// body). The answer is rendered with the table's body and has the
// PkgpandaResponse's status. A streamed operation's output goes to the
// response from its first byte on; a failure after that ends the
// stream with a failure line. c is the caller guard authenticated; own
// is req.ReleaseProcess on the handler's goroutine, nil on any other (see
// invocation.own).
func (p *Process) serveTableOp(op opID, in opInput, req *libprocess.Request, respond libprocess.Responder, c caller, own func() bool) {
	s := &p.ops[op]
	reject := p.rejectHTTP(respond)
	answer := func(r *PkgpandaResponse) { respond(render(r, s.body)) }
	if s.stream != streamNone {
		// Mutations are never cancelled, and the request context of a
		// read lives until the stream is closed, so the client going
		// away keeps cancelling a read after output began: detaching is
		// moot.
		st := &streamer{respond: respond, detach: func() {}}
		in.out = st
		answer = func(r *PkgpandaResponse) { st.finish(r, s.body) }
		reject = func(status int, msg string) {
			if st.started() {
				st.finish(failed(status, "%s", msg), s.body)
				return
			}
			p.rejectHTTP(respond)(status, msg)
		}
	}
	args, fail := p.prepareOp(op, in)
	if fail != nil {
		if in.tarball != nil {
			in.tarball.remove()
		}
		respond(render(fail, nil))
		return
	}
	p.start(args, c, req.Context(), own, reject, answer)
}
