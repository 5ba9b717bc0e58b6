package conformance

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// notFoundBody is the body of C++ libprocess' HTTP 404 (docs/libprocess-wire.md §4.5).
const notFoundBody = "404 Not Found."

// helpIndex is what /help?format=json says: process id → endpoint names.
type helpIndex struct {
	Processes map[string][]string
}

// helpJSON is the shape of /help?format=json (docs/libprocess-wire.md §6.1).
type helpJSON struct {
	Processes []struct {
		ID        *string `json:"id"`
		Endpoints []struct {
			Name *string `json:"name"`
			Text *string `json:"text"`
		} `json:"endpoints"`
	} `json:"processes"`
}

// parseHelp checks and parses a /help?format=json body.
func parseHelp(body []byte) (*helpIndex, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if _, ok := raw["processes"]; !ok {
		return nil, fmt.Errorf("no \"processes\" key")
	}
	var h helpJSON
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, fmt.Errorf("unexpected shape: %w", err)
	}
	idx := &helpIndex{Processes: map[string][]string{}}
	for i, p := range h.Processes {
		if p.ID == nil {
			return nil, fmt.Errorf("processes[%d] has no string \"id\"", i)
		}
		names := []string{}
		for j, e := range p.Endpoints {
			if e.Name == nil || e.Text == nil {
				return nil, fmt.Errorf("processes[%d].endpoints[%d] lacks string \"name\" or \"text\"", i, j)
			}
			names = append(names, *e.Name)
		}
		idx.Processes[*p.ID] = names
	}
	return idx, nil
}

// help fetches (once per run) the target's help index.
func (t *T) help() *helpIndex {
	s := t.s
	s.mu.Lock()
	if s.help == nil && s.helpErr == nil {
		s.mu.Unlock()
		idx, err := t.fetchHelp()
		s.mu.Lock()
		s.help, s.helpErr = idx, err
	}
	idx, err := s.help, s.helpErr
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("cannot discover routes with /help?format=json: %v", err)
	}
	return idx
}

// fetchHelp performs GET /help?format=json.
func (t *T) fetchHelp() (*helpIndex, error) {
	c, err := dialRaw(t.ctx, t.s.opts.Target)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, err := c.roundTrip(httpRequest("GET", "/help?format=json", t.s.opts.Target, nil))
	if err != nil {
		return nil, err
	}
	if r.Code != 200 {
		return nil, fmt.Errorf("status %q", r.StatusLine)
	}
	return parseHelp(r.Body)
}

// expectStatus fails the case unless r has the given code.
func (t *T) expectStatus(r *response, code int) {
	if r.Code != code {
		t.Fatalf("%s", r.summary())
	}
}

// probe is a request the response-format cases send.
type probe struct {
	name string
	req  func(o Options) []byte
}

// probes are requests to built-in endpoints and the message path.
func probes() []probe {
	get := func(path string) func(o Options) []byte {
		return func(o Options) []byte { return httpRequest("GET", path, o.Target, nil) }
	}
	return []probe{
		{"GET /help?format=json", get("/help?format=json")},
		{"GET /help/" + noSuchProcess, get("/help/" + noSuchProcess)},
		{"GET /__processes__", get("/__processes__")},
		{"GET /metrics/snapshot", get("/metrics/snapshot")},
		{"GET /" + noSuchProcess + "/x", get("/" + noSuchProcess + "/x")},
		{"message to --process", func(o Options) []byte {
			return httpRequest("POST", "/"+o.Process+"/"+unhandledName, o.Target, []byte("x"), "Libprocess-From: "+fakeSender)
		}},
	}
}

// statusLineRE is the docs/libprocess-wire.md §5.2 status line.
var statusLineRE = regexp.MustCompile(`^HTTP/1\.1 [1-5][0-9][0-9] [^\r\n]+$`)

// responseCase runs every probe and applies check to each response; check
// returns a description of a problem or "".
func responseCase(t *T, check func(r *response) string) {
	var seen []string
	for _, p := range probes() {
		r := t.roundTrip(p.req(t.Options()))
		if problem := check(r); problem != "" {
			t.Fatalf("%s: %s", p.name, problem)
		}
		seen = append(seen, fmt.Sprint(r.Code))
	}
	t.Seen("all %d responses conform (statuses %s)", len(seen), strings.Join(seen, ","))
}

