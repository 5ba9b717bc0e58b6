package pkgpanda

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/procpanda/procpanda/libprocess"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// routeOpenAPI is the route that serves the OpenAPI 3.1 document of every
// HTTP route of the process (GET /pkgpanda/openapi.json).
const routeOpenAPI = "openapi.json"

// The OpenAPI document is built from the operation table at request time,
// each document operation naming the table's rows it runs in
// `x-operations`,
// so that it cannot drift from what the routes serve: each operation's
// path and method (the Pkgpanda API rows) or its route (the CLI-surface
// rows), its success status and body (rendered by the row's own body
// renderer on a sample answer, whose JSON gives the schema), the
// statuses its status map, checks, prepare and locks can answer, and the
// authentication the process is configured with.

// installOpenAPI installs the route serving the document. It needs no
// credentials, as /help does: it says what the routes are, not what the
// node holds.
func (p *Process) installOpenAPI() {
	p.lp.Route(routeOpenAPI, libprocess.Help{
		TLDR:  "OpenAPI 3.1 document of every pkgpanda route.",
		Usage: "GET /pkgpanda/openapi.json",
		Description: "The routes of this process, generated from its operation table: paths, methods, parameters, request and response media types and schemas, " +
			"every status an operation answers with its error body (`{\"error\": ...}`), and the authentication in force. " +
			"With the runtime's delegate set to pkgpanda, the same paths are also served without the /pkgpanda prefix (a second server).",
	}, func(req *libprocess.Request, respond libprocess.Responder) {
		if !allowed(req, http.MethodGet) {
			respond(methodNotAllowed(http.MethodGet))
			return
		}
		doc, err := p.openAPIDocument()
		if err != nil {
			respond(libprocess.ErrorResponse(http.StatusInternalServerError, "building the OpenAPI document: "+err.Error()))
			return
		}
		respond(libprocess.Response{Status: http.StatusOK, ContentType: "application/json", Body: doc})
	})
}

// obj is a JSON object of the document.
type obj = map[string]any

// errorDescription says when an operation answers status.
func errorDescription(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "The request is malformed (its arguments or body; see the text)."
	case http.StatusUnauthorized:
		return "No credentials, or credentials that do not authenticate (WWW-Authenticate names the scheme and realm)."
	case http.StatusForbidden:
		return "The principal may not run this operation (ACL, JSON error), or the endpoint is disabled by the firewall rules (text/plain `Endpoint '<path>' is disabled`)."
	case http.StatusNotFound:
		return "A package is not found, not active, or its id is invalid (see the text)."
	case http.StatusMethodNotAllowed:
		return "The method is not served at this path (Allow lists those that are)."
	case http.StatusConflict:
		return "The tool's Validation Error, a package that is active, packages missing from the repository (`missing_packages`), or an interrupted activation left on disk."
	case http.StatusRequestEntityTooLarge:
		return "The body exceeds its bound."
	case http.StatusNotAcceptable:
		return "Accept allows neither application/json nor application/x-protobuf."
	case http.StatusUnsupportedMediaType:
		return "Content-Type is neither application/json nor application/x-protobuf."
	case http.StatusInternalServerError:
		return "The tool failed (`ERROR:`, or a Package Error where the operation maps it so), a package cannot be loaded, or an unexpected error."
	case http.StatusBadGateway:
		return "The tool broke its interface: unexpected output, a usage error, a crash, or it could not be started."
	case http.StatusServiceUnavailable:
		return "The route's queue is full, too many uploads are under way, the repository lock is held by another process, the client went away, or the process is shutting down (Retry-After)."
	case http.StatusGatewayTimeout:
		return "The tool timed out (JSON error), or the route's deadline passed (text/plain)."
	}
	return http.StatusText(status)
}

