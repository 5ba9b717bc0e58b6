package pkgpanda

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The Pkgpanda API answer for answer (docs/pkgpanda-cli.md §6): every row and
// every HTTP edge, over real sockets, against the stand-in.

// send sends one request without following redirects; path is below
// /pkgpanda.
func (e *env) send(method, path string, body []byte, header ...string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("request %s %s: %v", method, path, err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{
		Transport:     e.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// expectDCOS fails unless r is status with exactly the JSON error text
// (and no other key).
func expectDCOS(t testing.TB, what string, r reply, status int, text string) {
	t.Helper()
	want, _ := json.Marshal(map[string]string{"error": text})
	expectJSON(t, what, r, status, string(want))
}

// expectMissing fails unless r is DC/OS's 409 naming missing (a JSON
// array) as missing_packages.
func expectMissing(t testing.TB, what string, r reply, missing string) {
	t.Helper()
	expectJSON(t, what, r, 409, `{"error":"Not all packages in the request are present on this node.","missing_packages":`+missing+`}`)
}

// activeSet reads the active ids as the API lists them.
func (e *env) activeSet() string {
	e.t.Helper()
	r := e.do("GET", "/active/", nil)
	if r.status != 200 {
		e.t.Fatalf("GET /active/: %s", r)
	}
	return string(r.body)
}

func TestDCOSRepositoryRows(t *testing.T) {
	e := newEnv(t, envOpt{})
	repo, active := fixtureIDs(t, e.fixture)
	remote := "file://" + filepath.Join(e.dir, "remote_repo") + "/"

	// GET /repository/<id>: invalid, then absent, then unloadable.
	expectDCOS(t, "GET invalid", e.do("GET", "/repository/invalid-package", nil), 404, "Invalid package ID: invalid-package")
	expectDCOS(t, "GET invalid (two separators)", e.do("GET", "/repository/a--b--c", nil), 404, "Invalid package ID: a--b--c")
	expectDCOS(t, "GET absent", e.do("GET", "/repository/mesos--9.9.9", nil), 404, "Package mesos--9.9.9 not found.")
	broken := "mesos-config--justmesos"
	if err := os.WriteFile(filepath.Join(e.dir, "packages", broken, "pkginfo.json"), []byte("[1,2]"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectDCOS(t, "GET unloadable", e.do("GET", "/repository/"+broken, nil), 500, "Unable to load package "+broken+".")
	if err := os.Remove(filepath.Join(e.dir, "packages", broken, "pkginfo.json")); err != nil {
		t.Fatal(err)
	}
	expectDCOS(t, "GET without pkginfo.json", e.do("GET", "/repository/"+broken, nil), 500, "Unable to load package "+broken+".")

	// POST /repository/<id>: the body first, then the id, then the fetch.
	runs := e.runsStarted("add")
	for _, c := range []struct{ what, ct, body string }{
		{"JSON sent as text/plain", "text/plain", `{"repository_url":"` + remote + `"}`},
		{"JSON sent without a Content-Type", "", `{"repository_url":"` + remote + `"}`},
		{"JSON sent as form", "application/x-www-form-urlencoded", `{"repository_url":"` + remote + `"}`},
		{"bad JSON", "application/json", `{"repository_url":`},
		{"not an object", "application/json", `["repository_url"]`},
		{"null", "application/json", `null`},
		{"no key", "application/json", `{"url":"` + remote + `"}`},
		{"empty body", "application/json", ``},
	} {
		var h []string
		if c.ct != "" {
			h = []string{"Content-Type", c.ct}
		}
		expectDCOS(t, "POST "+c.what, e.do("POST", "/repository/mesos--0.22.0", []byte(c.body), h...), 400,
			"Request body must be a json object with a `repository_url` key.")
		// The body is checked before the id.
		expectDCOS(t, "POST invalid id, "+c.what, e.do("POST", "/repository/invalid-package", []byte(c.body), h...), 400,
			"Request body must be a json object with a `repository_url` key.")
	}
	expectDCOS(t, "POST invalid id", e.doJSON("POST", "/repository/invalid-package", []byte(`{"repository_url":"`+remote+`"}`)), 400,
		"Invalid package ID: invalid-package")
	for _, b := range []string{`{"repository_url": 5}`, `{"repository_url": ""}`, `{"repository_url": null}`, `{"repository_url": ["x"]}`} {
		expectDCOS(t, "POST "+b, e.doJSON("POST", "/repository/mesos--0.22.0", []byte(b)), 400, "`repository_url` must be a non-empty string.")
	}
	expectDCOS(t, "POST fetch fails", e.doJSON("POST", "/repository/mesos--7.7.7", []byte(`{"repository_url":"`+remote+`"}`)), 500,
		"An unexpected error has occurred.")
	if n := e.runsStarted("add"); n != runs {
		t.Fatalf("a refused POST ran pkgpanda add (%d runs, %d before)", n, runs)
	}
	expectJSON(t, "repository unchanged", e.do("GET", "/repository/", nil), 200, jsonList(repo))

	// DELETE /repository/<id>: active (checked first), invalid, absent.
	expectDCOS(t, "DELETE active", e.do("DELETE", "/repository/"+active[0], nil), 409, "Package "+active[0]+" is active, so it can't be removed.")
	expectDCOS(t, "DELETE invalid", e.do("DELETE", "/repository/invalid-package", nil), 404, "Invalid package ID: invalid-package")
	expectDCOS(t, "DELETE absent", e.do("DELETE", "/repository/absent--1", nil), 404, "Package absent--1 not found.")
	expectJSON(t, "repository unchanged after refused deletes", e.do("GET", "/repository/", nil), 200, jsonList(repo))
}

func TestDCOSActiveRows(t *testing.T) {
	e := newEnv(t, envOpt{})
	_, active := fixtureIDs(t, e.fixture)
	before := e.activeSet()

	expectDCOS(t, "GET /active/ inactive", e.do("GET", "/active/mesos--0.23.0", nil), 404, "Package mesos--0.23.0 is not active.")
	expectDCOS(t, "GET /active/ invalid", e.do("GET", "/active/invalid-package", nil), 404, "Invalid package ID: invalid-package")
	// The repository is asked first: an absent id is "not found", not
	// "not active".
	expectDCOS(t, "GET /active/ absent", e.do("GET", "/active/absent--1", nil), 404, "Package absent--1 not found.")

	// PUT /active/: the body must be a JSON array sent as JSON.
	runs := e.runsStarted("activate")
	good := []byte(`["mesos--0.23.0","mesos-config--justmesos"]`)
	for _, c := range []struct{ what, ct, body string }{
		{"array sent as text/plain", "text/plain", string(good)},
		{"array sent without a Content-Type", "", string(good)},
		{"object", "application/json", `{"a":1}`},
		{"string", "application/json", `"mesos--0.23.0"`},
		{"null", "application/json", `null`},
		{"malformed JSON", "application/json", `[`},
		{"trailing garbage", "application/json", `["mesos--0.23.0"] x`},
	} {
		var h []string
		if c.ct != "" {
			h = []string{"Content-Type", c.ct}
		}
		expectDCOS(t, "PUT "+c.what, e.do("PUT", "/active/", []byte(c.body), h...), 400, "Request body must be a json array of package IDs.")
	}
	// Ids not in the repository, invalid ids among them, are missing:
	// 409, sorted, each once, as sent.
	expectMissing(t, "PUT missing and invalid", e.doJSON("PUT", "/active/", []byte(`["mesos--0.23.0","zzz--1","invalid-package","aaa--2","zzz--1","a/../b"]`)),
		`["a/../b","aaa--2","invalid-package","zzz--1"]`)
	expectMissing(t, "PUT numbers", e.doJSON("PUT", "/active/", []byte(`[2, 1, 1.0, true, -3]`)), `[-3,1,2]`)
	expectMissing(t, "PUT booleans", e.doJSON("PUT", "/active/", []byte(`[true, false]`)), `[false,true]`)
	expectMissing(t, "PUT null", e.doJSON("PUT", "/active/", []byte(`[null, null]`)), `[null]`)
	// Where DC/OS crashes (unhashable or incomparable elements): 400.
	for _, b := range []string{`[["x"]]`, `[{"a":1}]`, `["mesos--0.23.0", 1]`, `[null, 1]`} {
		expectDCOS(t, "PUT "+b, e.doJSON("PUT", "/active/", []byte(b)), 400,
			"Request body must be a json array of package IDs: every element must be a string, or every element a number, boolean or null.")
	}
	// [] cannot be expressed to the tool.
	expectDCOS(t, "PUT []", e.doJSON("PUT", "/active/", []byte(`[]`)), 409,
		"Refusing to activate an empty set of packages: the pkgpanda tool cannot deactivate every package.")
	if n := e.runsStarted("activate"); n != runs {
		t.Fatalf("a refused PUT ran pkgpanda activate (%d runs, %d before)", n, runs)
	}
	// Refused by the tool's validation: 409 with the tool's message.
	r := e.doJSON("PUT", "/active/", []byte(`["mesos--0.22.0","mesos--0.23.0"]`))
	expectStatus(t, "PUT two versions of one name", r, 409)
	var v struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || !strings.Contains(v.Error, "mesos") || strings.Contains(v.Error, "Validation Error") {
		t.Fatalf("PUT two versions: want the tool's message, got %s", r.body)
	}
	if got := e.activeSet(); got != before {
		t.Fatalf("active set changed by refused PUTs: %s, want %s", got, before)
	}

	// An active package gone from the repository: GET /active/<id> asks
	// the repository first (404), DELETE asks the active set first (409).
	gone := active[0]
	if err := os.Rename(filepath.Join(e.dir, "packages", gone), filepath.Join(e.dir, "gone")); err != nil {
		t.Fatal(err)
	}
	expectDCOS(t, "GET /active/<active, not in the repository>", e.do("GET", "/active/"+gone, nil), 404, "Package "+gone+" not found.")
	expectDCOS(t, "DELETE <active, not in the repository>", e.do("DELETE", "/repository/"+gone, nil), 409, "Package "+gone+" is active, so it can't be removed.")
	if err := os.Rename(filepath.Join(e.dir, "gone"), filepath.Join(e.dir, "packages", gone)); err != nil {
		t.Fatal(err)
	}
	// An active package that cannot be loaded: 500, as GET /repository/<id>
	// (a pkginfo.json that is not JSON reaches DC/OS's generic handler).
	if err := os.WriteFile(filepath.Join(e.dir, "packages", gone, "pkginfo.json"), []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectDCOS(t, "GET /active/<active, unloadable>", e.do("GET", "/active/"+gone, nil), 500, "An unexpected error has occurred.")
}

func TestDCOSHTTPEdges(t *testing.T) {
	e := newEnv(t, envOpt{})
	_, active := fixtureIDs(t, e.fixture)
	before := e.activeSet()
	body := []byte(`["mesos--0.23.0","mesos-config--justmesos"]`)

	// Without the trailing slash: 301 to the slash form, every method;
	// nothing is carried out.
	for _, route := range []string{"repository", "active"} {
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
			r := e.send(m, "/"+route, body, "Content-Type", "application/json")
			expectStatus(t, m+" /"+route, r, 301)
			if loc := r.header.Get("Location"); loc != route+"/" {
				t.Errorf("%s /%s: Location %q, want %q", m, route, loc, route+"/")
			}
		}
		r := e.send("GET", "/"+route+"?jsonp=cb&x=1", nil)
		if loc := r.header.Get("Location"); r.status != 301 || loc != route+"/?jsonp=cb&x=1" {
			t.Errorf("GET /%s?query: %d Location %q", route, r.status, loc)
		}
	}
	// Followed, the Location reaches the list.
	if r := e.do("GET", "/repository", nil); r.status != 200 || !json.Valid(r.body) {
		t.Fatalf("GET /repository, redirect followed: %s", r)
	}
	if got := e.activeSet(); got != before || e.runsStarted("activate") != 0 {
		t.Fatalf("PUT /active was carried out: active %s (was %s), %d activate runs", got, before, e.runsStarted("activate"))
	}

	// Ids never contain '/': 404 for every method.
	for _, path := range []string{"/repository/" + active[0] + "/", "/repository/a/b", "/active/" + active[0] + "/", "/active/a/b",
		"/repository//", "/active//", "/repository/a%2Fb"} {
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"} {
			r := e.send(m, path, []byte(`{"repository_url":"file:///x/"}`), "Content-Type", "application/json")
			if m == "HEAD" {
				if r.status != 404 {
					t.Errorf("HEAD %s: %d, want 404", path, r.status)
				}
				continue
			}
			expectStatus(t, m+" "+path, r, 404)
		}
	}

	// 405 with Allow; OPTIONS 200 with the same Allow and no body.
	for _, c := range []struct {
		path, allow string
		wrong       []string
	}{
		{"/repository/", "HEAD, OPTIONS, GET", []string{"POST", "PUT", "DELETE", "PATCH"}},
		{"/repository/" + active[0], "HEAD, OPTIONS, GET, POST, DELETE", []string{"PUT", "PATCH"}},
		{"/active/", "HEAD, OPTIONS, GET, PUT", []string{"POST", "DELETE", "PATCH"}},
		{"/active/" + active[0], "HEAD, OPTIONS, GET", []string{"POST", "PUT", "DELETE", "PATCH"}},
	} {
		for _, m := range c.wrong {
			r := e.send(m, c.path, nil)
			expectStatus(t, m+" "+c.path, r, 405)
			if got := r.header.Get("Allow"); got != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", m, c.path, got, c.allow)
			}
		}
		r := e.send("OPTIONS", c.path, nil)
		if r.status != 200 || len(r.body) != 0 || r.header.Get("Allow") != c.allow {
			t.Errorf("OPTIONS %s: %d Allow %q body %q, want 200 Allow %q and no body", c.path, r.status, r.header.Get("Allow"), r.body, c.allow)
		}
		r = e.send("HEAD", c.path, nil)
		if r.status != 200 || len(r.body) != 0 {
			t.Errorf("HEAD %s: %d %q", c.path, r.status, r.body)
		}
	}

	// jsonp is ignored.
	for _, path := range []string{"/repository/", "/active/", "/repository/" + active[0], "/active/" + active[0]} {
		r := e.do("GET", path+"?jsonp=cb", nil)
		if r.status != 200 || !json.Valid(r.body) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s?jsonp=cb: %d %s %q", path, r.status, r.header.Get("Content-Type"), r.body)
		}
	}

	// application/*+json is JSON; parameters do not matter.
	expectMissing(t, "PUT as application/vnd.x+json", e.do("PUT", "/active/", []byte(`["zzz--1"]`), "Content-Type", "application/vnd.x+json; charset=utf-8"), `["zzz--1"]`)
	expectMissing(t, "PUT as Application/JSON", e.do("PUT", "/active/", []byte(`["zzz--1"]`), "Content-Type", "Application/JSON"), `["zzz--1"]`)
}

// TestDCOSPutActiveWithoutSlashOnTheWire sends the exact bytes of a
// `PUT /pkgpanda/active` with a valid body: 301, and no activation.
func TestDCOSPutActiveWithoutSlashOnTheWire(t *testing.T) {
	e := newEnv(t, envOpt{})
	before := e.activeSet()
	body := `["mesos--0.23.0","mesos-config--justmesos"]`
	conn, err := net.Dial("tcp", e.rt.Addr().HostPort())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf("PUT /pkgpanda/active HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "active/" {
		t.Fatalf("PUT /pkgpanda/active: %d Location %q, want 301 active/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := e.activeSet(); got != before || e.runsStarted("activate") != 0 {
		t.Fatalf("the activation was carried out: %s (was %s)", got, before)
	}
}

// TestDCOSTestHTTPFlows ports the flows of DC/OS's pkgpanda test_http.py
// to HTTP against /pkgpanda/: list, get, list active, get active,
// activate (its state directory created), fetch into an empty repository
// from a file:// URL, remove.
func TestDCOSTestHTTPFlows(t *testing.T) {
	e := newEnv(t, envOpt{})
	repo, active := fixtureIDs(t, e.fixture)
	pkg := func(id string) string {
		name, version, _ := strings.Cut(id, "--")
		b, _ := json.Marshal(map[string]string{"id": id, "name": name, "version": version})
		return string(b)
	}

	t.Run("list", func(t *testing.T) {
		expectJSON(t, "GET /repository/", e.do("GET", "/repository/", nil), 200, jsonList(repo))
	})
	t.Run("get", func(t *testing.T) {
		expectJSON(t, "GET /repository/mesos--0.22.0", e.do("GET", "/repository/mesos--0.22.0", nil), 200, pkg("mesos--0.22.0"))
		expectStatus(t, "GET /repository/<absent>", e.do("GET", "/repository/mesos--0.0.0", nil), 404)
	})
	t.Run("list active", func(t *testing.T) {
		expectJSON(t, "GET /active/", e.do("GET", "/active/", nil), 200, jsonList(active))
	})
	t.Run("get active", func(t *testing.T) {
		expectJSON(t, "GET /active/mesos--0.22.0", e.do("GET", "/active/mesos--0.22.0", nil), 200, pkg("mesos--0.22.0"))
		expectStatus(t, "GET /active/<inactive>", e.do("GET", "/active/mesos--0.23.0", nil), 404)
	})
	t.Run("activate", func(t *testing.T) {
		next := []string{"mesos--0.23.0", "mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8"}
		stateDir := filepath.Join(e.dir, "state", "mesos")
		if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
			t.Fatalf("%s exists before the activation (%v)", stateDir, err)
		}
		b, _ := json.Marshal(next)
		expectStatus(t, "PUT /active/", e.doJSON("PUT", "/active/", b), 204)
		expectJSON(t, "GET /active/", e.do("GET", "/active/", nil), 200, jsonList(next))
		if fi, err := os.Stat(stateDir); err != nil || !fi.IsDir() {
			t.Fatalf("state directory of mesos--0.23.0 (state_directory: true) after activation: %v", err)
		}
	})
	t.Run("remove", func(t *testing.T) {
		expectStatus(t, "DELETE /repository/mesos--0.22.0", e.do("DELETE", "/repository/mesos--0.22.0", nil), 204)
		expectJSON(t, "GET /repository/", e.do("GET", "/repository/", nil), 200,
			jsonList(slices.DeleteFunc(slices.Clone(repo), func(s string) bool { return s == "mesos--0.22.0" })))
		expectDCOS(t, "DELETE again", e.do("DELETE", "/repository/mesos--0.22.0", nil), 404, "Package mesos--0.22.0 not found.")
	})
	t.Run("fetch into an empty repository", func(t *testing.T) {
		f := newEnv(t, envOpt{})
		entries, err := os.ReadDir(filepath.Join(f.dir, "packages"))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range entries {
			if err := os.RemoveAll(filepath.Join(f.dir, "packages", d.Name())); err != nil {
				t.Fatal(err)
			}
		}
		expectJSON(t, "empty repository", f.do("GET", "/repository/", nil), 200, `[]`)
		remote := "file://" + filepath.Join(f.dir, "remote_repo") + "/"
		b, _ := json.Marshal(map[string]string{"repository_url": remote})
		expectStatus(t, "POST /repository/mesos--0.22.0", f.doJSON("POST", "/repository/mesos--0.22.0", b), 204)
		expectJSON(t, "fetched", f.do("GET", "/repository/", nil), 200, `["mesos--0.22.0"]`)
		expectJSON(t, "loads", f.do("GET", "/repository/mesos--0.22.0", nil), 200, pkg("mesos--0.22.0"))
	})
}

// TestDCOSMalformedFolderFailsListing: a repository folder with one "--"
// and a bad version makes the tool's list fail, so every route that needs
// the listing answers the tool's error (a documented difference).
func TestDCOSMalformedFolderFailsListing(t *testing.T) {
	e := newEnv(t, envOpt{})
	if err := os.MkdirAll(filepath.Join(e.dir, "packages", "foo--1-2"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/repository/", ""},
		{"GET", "/repository/mesos--0.22.0", ""},
		{"DELETE", "/repository/mesos--0.23.0", ""},
		{"PUT", "/active/", `["mesos--0.22.0"]`},
	} {
		r := e.doJSON(c.method, c.path, []byte(c.body))
		t.Logf("%s %s: %s", c.method, c.path, r)
		expectStatus(t, c.method+" "+c.path, r, 500)
		if !strings.Contains(string(r.body), "Invalid package version 1-2.") {
			t.Errorf("%s %s: want the tool's error about foo--1-2, got %s", c.method, c.path, r.body)
		}
	}
}