// largestJSON returns the path among the JSON built-ins with the largest
// identity body and that body.
func largestJSON(t *T) (string, []byte) {
	best, bestBody := "", []byte(nil)
	for _, path := range []string{"/help?format=json", "/__processes__", "/metrics/snapshot"} {
		r := t.get(path)
		if r.Code == 200 && len(r.Body) > len(bestBody) {
			best, bestBody = path, r.Body
		}
	}
	return best, bestBody
}

// httpCases are the checks of HTTP routing and connection behaviour (docs/libprocess-wire.md §4, §5).
func httpCases() []Case {
	return []Case{
		{ID: "route.unknown-process", Section: "§4.2", Group: GroupLibprocess,
			Title: "request to an unknown process is 404 (no delegate configured)", Run: func(t *T) {
				t.Expect("404 for /%s/x and /%s", noSuchProcess, noSuchProcess)
				r := t.get("/" + noSuchProcess + "/x")
				t.expectStatus(r, 404)
				r2 := t.get("/" + noSuchProcess)
				t.expectStatus(r2, 404)
				t.Seen("%s and %s", r.summary(), r2.summary())
			}},
		{ID: "route.root", Section: "§4.2", Group: GroupLibprocess,
			Title: "bare / is 404 when no delegate is configured", Run: func(t *T) {
				t.Expect("404")
				r := t.get("/")
				t.expectStatus(r, 404)
				t.Seen("%s", r.summary())
			}},
		{ID: "route.unknown-route", Section: "§4.3", Group: GroupLibprocess,
			Title: "unknown route of an existing process is 404", Run: func(t *T) {
				o := t.Options()
				t.Expect("404 for /%s/conformance-no-such-route (a root route does not take it)", o.Process)
				r := t.get("/" + o.Process + "/conformance-no-such-route")
				t.expectStatus(r, 404)
				t.Seen("%s", r.summary())
			}},
		{ID: "route.dotdot", Section: "§4.1", Group: GroupLibprocess,
			Title: "paths containing /.. are 404", Run: func(t *T) {
				o := t.Options()
				paths := []string{"/help/..", "/" + o.Process + "/../help", "/__processes__/../__processes__", "/help/../metrics/snapshot"}
				t.Expect("404 for each of %v", paths)
				for _, p := range paths {
					r := t.get(p)
					if r.Code != 404 {
						t.Fatalf("GET %s: %s", p, r.summary())
					}
				}
				t.Seen("404 for each")
			}},
		{ID: "route.not-found-body", Section: "§4.5", Group: GroupLibprocess,
			Title: "HTTP 404s carry the body \"404 Not Found.\" as text/plain; charset=utf-8", Run: func(t *T) {
				o := t.Options()
				paths := []string{"/" + noSuchProcess, "/", "/help/..", "/" + o.Process + "/../help", "/" + o.Process + "/conformance-no-such-route"}
				t.Expect("404 %q, Content-Type %q for each of %v", notFoundBody, "text/plain; charset=utf-8", paths)
				for _, p := range paths {
					r := t.get(p)
					ct, _ := r.Headers.get("Content-Type")
					if r.Code != 404 || string(r.Body) != notFoundBody || ct != "text/plain; charset=utf-8" {
						t.Fatalf("GET %s: %s %q, Content-Type %q", p, r.summary(), abbreviate(r.Body), ct)
					}
				}
				t.Seen("each as expected")
			}},
		{ID: "route.root-only", Section: "§4.3", Group: GroupLibprocess,
			Title: "a process' root route answers only /<id> and /<id>/, never a nested path", Run: func(t *T) {
				paths := []string{"/__processes__/conformance-x", "/help/" + noSuchProcess + "/x"}
				t.Expect("200 for /__processes__/, 404 for each of %v", paths)
				t.expectStatus(t.get("/__processes__/"), 200)
				for _, p := range paths {
					if r := t.get(p); r.Code != 404 {
						t.Fatalf("GET %s: %s", p, r.summary())
					}
				}
				t.Seen("as expected")
			}},
		{ID: "route.percent-encoded", Section: "§1.4, §4.1", Group: GroupLibprocess,
			Title: "percent-encoded process id in the path is decoded", Run: func(t *T) {
				plain := t.get("/__processes__")
				t.Expect("200 for /%%5F_processes__ and /%%68elp?format=json, as without encoding")
				t.expectStatus(plain, 200)
				r := t.get("/%5F_processes__")
				t.expectStatus(r, 200)
				r2 := t.get("/%68elp?format=json")
				t.expectStatus(r2, 200)
				t.Seen("%s and %s", r.summary(), r2.summary())
			}},
		{ID: "route.trailing-slash", Section: "§4.3", Group: GroupLibprocess,
			Title: "trailing / is trimmed before route lookup", Run: func(t *T) {
				t.Expect("200 JSON array for /__processes__/")
				r := t.get("/__processes__/")
				t.expectStatus(r, 200)
				var v []any
				if err := json.Unmarshal(r.Body, &v); err != nil {
					t.Fatalf("%s: body is not a JSON array: %v", r.summary(), err)
				}
				t.Seen("%s", r.summary())
			}},
		{ID: "conn.keepalive", Section: "§5.1", Group: GroupLibprocess,
			Title: "HTTP/1.1 connections stay open by default", Run: func(t *T) {
				t.Expect("three requests answered on one connection")
				c := t.dial()
				for i := 1; i <= 3; i++ {
					r, err := c.roundTrip(httpRequest("GET", "/__processes__", t.Options().Target, nil))
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					t.expectStatus(r, 200)
				}
				t.Seen("three 200 responses on one connection")
			}},
		{ID: "conn.close", Section: "§5.1", Group: GroupLibprocess,
			Title: "Connection: close is honoured (server closes after the response)", Run: func(t *T) {
				t.Expect("a response, then the server closes the connection")
				c := t.dial()
				r, err := c.roundTrip(httpRequest("GET", "/__processes__", t.Options().Target, nil, "Connection: close"))
				if err != nil {
					t.Fatalf("%v", err)
				}
				if err := c.waitClosed(); err != nil {
					t.Fatalf("%s, then %v", r.summary(), err)
				}
				t.Seen("%s, then the connection closed", r.summary())
			}},
		{ID: "conn.pipeline", Section: "§5.1", Group: GroupLibprocess,
			Title: "pipelined HTTP requests are answered in request order", Run: func(t *T) {
				o := t.Options()
				paths := []string{badTimeout("conformance-a"), "/__processes__", badTimeout("conformance-b"), "/" + noSuchProcess, badTimeout("conformance-c")}
				want := []string{"400 conformance-a", "200", "400 conformance-b", "404", "400 conformance-c"}
				var all []byte
				for _, p := range paths {
					all = append(all, httpRequest("GET", p, o.Target, nil)...)
				}
				t.Expect("%q in one write answered %v", paths, want)
				c := t.dial()
				if err := c.write(all); err != nil {
					t.Fatalf("%v", err)
				}
				var got []string
				for range paths {
					r, err := c.readResponse()
					if err != nil {
						t.Fatalf("%v, then %v", got, err)
					}
					g := fmt.Sprint(r.Code)
					if m := regexp.MustCompile(`conformance-[abc]`).Find(r.Body); r.Code == 400 && m != nil {
						g += " " + string(m)
					}
					got = append(got, g)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%v", got)
				}
				t.Seen("%v", got)
			}},
		{ID: "resp.status-line", Section: "§5.2", Group: GroupLibprocess,
			Title: "every response starts HTTP/1.1 <code> <reason>", Run: func(t *T) {
				t.Expect("status lines matching %s", statusLineRE)
				responseCase(t, func(r *response) string {
					if !statusLineRE.MatchString(r.StatusLine) {
						return fmt.Sprintf("status line %q", r.StatusLine)
					}
					return ""
				})
			}},
		{ID: "resp.date", Section: "§5.2", Group: GroupLibprocess,
			Title: "every response has a Date header", Run: func(t *T) {
				t.Expect("a Date header on each response")
				responseCase(t, func(r *response) string {
					if !r.Headers.has("Date") {
						return fmt.Sprintf("%s has no Date header", r.summary())
					}
					return ""
				})
			}},
		{ID: "resp.content-length", Section: "§5.2", Group: GroupLibprocess,
			Title: "non-streamed responses carry Content-Length", Run: func(t *T) {
				t.Expect("Content-Length matching the body on each response")
				responseCase(t, func(r *response) string {
					cl, ok := r.Headers.get("Content-Length")
					if !ok || r.Chunked {
						return fmt.Sprintf("%s: Content-Length present %v, chunked %v", r.summary(), ok, r.Chunked)
					}
					if cl != fmt.Sprint(len(r.Body)) {
						return fmt.Sprintf("Content-Length %q for %d body bytes", cl, len(r.Body))
					}
					return ""
				})
			}},
		{ID: "resp.gzip", Section: "§5.3", Group: GroupLibprocess,
			Title: "a body of ≥1024 bytes is gzipped when Accept-Encoding allows it", Run: func(t *T) {
				path, plain := largestJSON(t)
				if len(plain) < 1024 {
					t.Skipf("no built-in JSON body reaches 1024 bytes (largest %d at %q)", len(plain), path)
				}
				t.Expect("GET %s with Accept-Encoding: gzip → Content-Encoding: gzip, body decompresses to JSON", path)
				r := t.get(path, "Accept-Encoding: gzip")
				t.expectStatus(r, 200)
				if ce, _ := r.Headers.get("Content-Encoding"); ce != "gzip" {
					t.Fatalf("%s, Content-Encoding %q", r.summary(), ce)
				}
				zr, err := gzip.NewReader(bytes.NewReader(r.Body))
				if err != nil {
					t.Fatalf("body is not gzip: %v", err)
				}
				dec, err := io.ReadAll(zr)
				if err != nil {
					t.Fatalf("gzip body does not decompress: %v", err)
				}
				if !json.Valid(dec) {
					t.Fatalf("decompressed body is not JSON: %q", abbreviate(dec))
				}
				t.Seen("%s, gzip of %d bytes", r.summary(), len(dec))
			}},
		{ID: "resp.json-content-type", Section: "§5.4", Group: GroupLibprocess,
			Title: "JSON responses are application/json", Run: func(t *T) {
				t.Expect("Content-Type application/json for /metrics/snapshot and /__processes__")
				for _, p := range []string{"/metrics/snapshot", "/__processes__"} {
					r := t.get(p)
					t.expectStatus(r, 200)
					if ct, _ := r.Headers.get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
						t.Fatalf("GET %s: Content-Type %q", p, ct)
					}
				}
				t.Seen("application/json")
			}},
		{ID: "processes.jsonp-ignored", Section: "§5.4, §6.2", Group: GroupLibprocess,
			Title: "/__processes__ ignores jsonp (C++ answers it unwrapped)", Run: func(t *T) {
				t.Expect("GET /__processes__?jsonp=cb → application/json, a JSON array")
				r := t.get("/__processes__?jsonp=cb")
				t.expectStatus(r, 200)
				ct, _ := r.Headers.get("Content-Type")
				var v []any
				if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(r.Body, &v) != nil {
					t.Fatalf("Content-Type %q, body %q", ct, abbreviate(r.Body))
				}
				t.Seen("Content-Type %q, an array of %d", ct, len(v))
			}},
		{ID: "resp.jsonp", Section: "§5.4", Group: GroupLibprocess,
			Title: "jsonp query parameter wraps JSON as callback(...)", Run: func(t *T) {
				t.Expect("GET /metrics/snapshot?jsonp=cb → body cb(<json>), Content-Type text/javascript")
				r := t.get("/metrics/snapshot?jsonp=cb")
				t.expectStatus(r, 200)
				ct, _ := r.Headers.get("Content-Type")
				b := r.Body
				if !strings.HasPrefix(ct, "text/javascript") || !bytes.HasPrefix(b, []byte("cb(")) || !bytes.HasSuffix(b, []byte(")")) ||
					!json.Valid(b[3:len(b)-1]) {
					t.Fatalf("Content-Type %q, body %q", ct, abbreviate(b))
				}
				t.Seen("Content-Type %q, body %q", ct, abbreviate(b))
			}},
	}
}