// openAPIDocument returns the OpenAPI 3.1 document, as JSON.
func (p *Process) openAPIDocument() ([]byte, error) {
	paths := obj{}
	add := func(path, method string, op obj) {
		item, _ := paths[path].(obj)
		if item == nil {
			item = obj{}
			paths[path] = item
		}
		item[strings.ToLower(method)] = op
	}
	for op := range p.ops {
		s := &p.ops[op]
		if s.path == pathNone {
			continue
		}
		built, err := p.apiOperation(opID(op))
		if err != nil {
			return nil, err
		}
		path := "/" + s.actor + "/"
		if s.path == pathItem {
			path += "{id}"
		}
		add(path, s.method, built)
		if s.method == http.MethodGet {
			add(path, http.MethodHead, headOf(built))
		}
	}
	for _, route := range []string{routeRepository, routeActive} {
		for _, shape := range []apiPath{pathList, pathItem} {
			path := "/" + route + "/"
			if shape == pathItem {
				path += "{id}"
			}
			add(path, http.MethodOptions, p.optionsOperation(route, shape))
		}
		redirect := obj{
			"summary": "Redirects to /" + route + "/ (every method)",
			"tags":    []string{"Pkgpanda API"},
			"responses": obj{"301": obj{
				"description": "Moved to the trailing-slash form; nothing is carried out.",
				"headers":     obj{"Location": obj{"description": "`" + route + "/`, relative, with the query kept.", "schema": obj{"type": "string"}}},
				"content":     errorContent(),
			}},
		}
		if p.cfg.Authenticator != nil {
			redirect["responses"].(obj)["401"] = errorResponse(http.StatusUnauthorized)
			if p.cfg.OpenReads {
				redirect["security"] = p.optionalSecurity()
			}
		}
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch} {
			r := shallow(redirect)
			r["operationId"] = "redirect_" + route + "_" + strings.ToLower(m)
			add("/"+route, m, r)
		}
	}
	for _, route := range []string{routeListJSON, routeActiveJSON, routeAdd, routeRemove, routeActivate, routeSwap, routeFetch, routeCheck} {
		method, built, err := p.cliOperation(route)
		if err != nil {
			return nil, err
		}
		add("/"+route, method, built)
		if method == http.MethodGet {
			add("/"+route, http.MethodHead, headOf(built))
		}
	}
	v1, err := p.apiV1Operation()
	if err != nil {
		return nil, err
	}
	add("/"+routeAPIv1, http.MethodPost, v1)
	meta := obj{
		"summary":     "This document",
		"operationId": "openapi",
		"tags":        []string{"Meta"},
		"security":    []any{},
		"responses": obj{
			"200": obj{"description": "The OpenAPI 3.1 document.", "content": obj{"application/json": obj{"schema": obj{"type": "object"}}}},
			"500": errorResponse(http.StatusInternalServerError),
		},
	}
	add("/"+routeOpenAPI, http.MethodGet, meta)
	add("/"+routeOpenAPI, http.MethodHead, headOf(meta))

	servers := []any{obj{"url": "/" + processID, "description": "the pkgpanda process on the libprocess port (or unix socket)"}}
	if p.delegated {
		servers = append(servers, obj{"url": "/", "description": "the same routes without the prefix: the runtime's delegate is pkgpanda (--delegate pkgpanda), as behind Admin Router"})
	}
	doc := obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":   "pkgpanda",
			"version": moduleVersion(),
			"description": "The pkgpanda process: the DC/OS Pkgpanda API (/repository/..., /active/...), routes for each pkgpanda CLI command, " +
				"and POST /api/v1 (PkgpandaCall/PkgpandaResponse as JSON or protobuf). Every error body is JSON `{\"error\": \"...\"}` " +
				"(PUT /active/ adds `missing_packages`), except where the responses say text/plain. " +
				"A method a path does not list answers 405 with Allow; a path that no path here matches (an id containing '/') answers 404: " +
				"a JSON error below a route, else libprocess' text/plain `404 Not Found.`.",
		},
		"servers":    servers,
		"paths":      paths,
		"components": p.openAPIComponents(),
	}
	if sec := p.securityRequirement(); sec != nil {
		doc["security"] = sec
	}
	return json.Marshal(doc)
}

// shallow returns a shallow copy of o.
func shallow(o obj) obj {
	c := make(obj, len(o))
	for k, v := range o {
		c[k] = v
	}
	return c
}

