package pkgpanda

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"
	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/libprocess/httpauth"
)

// The OpenAPI document is checked twice: as a document, by a maintained
// OpenAPI 3.1 implementation (pb33f/libopenapi and its validator, test
// code only), and against what the routes answer: every response of the
// Pkgpanda API scenarios and the operation-table tests, sent through a
// running process, must be one the document describes.

// openAPIValidator parses and validates doc, failing t on any error, and
// returns the validator with the document's paths.
func openAPIValidator(t testing.TB, doc []byte) (validator.Validator, *orderedmap.Map[string, *v3.PathItem]) {
	t.Helper()
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatalf("parsing the OpenAPI document: %v", err)
	}
	if v := d.GetSpecInfo().SpecFormat; v != "oas3_1" || !strings.HasPrefix(d.GetVersion(), "3.1") {
		t.Fatalf("document is %s %s, want OpenAPI 3.1", v, d.GetVersion())
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatalf("building the validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("the document is not valid OpenAPI 3.1: %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s at %s", se.Reason, se.KeywordLocation)
			}
		}
		t.FailNow()
	}
	m, err := d.BuildV3Model()
	if err != nil {
		t.Fatalf("building the document's model: %v", err)
	}
	return v, m.Model.Paths.PathItems
}

// TestOpenAPIDocumentIsValid builds the document for every
// authentication setup and checks it with libopenapi's validator, then
// checks that it says what the process does: every operation of the table
// is in it, the security scheme is the configured one (none when open),
// reads are optional with open reads, the unprefixed server is there
// with the delegate, and /help/pkgpanda links it.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	basic := httpauth.NewBasic(map[string]string{"ops": "s3cret"})
	jwt := httpauth.NewJWT([]byte("0123456789abcdef0123456789abcdef"))
	for _, c := range []struct {
		what      string
		authn     libprocess.Authenticator
		openReads bool
		delegated bool
		scheme    string
	}{
		{what: "open"},
		{what: "basic", authn: basic, scheme: "basic"},
		{what: "basic, open reads", authn: basic, openReads: true, scheme: "basic"},
		{what: "jwt", authn: jwt, scheme: "bearer"},
		{what: "delegated", delegated: true},
	} {
		t.Run(c.what, func(t *testing.T) {
			p, err := New(Config{Tool: cliTool(), Authenticator: c.authn, OpenReads: c.openReads})
			if err != nil {
				t.Fatal(err)
			}
			p.delegated = c.delegated
			b, err := p.openAPIDocument()
			if err != nil {
				t.Fatal(err)
			}
			_, _ = openAPIValidator(t, b)
			var doc struct {
				Servers []struct {
					URL string `json:"url"`
				} `json:"servers"`
				Security   []map[string]any                     `json:"security"`
				Paths      map[string]map[string]map[string]any `json:"paths"`
				Components struct {
					SecuritySchemes map[string]map[string]any `json:"securitySchemes"`
				} `json:"components"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for path, item := range doc.Paths {
				for _, op := range item {
					xops, _ := op["x-operations"].([]any)
					for _, n := range xops {
						ids = append(ids, n.(string))
					}
					_, has401 := op["responses"].(map[string]any)["401"]
					if has401 != (c.authn != nil) && path != "/openapi.json" {
						t.Errorf("%s: a 401 is described: %v, authentication configured: %v", op["operationId"], has401, c.authn != nil)
					}
				}
			}
			for op := range p.ops {
				if !slices.Contains(ids, p.ops[op].name) {
					t.Errorf("operation %s is not in the document", p.ops[op].name)
				}
			}
			if c.scheme == "" {
				if len(doc.Security) != 0 || len(doc.Components.SecuritySchemes) != 0 {
					t.Errorf("open process, but the document requires %v (%v)", doc.Security, doc.Components.SecuritySchemes)
				}
			} else {
				if len(doc.Security) != 1 || doc.Security[0][c.scheme] == nil || doc.Components.SecuritySchemes[c.scheme]["scheme"] != c.scheme {
					t.Errorf("security %v, schemes %v, want %s", doc.Security, doc.Components.SecuritySchemes, c.scheme)
				}
			}
			readSec := doc.Paths["/repository/"]["get"]["security"]
			mutSec := doc.Paths["/repository/{id}"]["delete"]["security"]
			callSec := doc.Paths["/api/v1"]["post"]["security"]
			if c.openReads != (readSec != nil) || mutSec != nil || c.openReads != (callSec != nil) {
				t.Errorf("open reads %v: read security %v, mutation security %v", c.openReads, readSec, mutSec)
			}
			if urls := len(doc.Servers); (c.delegated && (urls != 2 || doc.Servers[1].URL != "/")) || (!c.delegated && urls != 1) || doc.Servers[0].URL != "/pkgpanda" {
				t.Errorf("servers %+v with delegated %v", doc.Servers, c.delegated)
			}
		})
	}

	// Served, and linked from /help/pkgpanda, on a running process.
	e := newEnv(t, envOpt{})
	r := e.do("GET", "/openapi.json", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /pkgpanda/openapi.json: %s", r)
	}
	_, _ = openAPIValidator(t, r.body)
	resp, err := http.Get("http://" + e.rt.Addr().HostPort() + "/help/pkgpanda")
	if err != nil {
		t.Fatal(err)
	}
	help, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(help, []byte("/help/pkgpanda/openapi.json")) {
		t.Errorf("/help/pkgpanda does not link the document:\n%s", help)
	}
}

// openAPICheck, while set, makes newEnv's client check every response
// against the document of the env's process.
var openAPICheck atomic.Pointer[openAPITally]

// openAPITally counts what the checking clients saw.
type openAPITally struct {
	requests  atomic.Int64 // requests sent
	validated atomic.Int64 // responses validated against an operation
	methods   atomic.Int64 // 405 for a method the path does not list (the document's rule)
	paths     atomic.Int64 // 404 for a path no template matches (the document's rule)
	failed    atomic.Int64 // responses the document does not describe
	ops       sync.Map     // "METHOD path-template status" seen
}

// checkingTransport validates each response of rt against its process'
// document.
type checkingTransport struct {
	t     testing.TB
	p     *Process
	next  http.RoundTripper
	tally *openAPITally

	once      sync.Once
	mu        sync.Mutex
	v         validator.Validator
	templates map[string][]string // path template -> methods
	items     *orderedmap.Map[string, *v3.PathItem]
	doc       []byte
}

func (c *checkingTransport) CloseIdleConnections() {
	if ci, ok := c.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func (c *checkingTransport) load() {
	doc, err := c.p.openAPIDocument()
	if err != nil {
		c.t.Errorf("building the OpenAPI document: %v", err)
		return
	}
	c.doc = doc
	c.v, c.items = openAPIValidator(c.t, doc)
	var parsed struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &parsed); err != nil {
		c.t.Errorf("reading the document: %v", err)
		return
	}
	c.templates = map[string][]string{}
	for path, item := range parsed.Paths {
		for m := range item {
			c.templates[path] = append(c.templates[path], strings.ToUpper(m))
		}
	}
}

// template returns the document's path matching path (below the server
// prefix), and its methods.
func (c *checkingTransport) template(path string) (string, []string) {
	for tmpl, methods := range c.templates {
		re := "^" + strings.ReplaceAll(regexp.QuoteMeta(tmpl), `\{id\}`, `[^/]+`) + "$"
		if regexp.MustCompile(re).MatchString(path) {
			return tmpl, methods
		}
	}
	return "", nil
}

func (c *checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil // the caller sees the cut body as it would have
	}
	c.once.Do(c.load)
	c.tally.requests.Add(1)
	if c.v == nil {
		return resp, nil
	}
	fail := func(format string, a ...any) {
		c.tally.failed.Add(1)
		c.t.Errorf("%s %s -> %d %s %q: %s", req.Method, req.URL.RequestURI(), resp.StatusCode, resp.Header.Get("Content-Type"), body, fmt.Sprintf(format, a...))
	}
	// Matched on the decoded path: an id never holds a '/', %2F included.
	path := strings.TrimPrefix(req.URL.Path, "/"+processID)
	tmpl, methods := c.template(path)
	isJSONError := func() bool {
		var e map[string]any
		return json.Unmarshal(body, &e) == nil && e["error"] != nil
	}
	switch {
	case tmpl == "":
		notFoundText := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") && string(body) == "404 Not Found."
		if resp.StatusCode != http.StatusNotFound || (req.Method != http.MethodHead && !isJSONError() && !notFoundText) {
			fail("no path of the document matches, and the answer is not the documented 404")
			return resp, nil
		}
		c.tally.paths.Add(1)
		return resp, nil
	case !slices.Contains(methods, req.Method):
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" || !isJSONError() {
			fail("the path does not list the method, and the answer is not the documented 405 with Allow")
			return resp, nil
		}
		c.tally.methods.Add(1)
		return resp, nil
	}
	vreq := req.Clone(req.Context())
	vreq.Body = http.NoBody
	vresp := *resp
	vresp.Body = io.NopCloser(bytes.NewReader(body))
	c.mu.Lock()
	// The path item is picked here: the validator's own lookup takes
	// /repository and /repository/ for one path.
	ok, verrs := c.v.GetResponseBodyValidator().ValidateResponseBodyWithPathItem(vreq, &vresp, c.items.GetOrZero(tmpl), tmpl)
	c.mu.Unlock()
	if !ok {
		var msgs []string
		for _, e := range verrs {
			msgs = append(msgs, e.Message+": "+e.Reason)
			for _, se := range e.SchemaValidationErrors {
				msgs = append(msgs, "  "+se.Reason+" at "+se.FieldPath+" ("+se.KeywordLocation+")")
			}
		}
		fail("%s", strings.Join(msgs, "; "))
		return resp, nil
	}
	// The validator checks bodies only where the document describes
	// content: a response described without any must have no body.
	if c.declaresNoContent(tmpl, req.Method, resp.StatusCode) && len(body) > 0 {
		fail("the document describes no body for this status")
		return resp, nil
	}
	c.tally.validated.Add(1)
	c.tally.ops.Store(fmt.Sprintf("%s %s %d", req.Method, tmpl, resp.StatusCode), true)
	return resp, nil
}

// declaresNoContent reports whether the document describes status of
// method at tmpl without content.
func (c *checkingTransport) declaresNoContent(tmpl, method string, status int) bool {
	var parsed struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]any `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if json.Unmarshal(c.doc, &parsed) != nil {
		return false
	}
	r, ok := parsed.Paths[tmpl][strings.ToLower(method)].Responses[fmt.Sprint(status)]
	return ok && len(r.Content) == 0
}

// TestOpenAPIDescribesEveryResponse runs the Pkgpanda API scenarios and
// the operation-table tests with every response checked against the
// document of the process that answered it (see checkingTransport).
func TestOpenAPIDescribesEveryResponse(t *testing.T) {
	tally := &openAPITally{}
	if !openAPICheck.CompareAndSwap(nil, tally) {
		t.Fatal("another test checks responses")
	}
	defer openAPICheck.Store(nil)
	for _, c := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"DCOSRepositoryRows", TestDCOSRepositoryRows},
		{"DCOSActiveRows", TestDCOSActiveRows},
		{"DCOSHTTPEdges", TestDCOSHTTPEdges},
		{"DCOSTestHTTPFlows", TestDCOSTestHTTPFlows},
		{"DCOSMalformedFolderFailsListing", TestDCOSMalformedFolderFailsListing},
		{"DCOSNoActiveFolder", TestDCOSNoActiveFolder},
		{"DCOSPkginfoShapes", TestDCOSPkginfoShapes},
		{"APIv1StatusIsHTTPStatus", TestAPIv1StatusIsHTTPStatus},
		{"APIv1JSONAndProtobuf", TestAPIv1JSONAndProtobuf},
		{"APIv1Authentication", TestAPIv1Authentication},
		{"HTTPRoutesAuthorization", TestHTTPRoutesAuthorization},
		{"OpenReads", TestOpenReads},
		{"ReadRoutes", TestReadRoutes},
		{"RepositoryMutations", TestRepositoryMutations},
		{"CLIRoutes", TestCLIRoutes},
		{"CheckRoute", TestCheckRoute},
		{"UnloadablePackageIs500", TestUnloadablePackageIs500},
		{"AddLargeBody", TestAddLargeBody},
		{"UploadCountBound", TestUploadCountBound},
		{"UploadBytesBound", TestUploadBytesBound},
		{"APIv1ProtobufAddStreamsToDisk", TestAPIv1ProtobufAddStreamsToDisk},
		{"MutationWaitsForForeignLock", TestMutationWaitsForForeignLock},
		{"InterruptedActivationBlocksUntilRecovered", TestInterruptedActivationBlocksUntilRecovered},
		{"RouteDeadlineCoversRunsAndLock", TestRouteDeadlineCoversRunsAndLock},
		{"FileFetchErrorsAreGeneric", TestFileFetchErrorsAreGeneric},
		{"FullQueueAnswers503", TestFullQueueAnswers503},
		{"BadIDsNeverReachTheTool", TestBadIDsNeverReachTheTool},
	} {
		t.Run(c.name, c.f)
	}
	var seen []string
	tally.ops.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	slices.Sort(seen)
	t.Logf("requests checked: %d; responses validated against their operation: %d (%d distinct method/path/status); "+
		"405 for an unlisted method: %d; 404 for an unmatched path: %d; not described: %d",
		tally.requests.Load(), tally.validated.Load(), len(seen), tally.methods.Load(), tally.paths.Load(), tally.failed.Load())
	for _, s := range seen {
		t.Logf("  %s", s)
	}
	if tally.validated.Load() == 0 {
		t.Fatal("no response was validated")
	}
}

// errorRecorder is a testing.TB that records errors instead of failing.
type errorRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *errorRecorder) Errorf(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}