// builtinCases are the checks of the built-in endpoints (docs/libprocess-wire.md §6).
func builtinCases() []Case {
	return []Case{
		{ID: "help.json", Section: "§6.1", Group: GroupLibprocess,
			Title: "/help?format=json has the documented shape", Run: func(t *T) {
				t.Expect(`200 application/json {"processes":[{"id":…,"endpoints":[{"name":…,"text":…}]}]}`)
				r := t.get("/help?format=json")
				t.expectStatus(r, 200)
				if ct, _ := r.Headers.get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Fatalf("Content-Type %q", ct)
				}
				idx, err := parseHelp(r.Body)
				if err != nil {
					t.Fatalf("%v: %q", err, abbreviate(r.Body))
				}
				ids := make([]string, 0, len(idx.Processes))
				for id := range idx.Processes {
					ids = append(ids, id)
				}
				sort.Strings(ids)
				t.Seen("processes %v", ids)
			}},
		{ID: "help.process", Section: "§4.3, §6.1", Group: GroupLibprocess,
			Title: "/help/<process> answers 200 when the process has documented routes, else 404", Run: func(t *T) {
				o := t.Options()
				idx := t.help()
				r := t.get("/help/"+o.Process, "User-Agent: curl/8.0")
				if _, ok := idx.Processes[o.Process]; ok {
					t.Expect("200 (process listed in /help)")
					t.expectStatus(r, 200)
				} else {
					// C++' help process has a route per listed id only.
					t.Expect("404 %q (process not listed in /help)", notFoundBody)
					if r.Code != 404 || string(r.Body) != notFoundBody {
						t.Fatalf("%s %q", r.summary(), abbreviate(r.Body))
					}
				}
				t.Seen("%s", r.summary())
			}},
		{ID: "help.unknown-process", Section: "§4.3, §4.5, §6.1", Group: GroupLibprocess,
			Title: "/help/<unknown> is 404 \"404 Not Found.\" (no help route for it)", Run: func(t *T) {
				t.Expect("404 %q", notFoundBody)
				r := t.get("/help/" + noSuchProcess)
				if r.Code != 404 || string(r.Body) != notFoundBody {
					t.Fatalf("%s %q", r.summary(), abbreviate(r.Body))
				}
				t.Seen("%s %q", r.summary(), r.Body)
			}},
		{ID: "help.unknown-route", Section: "§6.1", Group: GroupLibprocess,
			Title: "/help/<process>/<unknown> is 400 with the C++ message (404 if the process has no documented routes)", Run: func(t *T) {
				o := t.Options()
				r := t.get("/help/" + o.Process + "/conformance-no-such-route")
				if _, ok := t.help().Processes[o.Process]; !ok {
					t.Expect("404 %q (process not listed in /help)", notFoundBody)
					if r.Code != 404 || string(r.Body) != notFoundBody {
						t.Fatalf("%s %q", r.summary(), abbreviate(r.Body))
					}
					t.Seen("%s %q", r.summary(), r.Body)
					return
				}
				want := fmt.Sprintf("No help available for '/%s/conformance-no-such-route'.\n", o.Process)
				t.Expect("400 %q", want)
				if r.Code != 400 || string(r.Body) != want {
					t.Fatalf("%s %q", r.summary(), abbreviate(r.Body))
				}
				t.Seen("%s %q", r.summary(), r.Body)
			}},
		{ID: "help.route-markdown", Section: "§6.1", Group: GroupLibprocess,
			Title: "route help for curl is text/x-markdown with the documented sections", Run: func(t *T) {
				id, name := pickEndpoint(t)
				path := "/help/" + id + name
				t.Expect("GET %s with User-Agent curl → 200 text/x-markdown with ### TL;DR; ### and ### USAGE ###", path)
				r := t.get(path, "User-Agent: curl/8.0")
				t.expectStatus(r, 200)
				ct, _ := r.Headers.get("Content-Type")
				if !strings.HasPrefix(ct, "text/x-markdown") || !bytes.Contains(r.Body, []byte("### TL;DR; ###")) || !bytes.Contains(r.Body, []byte("### USAGE ###")) {
					t.Fatalf("Content-Type %q, body %q", ct, abbreviate(r.Body))
				}
				t.Seen("%s, Content-Type %q", r.summary(), ct)
			}},
		{ID: "help.route-html", Section: "§6.1", Group: GroupLibprocess,
			Title: "route help for a browser is an HTML page", Run: func(t *T) {
				id, name := pickEndpoint(t)
				path := "/help/" + id + name
				t.Expect("GET %s with a browser User-Agent → 200 text/html", path)
				r := t.get(path, "User-Agent: Mozilla/5.0")
				t.expectStatus(r, 200)
				if ct, _ := r.Headers.get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Fatalf("Content-Type %q", ct)
				}
				t.Seen("%s", r.summary())
			}},
		{ID: "processes.json", Section: "§6.2", Group: GroupLibprocess,
			Title: "/__processes__ is an array of {id, events} including --process", Run: func(t *T) {
				o := t.Options()
				t.Expect(`200 [{"id":…,"events":[…]},…] with id %q`, o.Process)
				r := t.get("/__processes__")
				t.expectStatus(r, 200)
				var list []map[string]json.RawMessage
				if err := json.Unmarshal(r.Body, &list); err != nil {
					t.Fatalf("not an array of objects: %v: %q", err, abbreviate(r.Body))
				}
				found := false
				for i, p := range list {
					var id string
					var events []json.RawMessage
					if err := json.Unmarshal(p["id"], &id); err != nil {
						t.Fatalf("element %d: \"id\" is not a string", i)
					}
					if err := json.Unmarshal(p["events"], &events); err != nil || p["events"] == nil {
						t.Fatalf("element %d (%s): \"events\" is not an array", i, id)
					}
					found = found || id == o.Process
				}
				if !found {
					t.Fatalf("%d processes, none with id %q", len(list), o.Process)
				}
				t.Seen("%d processes", len(list))
			}},
		{ID: "metrics.snapshot", Section: "§6.3", Group: GroupLibprocess,
			Title: "/metrics/snapshot is a flat object of numbers", Run: func(t *T) {
				metricsCase(t, "/metrics/snapshot")
			}},
		{ID: "metrics.snapshot-timeout", Section: "§6.3", Group: GroupLibprocess,
			Title: "/metrics/snapshot accepts a timeout parameter", Run: func(t *T) {
				metricsCase(t, "/metrics/snapshot?timeout=5secs")
			}},
	}
}