// headOf is the HEAD form of a GET operation: the same statuses and
// headers, no body.
func headOf(get obj) obj {
	h := shallow(get)
	h["operationId"] = "head_" + get["operationId"].(string)
	h["summary"] = "HEAD of: " + get["summary"].(string)
	responses := obj{}
	for code, r := range get["responses"].(obj) {
		rr := shallow(r.(obj))
		delete(rr, "content")
		responses[code] = rr
	}
	h["responses"] = responses
	delete(h, "requestBody")
	return h
}

// moduleVersion is the version of the module the binary was built from.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// schemeName is the security scheme's name in the document.
func (p *Process) schemeName() string {
	if p.cfg.Authenticator == nil {
		return ""
	}
	return strings.ToLower(p.cfg.Authenticator.Scheme())
}

// securityRequirement is the document-wide requirement: the configured
// scheme, or nil when the process authenticates nothing.
func (p *Process) securityRequirement() []any {
	name := p.schemeName()
	if name == "" {
		return nil
	}
	return []any{obj{name: []any{}}}
}

// opSecurity is an operation's requirement when it differs from the
// document's: read-only operations are open with OpenReads.
func (p *Process) opSecurity(ops ...opID) []any {
	name := p.schemeName()
	if name == "" || !p.cfg.OpenReads {
		return nil
	}
	for _, op := range ops {
		if p.ops[op].mutates {
			return nil
		}
	}
	return p.optionalSecurity()
}

// optionalSecurity is the requirement of what callers without
// credentials may do too.
func (p *Process) optionalSecurity() []any {
	return []any{obj{}, obj{p.schemeName(): []any{}}}
}

func (p *Process) openAPIComponents() obj {
	c := obj{
		"schemas": obj{
			"Error": obj{
				"type":     "object",
				"required": []string{"error"},
				"properties": obj{
					"error": obj{"type": "string"},
					"missing_packages": obj{"type": "array", "description": "PUT /active/: the elements not in the repository, sorted, as sent",
						"items": obj{"type": []string{"string", "number", "boolean", "null"}}},
				},
				"additionalProperties": false,
			},
			"PkgpandaCall":     protoSchema(reflect.TypeOf(pb.PkgpandaCall{}), true),
			"PkgpandaResponse": protoSchema(reflect.TypeOf(pb.PkgpandaResponse{}), false),
		},
	}
	switch name := p.schemeName(); name {
	case "basic":
		c["securitySchemes"] = obj{name: obj{"type": "http", "scheme": "basic",
			"description": "HTTP Basic credentials of --http-credentials (realm " + p.cfg.realm() + ")"}}
	case "":
	default:
		c["securitySchemes"] = obj{name: obj{"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
			"description": "HS256 JWT signed with --jwt-secret-key; the principal is `sub` (realm " + p.cfg.realm() + ")"}}
	}
	return c
}

// errorContent is the content of a JSON error.
func errorContent() obj {
	return obj{"application/json": obj{"schema": obj{"$ref": "#/components/schemas/Error"}}}
}

// errorResponse describes status answered with a JSON error, and the
// headers and other media types it carries.
func errorResponse(status int) obj {
	r := obj{"description": errorDescription(status), "content": errorContent()}
	switch status {
	case http.StatusServiceUnavailable:
		r["headers"] = obj{"Retry-After": obj{"schema": obj{"type": "string"}, "description": "seconds"}}
	case http.StatusUnauthorized:
		r["headers"] = obj{"WWW-Authenticate": obj{"schema": obj{"type": "string"}, "description": "the scheme and realm"}}
	case http.StatusMethodNotAllowed:
		r["headers"] = obj{"Allow": obj{"schema": obj{"type": "string"}}}
	case http.StatusForbidden, http.StatusGatewayTimeout:
		c := errorContent()
		c["text/plain"] = obj{"schema": obj{"type": "string"}}
		r["content"] = c
	}
	return r
}