// cannedTransport answers every request with one response.
type cannedTransport struct {
	status int
	ct     string
	body   string
	header http.Header
}

func (c cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{"Content-Type": {c.ct}}
	for k, v := range c.header {
		h[k] = v
	}
	return &http.Response{StatusCode: c.status, Header: h, Body: io.NopCloser(strings.NewReader(c.body)), Request: req}, nil
}

// TestOpenAPICheckCatchesUndescribedResponses: the check of
// TestOpenAPIDescribesEveryResponse fails a response the document does
// not describe (status, media type, body schema, a body where none is
// described, a path or method outside the document answered otherwise
// than by its rule), and passes the ones it does.
func TestOpenAPICheckCatchesUndescribedResponses(t *testing.T) {
	p, err := New(Config{Tool: cliTool()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, method, path string
		resp               cannedTransport
		ok                 bool
	}{
		{"described", "GET", "/pkgpanda/repository/", cannedTransport{status: 200, ct: "application/json", body: `["a--1"]`}, true},
		{"error described", "GET", "/pkgpanda/repository/a--1", cannedTransport{status: 404, ct: "application/json", body: `{"error":"Package a--1 not found."}`}, true},
		{"status not described", "GET", "/pkgpanda/repository/", cannedTransport{status: 418, ct: "application/json", body: `{"error":"x"}`}, false},
		{"wrong schema", "GET", "/pkgpanda/repository/", cannedTransport{status: 200, ct: "application/json", body: `{"ids":["a--1"]}`}, false},
		{"extra key in the error", "GET", "/pkgpanda/repository/a--1", cannedTransport{status: 404, ct: "application/json", body: `{"error":"x","why":1}`}, false},
		{"wrong media type", "GET", "/pkgpanda/repository/", cannedTransport{status: 200, ct: "text/html", body: `<p>`}, false},
		{"body on a 204", "DELETE", "/pkgpanda/repository/a--1", cannedTransport{status: 204, ct: "application/json", body: `{}`}, false},
		{"unlisted method, not 405", "PATCH", "/pkgpanda/list.json", cannedTransport{status: 200, ct: "application/json", body: `[]`}, false},
		{"unlisted method, 405", "PATCH", "/pkgpanda/list.json", cannedTransport{status: 405, ct: "application/json", body: `{"error":"x"}`, header: http.Header{"Allow": {"GET, HEAD"}}}, true},
		{"unmatched path, not 404", "GET", "/pkgpanda/repository/a/b", cannedTransport{status: 200, ct: "application/json", body: `[]`}, false},
	} {
		rec := &errorRecorder{TB: t}
		tally := &openAPITally{}
		ct := &checkingTransport{t: rec, p: p, next: c.resp, tally: tally}
		req, _ := http.NewRequest(c.method, "http://127.0.0.1:1"+c.path, nil)
		resp, err := ct.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := len(rec.errs) == 0 && tally.failed.Load() == 0; got != c.ok {
			t.Errorf("%s: passed %v, want %v (%v)", c.what, got, c.ok, rec.errs)
		}
	}
}