// metricsCase checks path answers a flat JSON object of numbers.
func metricsCase(t *T, path string) {
	t.Expect(`200 {"<metric>": number, …} for %s`, path)
	r := t.get(path)
	t.expectStatus(r, 200)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %q", err, abbreviate(r.Body))
	}
	for k, v := range m {
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			t.Fatalf("metric %q is %s, not a number", k, v)
		}
	}
	t.Seen("%d metrics", len(m))
}

// pickEndpoint chooses a documented endpoint, preferring --process.
func pickEndpoint(t *T) (id, name string) {
	idx := t.help()
	o := t.Options()
	ids := make([]string, 0, len(idx.Processes))
	for id := range idx.Processes {
		if id != o.Process {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if _, ok := idx.Processes[o.Process]; ok {
		ids = append([]string{o.Process}, ids...)
	}
	for _, id := range ids {
		for _, n := range idx.Processes[id] {
			if n != "/" && n != "" {
				return id, normaliseEndpoint(n)
			}
		}
	}
	t.Skipf("/help lists no endpoint")
	return "", ""
}

// normaliseEndpoint makes an endpoint name a path suffix ("/name").
func normaliseEndpoint(n string) string {
	if n == "/" {
		return ""
	}
	if !strings.HasPrefix(n, "/") {
		return "/" + n
	}
	return n
}