// prepareStatuses lists what a prepare answers, found by running it on
// inputs of every shape its front-ends pass (no id, an invalid id, a
// valid one; no URL, a URL that is no string, one the tool refuses): a
// prepare runs no subprocess and touches nothing without a tarball.
func (p *Process) prepareStatuses(prepare func(*Process, opInput) (*opArgs, *pb.PkgpandaResponse)) []int {
	var out []int
	for _, in := range []opInput{
		{}, {ids: []string{"invalid-package"}}, {ids: []string{"mesos--0.22.0"}},
		{ids: []string{"mesos--0.22.0"}, badURL: true}, {ids: []string{"mesos--0.22.0"}, url: "gopher://x/"},
		{ids: []string{"mesos--0.22.0"}, url: "https://example.com/repo"},
	} {
		if _, fail := prepare(p, in); fail != nil && !slices.Contains(out, int(fail.Status)) {
			out = append(out, int(fail.Status))
		}
	}
	return out
}

// precheckStatuses lists what a check of the table answers, by function.
// A check missing here makes the document fail to build (and its test).
func precheckStatuses(f precheck) ([]int, bool) {
	for _, e := range []struct {
		f        precheck
		statuses []int
	}{
		{checkInRepository, []int{http.StatusNotFound}},
		{checkLoadable, []int{http.StatusInternalServerError}},
		{checkActive, []int{http.StatusNotFound}},
		{checkNotActive, []int{http.StatusConflict}},
		{checkAllPresent, []int{http.StatusConflict}},
	} {
		if sameFunc(e.f, f) {
			return e.statuses, true
		}
	}
	return nil, false
}

// sameFunc reports whether a and b are the same function (closures of
// one literal count as the same).
func sameFunc(a, b any) bool {
	return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
}

// failureStatuses lists what op can answer besides its success: its
// status map, prepare and checks, the tool's breaches (502), timeouts
// (504), refusals and a full queue (503), an interrupted activation
// (409), and authentication and authorization (401, 403).
func (p *Process) failureStatuses(op opID) ([]int, error) {
	s := &p.ops[op]
	set := map[int]bool{
		http.StatusInternalServerError: true, http.StatusBadGateway: true, http.StatusServiceUnavailable: true,
		http.StatusGatewayTimeout: true, http.StatusForbidden: true,
		s.statuses.validation: true, s.statuses.pkg: true, s.statuses.toolErr: true,
	}
	if s.statuses.other != 0 {
		set[s.statuses.other] = true
	}
	for _, c := range p.prepareStatuses(s.prepare) {
		set[c] = true
	}
	for _, check := range s.checks {
		st, ok := precheckStatuses(check)
		if !ok {
			return nil, fmt.Errorf("operation %s: a check is not in the document's list", s.name)
		}
		for _, c := range st {
			set[c] = true
		}
	}
	if s.needsInstall {
		set[http.StatusConflict] = true
	}
	if p.cfg.Authenticator != nil {
		set[http.StatusUnauthorized] = true
	}
	out := make([]int, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	slices.Sort(out)
	return out, nil
}

// successResponse describes op's success from its body renderer.
func (p *Process) successResponse(op opID) (string, obj) {
	s := &p.ops[op]
	code := strconv.Itoa(s.okStatus)
	if s.stream != streamNone {
		return code, obj{"description": s.help.summary + ": the output as it comes (chunked); a failure after output began ends it with a `pkgpanda failed (<status>): <message>` line.",
			"content": obj{"text/plain": obj{"schema": obj{"type": "string"}}}}
	}
	if s.body == nil || s.okStatus == http.StatusNoContent {
		return code, obj{"description": s.help.summary + ": done, no body."}
	}
	sample := &pb.PkgpandaResponse{Status: int32(s.okStatus), PackageIds: []string{"mesos--0.22.0"},
		Package:      &pb.PkgpandaPackage{Id: "mesos--0.22.0", Name: "mesos", Version: "0.22.0"},
		Checks:       []*pb.PkgpandaCheck{{PackageId: "mesos--0.22.0", Checks: []string{"check.sh"}}},
		AlreadyAdded: true, Output: "output"}
	r := s.body(sample)
	mt := r.ContentType
	if mt == "" {
		mt = r.Header.Get("Content-Type")
	}
	var schema obj
	if strings.HasPrefix(mt, "application/json") {
		var v any
		if err := json.Unmarshal(r.Body, &v); err == nil {
			schema = inferSchema(v)
		}
	}
	if schema == nil {
		schema = obj{"type": "string"}
	}
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	return code, obj{"description": s.help.summary + ".", "content": obj{mt: obj{"schema": schema, "example": json.RawMessage(r.Body)}}}
}

// inferSchema is the JSON schema of values shaped as v: objects with
// exactly its keys, arrays of its first element's shape.
func inferSchema(v any) obj {
	switch v := v.(type) {
	case map[string]any:
		props := obj{}
		req := make([]string, 0, len(v))
		for k, e := range v {
			props[k] = inferSchema(e)
			req = append(req, k)
		}
		slices.Sort(req)
		return obj{"type": "object", "properties": props, "required": req, "additionalProperties": false}
	case []any:
		if len(v) == 0 {
			return obj{"type": "array"}
		}
		return obj{"type": "array", "items": inferSchema(v[0])}
	case string:
		return obj{"type": "string"}
	case bool:
		return obj{"type": "boolean"}
	case float64:
		return obj{"type": "number"}
	}
	return obj{}
}

// responses builds an operation's responses: its success and failures,
// plus extra statuses its front-end answers.
func (p *Process) responses(op opID, extra ...int) (obj, error) {
	code, ok := p.successResponse(op)
	out := obj{code: ok}
	fails, err := p.failureStatuses(op)
	if err != nil {
		return nil, err
	}
	for _, c := range append(fails, extra...) {
		out[strconv.Itoa(c)] = errorResponse(c)
	}
	return out, nil
}

// operationID names op in the document.
func operationID(name string) string {
	return strings.NewReplacer(".", "_", "-", "_").Replace(name)
}

func idParameter() obj {
	return obj{"name": "id", "in": "path", "required": true, "description": "a package id, `<name>--<version>`",
		"schema": obj{"type": "string"}}
}

// apiOperation describes one Pkgpanda API row.
func (p *Process) apiOperation(op opID) (obj, error) {
	s := &p.ops[op]
	var extra []int
	o := obj{
		"summary":      s.help.summary,
		"description":  s.help.answers,
		"operationId":  operationID(s.name),
		"tags":         []string{"Pkgpanda API"},
		"x-operations": []string{s.name},
	}
	if s.path == pathItem {
		o["parameters"] = []any{idParameter()}
	}
	switch op {
	case opRepoFetch:
		extra = append(extra, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
		o["requestBody"] = obj{"required": true, "description": "Read only when sent as JSON (application/json or application/*+json); otherwise it counts as absent (400).",
			"content": obj{"application/json": obj{"schema": obj{"type": "object", "required": []string{"repository_url"},
				"properties": obj{"repository_url": obj{"type": "string", "description": "file://, http:// or https:// URL of a package repository"}}}}}}
	case opActivePut:
		extra = append(extra, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
		o["requestBody"] = obj{"required": true, "description": "Read only when sent as JSON (application/json or application/*+json); otherwise it counts as absent (400).",
			"content": obj{"application/json": obj{"schema": obj{"type": "array", "items": obj{"type": "string"}}}}}
	}
	r, err := p.responses(op, extra...)
	if err != nil {
		return nil, err
	}
	o["responses"] = r
	if sec := p.opSecurity(op); sec != nil {
		o["security"] = sec
	}
	return o, nil
}

// optionsOperation describes OPTIONS on a Pkgpanda API path: 200 with
// Allow, no body.
func (p *Process) optionsOperation(route string, shape apiPath) obj {
	allow := []string{http.MethodHead, http.MethodOptions}
	for _, op := range p.apiOps(route, shape) {
		allow = append(allow, p.ops[op].method)
	}
	name := route + "_list"
	o := obj{
		"summary":     "The methods this path serves",
		"operationId": "options_" + name,
		"tags":        []string{"Pkgpanda API"},
		"responses": obj{
			"200": obj{"description": "No body.", "headers": obj{"Allow": obj{"schema": obj{"type": "string", "const": strings.Join(allow, ", ")}}}},
		},
	}
	if shape == pathItem {
		o["operationId"] = "options_" + route + "_item"
		o["parameters"] = []any{idParameter()}
	}
	if p.cfg.Authenticator != nil {
		o["responses"].(obj)["401"] = errorResponse(http.StatusUnauthorized)
		if p.cfg.OpenReads {
			o["security"] = p.optionalSecurity()
		}
	}
	return o
}

// cliOperation describes one CLI-surface route: the method its handler
// takes, its parameters and body, and the responses of the operations
// it runs.
func (p *Process) cliOperation(route string) (string, obj, error) {
	ops := p.routeOps(route)
	op := ops[0]
	s := &p.ops[op]
	method := http.MethodPost
	var params []any
	var extra []int
	idsParam := func(desc string) obj {
		return obj{"name": "id", "in": "query", "required": true, "description": desc, "style": "form", "explode": true,
			"schema": obj{"type": "array", "items": obj{"type": "string"}}}
	}
	o := obj{"summary": s.help.summary, "operationId": operationID(s.name), "tags": []string{"pkgpanda CLI"}}
	switch route {
	case routeListJSON, routeActiveJSON:
		method = http.MethodGet
	case routeCheck:
		method = http.MethodGet
		extra = append(extra, http.StatusBadRequest)
		params = append(params, obj{"name": "list", "in": "query", "description": "true or 1: list the checks (JSON) instead of running them (streamed text)",
			"schema": obj{"type": "string", "enum": []string{"true", "false", "1", "0", ""}}})
	case routeAdd:
		extra = append(extra, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
		params = append(params, obj{"name": "id", "in": "query", "description": "the package id (or the " + packageIDHeader + " header)", "schema": obj{"type": "string"}},
			obj{"name": packageIDHeader, "in": "header", "description": "the package id (or the `id` query parameter)", "schema": obj{"type": "string"}})
		o["requestBody"] = obj{"required": true, "description": "the package tarball (`<id>.tar.xz`)",
			"content": obj{"application/octet-stream": obj{"schema": obj{"type": "string", "format": "binary"}},
				"application/x-xz": obj{"schema": obj{"type": "string", "format": "binary"}}}}
	case routeFetch:
		extra = append(extra, http.StatusBadRequest)
		params = append(params, idsParam("package ids, repeated"),
			obj{"name": "repository_url", "in": "query", "required": true, "schema": obj{"type": "string"}})
	case routeSwap:
		extra = append(extra, http.StatusBadRequest)
		params = append(params, idsParam("one package id"))
	default:
		extra = append(extra, http.StatusBadRequest)
		params = append(params, idsParam("package ids, repeated"))
	}
	if len(params) > 0 {
		o["parameters"] = params
	}
	var descs, names []string
	resp := obj{}
	for _, op := range ops {
		names = append(names, p.ops[op].name)
		descs = append(descs, p.ops[op].help.usage+": "+p.ops[op].help.answers)
		r, err := p.responses(op, extra...)
		if err != nil {
			return "", nil, err
		}
		for code, v := range r {
			if prev, ok := resp[code].(obj); ok && code[0] == '2' {
				// Two successes on one status (check: streamed text
				// or, with list=true, JSON): both media types.
				merged := shallow(prev)
				content := shallow(prev["content"].(obj))
				for mt, c := range v.(obj)["content"].(obj) {
					content[mt] = c
				}
				merged["content"] = content
				merged["description"] = prev["description"].(string) + " " + v.(obj)["description"].(string)
				resp[code] = merged
				continue
			}
			resp[code] = v
		}
	}
	o["description"] = strings.Join(descs, "\n\n")
	o["x-operations"] = names
	o["responses"] = resp
	if sec := p.opSecurity(ops...); sec != nil {
		o["security"] = sec
	}
	return method, o, nil
}

// apiV1Operation describes POST /api/v1: a PkgpandaCall in, a
// PkgpandaResponse out with the operation's status (200 where the route
// answers 204).
func (p *Process) apiV1Operation() (obj, error) {
	statuses := map[int]bool{http.StatusOK: true, http.StatusBadRequest: true, http.StatusNotAcceptable: true,
		http.StatusUnsupportedMediaType: true, http.StatusRequestEntityTooLarge: true}
	var names []string
	for op := range p.ops {
		s := &p.ops[op]
		if !s.hasCall {
			continue
		}
		names = append(names, s.name)
		fails, err := p.failureStatuses(opID(op))
		if err != nil {
			return nil, err
		}
		for _, c := range fails {
			statuses[c] = true
		}
	}
	content := obj{
		pb.MediaJSON:     obj{"schema": obj{"$ref": "#/components/schemas/PkgpandaResponse"}},
		pb.MediaProtobuf: obj{"schema": obj{"type": "string", "format": "binary", "description": "a mesos.internal.PkgpandaResponse (pkgpanda.proto)"}},
	}
	resp := obj{}
	for c := range statuses {
		if c == http.StatusOK {
			resp["200"] = obj{"content": content,
				"description": "The call ran: the PkgpandaResponse (its `status` is the operation's, 204 included), in the media type Accept chose (JSON when absent)."}
			continue
		}
		// The operation's failure as a PkgpandaResponse in the chosen
		// media type, or a refusal before there is a call (negotiation,
		// decoding, authentication, bounds): a JSON error, which is a
		// PkgpandaResponse in its JSON form too.
		r := errorResponse(c)
		rc := shallow(content)
		if tc, ok := r["content"].(obj)["text/plain"]; ok {
			rc["text/plain"] = tc
		}
		r["content"] = rc
		resp[strconv.Itoa(c)] = r
	}
	o := obj{
		"summary":      "Run a PkgpandaCall",
		"operationId":  "api_v1",
		"x-operations": names,
		"tags":         []string{"api/v1"},
		"description":  p.callsHelp(),
		"requestBody": obj{"required": true, "content": obj{
			pb.MediaJSON: obj{"schema": obj{"$ref": "#/components/schemas/PkgpandaCall"}},
			pb.MediaProtobuf: obj{"schema": obj{"type": "string", "format": "binary",
				"description": "a mesos.internal.PkgpandaCall (pkgpanda.proto); its tarball is streamed to disk"}},
		}},
		"parameters": []any{obj{"name": "Accept", "in": "header", "schema": obj{"type": "string"},
			"description": "application/json (default) or application/x-protobuf"}},
		"responses": resp,
	}
	if p.cfg.Authenticator != nil && p.cfg.OpenReads {
		// Read-only calls need no credentials; the others get 401.
		o["security"] = p.optionalSecurity()
	}
	return o, nil
}

// protoSchema is the JSON schema of a generated protobuf message in the
// JSON mapping api/v1 uses (the .proto's field names, enums by name),
// read from the generated struct's field tags. For a request (in), enums
// may also be numbers and lowerCamelCase names are accepted too.
func protoSchema(t reflect.Type, in bool) obj {
	props := obj{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("protobuf")
		if tag == "" {
			continue
		}
		var name, enum string
		for _, part := range strings.Split(tag, ",") {
			if v, ok := strings.CutPrefix(part, "name="); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(part, "enum="); ok {
				enum = v
			}
		}
		props[name] = fieldSchema(f.Type, enum != "", in)
	}
	s := obj{"type": "object", "properties": props}
	if in {
		s["description"] = "Field names as in pkgpanda.proto or in lowerCamelCase; enum values by name or number; unknown fields are refused."
	} else {
		s["additionalProperties"] = false
	}
	return s
}

func fieldSchema(t reflect.Type, enum, in bool) obj {
	if enum {
		names := make([]string, 0, len(pb.PkgpandaCall_Type_name))
		for i := int32(0); int(i) < len(pb.PkgpandaCall_Type_name); i++ {
			names = append(names, pb.PkgpandaCall_Type_name[i])
		}
		if in {
			return obj{"anyOf": []any{obj{"type": "string", "enum": names}, obj{"type": "integer"}}}
		}
		return obj{"type": "string", "enum": names}
	}
	switch t.Kind() {
	case reflect.String:
		return obj{"type": "string"}
	case reflect.Bool:
		return obj{"type": "boolean"}
	case reflect.Int32, reflect.Uint32:
		return obj{"type": "integer"}
	case reflect.Int64, reflect.Uint64:
		return obj{"type": "string", "description": "a 64-bit integer as a decimal string"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return obj{"type": "string", "contentEncoding": "base64"}
		}
		return obj{"type": "array", "items": fieldSchema(t.Elem(), false, in)}
	case reflect.Ptr:
		return protoSchema(t.Elem(), in)
	}
	return obj{}
}
