package conformance

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Package ids of the fixture the shared pkgpanda fixture shared/fixtures/pkgpanda/http that the
// mutating cases move between (see its README).
const (
	fixMesosOld      = "mesos--0.22.0" // active at start; the only id in remote_repo
	fixMesosNew      = "mesos--0.23.0" // inactive at start
	fixConfigJust    = "mesos-config--justmesos"
	fixMissingID     = "conformance-missing--1.0"
	fixMissingOther  = "aaa-conformance-missing--1"
	pkgpandaSpecRef  = "pkgpanda-cli §6"
	pkgpandaSpecRef1 = "pkgpanda-cli §1, §6"
)

// pkgIDRE is a valid package id (docs/pkgpanda-cli.md §1.1).
var pkgIDRE = regexp.MustCompile(`^[a-zA-Z0-9@_+][a-zA-Z0-9@._+\-]*--[a-zA-Z0-9@_+:.]+$`)

// validPkgID reports whether id is a package id.
func validPkgID(id string) bool {
	return pkgIDRE.MatchString(id) && strings.Count(id, "--") == 1
}

// invalidPkgIDs are ids the API must treat as invalid; invalid-package is a
// folder in the fixture whose name is not an id.
var invalidPkgIDs = []string{"invalid-package", "a--b--c", "-rf--1", "mesos--0.22-0", ".hidden--1"}

// fixtureState is what the fixture says the target starts from.
type fixtureState struct {
	repo   []string // sorted ids in packages/
	active []string // sorted ids linked from install/active/
}

// readFixture derives the expected state from the fixture directory.
func readFixture(dir string) (*fixtureState, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "packages"))
	if err != nil {
		return nil, fmt.Errorf("read fixture packages: %w", err)
	}
	st := &fixtureState{repo: []string{}, active: []string{}}
	for _, e := range entries {
		if e.IsDir() && validPkgID(e.Name()) {
			st.repo = append(st.repo, e.Name())
		}
	}
	links, err := os.ReadDir(filepath.Join(dir, "install", "active"))
	if err != nil {
		return nil, fmt.Errorf("read fixture active set: %w", err)
	}
	for _, l := range links {
		p := filepath.Join(dir, "install", "active", l.Name())
		target, err := os.Readlink(p)
		if err != nil {
			// A copy that lost its symbolic links keeps the target as text.
			b, rerr := os.ReadFile(p)
			if rerr != nil {
				return nil, fmt.Errorf("read active link %s: %w", p, err)
			}
			target = strings.TrimSpace(string(b))
		}
		st.active = append(st.active, filepath.Base(target))
	}
	sort.Strings(st.repo)
	sort.Strings(st.active)
	return st, nil
}

// fixture returns the expected state or skips the case.
func (t *T) fixture() *fixtureState {
	dir := t.Options().Fixture
	if dir == "" {
		t.Skipf("needs --fixture (the directory the target's pkgpanda state was copied from)")
	}
	st, err := readFixture(dir)
	if err != nil {
		t.Fatalf("%v", err)
	}
	for _, id := range []string{fixMesosOld, fixMesosNew, fixConfigJust} {
		if !contains(st.repo, id) {
			t.Skipf("fixture %s lacks package %s; the suite's mutating sequence is written for the shared pkgpanda fixture shared/fixtures/pkgpanda/http", dir, id)
		}
	}
	return st
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pkg sends a request to the pkgpanda API path (relative to its base) with
// an optional JSON body.
func (t *T) pkg(method, path string, body []byte) *response {
	o := t.Options()
	var extra []string
	if body != nil {
		extra = append(extra, "Content-Type: application/json")
	}
	return t.roundTrip(httpRequest(method, "/"+o.PkgpandaID+path, o.Target, body, extra...))
}

// expectJSON fails unless r has code and an application/json body that
// decodes into v.
func (t *T) expectJSON(what string, r *response, code int, v any) {
	if r.Code != code {
		t.Fatalf("%s: %s %q", what, r.summary(), abbreviate(r.Body))
	}
	if ct, _ := r.Headers.get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q", what, ct)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s: body %q: %v", what, abbreviate(r.Body), err)
	}
}

// expectError fails unless r is code with a JSON object holding an "error"
// string; it returns the object.
func (t *T) expectError(what string, r *response, code int) map[string]json.RawMessage {
	var obj map[string]json.RawMessage
	t.expectJSON(what, r, code, &obj)
	var msg string
	if err := json.Unmarshal(obj["error"], &msg); err != nil {
		t.Fatalf("%s: no \"error\" string in %q", what, abbreviate(r.Body))
	}
	return obj
}

// DC/OS's error texts (docs/pkgpanda-cli.md §6.2), character for character.
const (
	msgFetchBody     = "Request body must be a json object with a `repository_url` key."
	msgActiveBody    = "Request body must be a json array of package IDs."
	msgUnexpected    = "An unexpected error has occurred."
	msgNotAllPresent = "Not all packages in the request are present on this node."
)

func msgInvalidID(id string) string { return "Invalid package ID: " + id }
func msgNotFound(id string) string  { return "Package " + id + " not found." }
func msgNotActive(id string) string { return "Package " + id + " is not active." }
func msgIsActive(id string) string  { return "Package " + id + " is active, so it can't be removed." }

// expectErrorText fails unless r is code with a JSON object whose "error"
// is exactly text; it returns the object.
func (t *T) expectErrorText(what string, r *response, code int, text string) map[string]json.RawMessage {
	obj := t.expectError(what, r, code)
	var msg string
	_ = json.Unmarshal(obj["error"], &msg)
	if msg != text {
		t.Fatalf("%s: error %q, want %q", what, msg, text)
	}
	return obj
}

// expectNoContent fails unless r is 204 with an empty body.
func (t *T) expectNoContent(what string, r *response) {
	if r.Code != 204 || len(r.Body) != 0 {
		t.Fatalf("%s: %s %q", what, r.summary(), abbreviate(r.Body))
	}
}

// list fetches a sorted id list (repository/ or active/) and checks its shape.
func (t *T) list(path string) []string {
	var ids []string
	t.expectJSON("GET "+path, t.pkg("GET", path, nil), 200, &ids)
	if ids == nil {
		t.Fatalf("GET %s: not a JSON array", path)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatalf("GET %s: not sorted: %q", path, ids)
	}
	return ids
}

// expectList fails unless GET path lists exactly want.
func (t *T) expectList(path string, want []string) {
	got := t.list(path)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("GET %s: %q, want %q", path, got, want)
	}
}

// expectPackage fails unless GET path answers {"id","name","version"} for id.
func (t *T) expectPackage(path, id string) {
	var obj map[string]any
	t.expectJSON("GET "+path, t.pkg("GET", path, nil), 200, &obj)
	name, version, _ := strings.Cut(id, "--")
	want := map[string]any{"id": id, "name": name, "version": version}
	if fmt.Sprint(obj) != fmt.Sprint(want) {
		t.Fatalf("GET %s: %v, want %v", path, obj, want)
	}
}

// knownState returns repository and active lists from the fixture when given,
// else as the target lists them.
func (t *T) knownState() (repo, active []string) {
	if t.Options().Fixture != "" {
		st := t.fixture()
		return st.repo, st.active
	}
	return t.list("/repository/"), t.list("/active/")
}

// remoteRepoURL is the fetch URL of the fixture's remote repository.
func (t *T) remoteRepoURL() string {
	t.fixture()
	dir, err := filepath.Abs(t.Options().Fixture)
	if err != nil {
		t.Fatalf("fixture path: %v", err)
	}
	return "file://" + filepath.Join(dir, "remote_repo") + "/"
}

// activate PUTs ids as the active set and checks the result.
func activate(t *T, ids ...string) {
	body, _ := json.Marshal(ids)
	t.expectNoContent("PUT /active/ "+string(body), t.pkg("PUT", "/active/", body))
	want := append([]string(nil), ids...)
	sort.Strings(want)
	t.expectList("/active/", want)
}

// replaceName returns active with the package of name replaced by id.
func replaceName(active []string, id string) []string {
	name, _, _ := strings.Cut(id, "--")
	var out []string
	for _, a := range active {
		if n, _, _ := strings.Cut(a, "--"); n != name {
			out = append(out, a)
		}
	}
	out = append(out, id)
	sort.Strings(out)
	return out
}

// without returns list minus s.
func without(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// pkgpandaCases check the Pkgpanda HTTP API contract (docs/pkgpanda-cli.md §6).
// Read-only cases come first; the mutating ones form a chain that ends where
// the fixture started.
func pkgpandaCases() []Case {
	g := GroupPkgpanda
	return []Case{
		{ID: "pkgpanda.repository.list", Section: pkgpandaSpecRef, Group: g,
			Title: "GET /repository/ is the sorted array of ids", Run: func(t *T) {
				if t.Options().Fixture == "" {
					t.Expect("200 sorted JSON array of ids")
					ids := t.list("/repository/")
					for _, id := range ids {
						if !validPkgID(id) {
							t.Fatalf("lists %q, not a package id", id)
						}
					}
					t.Seen("%q", ids)
					return
				}
				want := t.fixture().repo
				t.Expect("200 %q", want)
				t.expectList("/repository/", want)
				t.Seen("%q", want)
			}},
		{ID: "pkgpanda.jsonp-ignored", Section: pkgpandaSpecRef, Group: g,
			Title: "the pkgpanda routes ignore jsonp: ?jsonp=cb answers plain JSON", Run: func(t *T) {
				t.Expect("GET /repository/?jsonp=cb and /active/?jsonp=cb: 200 application/json sorted arrays, not cb(…)")
				repo := t.list("/repository/?jsonp=cb")
				active := t.list("/active/?jsonp=cb")
				t.Seen("%d and %d ids, unwrapped", len(repo), len(active))
			}},
		{ID: "pkgpanda.repository.get", Section: pkgpandaSpecRef, Group: g,
			Title: "GET /repository/<id> is {id,name,version}", Run: func(t *T) {
				repo, _ := t.knownState()
				if len(repo) == 0 {
					t.Skipf("repository is empty")
				}
				t.Expect(`200 {"id","name","version"} for each of %q`, repo)
				for _, id := range repo {
					t.expectPackage("/repository/"+id, id)
				}
				t.Seen("%d packages", len(repo))
			}},
		{ID: "pkgpanda.repository.get-missing", Section: pkgpandaSpecRef, Group: g,
			Title: "GET /repository/<absent id> is 404 {error}", Run: func(t *T) {
				t.Expect(`404 {"error": %q}`, msgNotFound(fixMissingID))
				t.expectErrorText("GET /repository/"+fixMissingID, t.pkg("GET", "/repository/"+fixMissingID, nil), 404, msgNotFound(fixMissingID))
				t.Seen("404 with DC/OS's text")
			}},
		{ID: "pkgpanda.repository.get-invalid", Section: pkgpandaSpecRef1, Group: g,
			Title: "GET /repository/<invalid id> is 404 {error}", Run: func(t *T) {
				t.Expect(`404 {"error": …} for each of %q`, invalidPkgIDs)
				for _, id := range invalidPkgIDs {
					t.expectErrorText("GET /repository/"+id, t.pkg("GET", "/repository/"+id, nil), 404, msgInvalidID(id))
				}
				t.Seen("404 with an error object for each")
			}},
		{ID: "pkgpanda.active.list", Section: pkgpandaSpecRef, Group: g,
			Title: "GET /active/ is the sorted array of active ids", Run: func(t *T) {
				if t.Options().Fixture == "" {
					t.Expect("200 sorted JSON array of ids")
					t.Seen("%q", t.list("/active/"))
					return
				}
				want := t.fixture().active
				t.Expect("200 %q", want)
				t.expectList("/active/", want)
				t.Seen("%q", want)
			}},
		{ID: "pkgpanda.active.get", Section: pkgpandaSpecRef, Group: g,
			Title: "GET /active/<active id> is {id,name,version}", Run: func(t *T) {
				_, active := t.knownState()
				if len(active) == 0 {
					t.Skipf("no active package")
				}
				t.Expect(`200 {"id","name","version"} for each of %q`, active)
				for _, id := range active {
					t.expectPackage("/active/"+id, id)
				}
				t.Seen("%d packages", len(active))
			}},
		{ID: "pkgpanda.active.get-inactive", Section: pkgpandaSpecRef, Group: g,
			Title: "GET /active/<inactive or absent or invalid id> is 404 {error}", Run: func(t *T) {
				repo, active := t.knownState()
				want := map[string]string{fixMissingID: msgNotFound(fixMissingID)} // the repository is asked first
				for _, id := range repo {
					if !contains(active, id) {
						want[id] = msgNotActive(id)
					}
				}
				for _, id := range invalidPkgIDs {
					want[id] = msgInvalidID(id)
				}
				t.Expect(`404 {"error": …} with DC/OS's text for each of %q`, want)
				for id, text := range want {
					t.expectErrorText("GET /active/"+id, t.pkg("GET", "/active/"+id, nil), 404, text)
				}
				t.Seen("404 with DC/OS's text for each")
			}},
		{ID: "pkgpanda.repository.post-bad-body", Section: pkgpandaSpecRef, Group: g,
			Title: "POST /repository/<id> without a {repository_url} object is 400 {error}", Run: func(t *T) {
				bodies := []string{`[]`, `{}`, `not json`, `"file:///x/"`}
				t.Expect(`400 {"error": …} for bodies %q`, bodies)
				for _, b := range bodies {
					t.expectErrorText("POST /repository/"+fixMissingID+" "+b, t.pkg("POST", "/repository/"+fixMissingID, []byte(b)), 400, msgFetchBody)
				}
				t.Seen("400 with an error object for each")
			}},
		{ID: "pkgpanda.repository.post-invalid-id", Section: pkgpandaSpecRef1, Group: g,
			Title: "POST /repository/<invalid id> is 400 {error}", Run: func(t *T) {
				t.Expect(`400 {"error": …} for each of %q`, invalidPkgIDs)
				for _, id := range invalidPkgIDs {
					t.expectErrorText("POST /repository/"+id, t.pkg("POST", "/repository/"+id, []byte(`{"repository_url": "file:///conformance-nonexistent/"}`)), 400, msgInvalidID(id))
				}
				t.Seen("400 with an error object for each")
			}},
		{ID: "pkgpanda.repository.post-fetch-fails", Section: pkgpandaSpecRef, Group: g,
			Title: "POST /repository/<id> whose fetch fails is 500 {error}; repository unchanged", Run: func(t *T) {
				repo, _ := t.knownState()
				url := "file:///conformance-nonexistent/"
				if t.Options().Fixture != "" {
					url = t.remoteRepoURL()
				}
				t.Expect(`500 {"error": …} fetching %s from %s, then the repository lists %q`, fixMissingID, url, repo)
				body, _ := json.Marshal(map[string]string{"repository_url": url})
				t.expectErrorText("POST /repository/"+fixMissingID, t.pkg("POST", "/repository/"+fixMissingID, body), 500, msgUnexpected)
				t.expectList("/repository/", repo)
				t.Seen("500 with an error object; repository unchanged")
			}},
		{ID: "pkgpanda.repository.delete-missing", Section: pkgpandaSpecRef, Group: g,
			Title: "DELETE /repository/<absent or invalid id> is 404 {error}", Run: func(t *T) {
				ids := append([]string{fixMissingID}, invalidPkgIDs...)
				t.Expect(`404 {"error": …} with DC/OS's text for each of %q`, ids)
				for _, id := range ids {
					text := msgInvalidID(id)
					if id == fixMissingID {
						text = msgNotFound(id)
					}
					t.expectErrorText("DELETE /repository/"+id, t.pkg("DELETE", "/repository/"+id, nil), 404, text)
				}
				t.Seen("404 with an error object for each")
			}},
		{ID: "pkgpanda.repository.delete-active", Section: pkgpandaSpecRef, Group: g,
			Title: "DELETE /repository/<active id> is 409 {error}; package kept", Run: func(t *T) {
				repo, active := t.knownState()
				if len(active) == 0 {
					t.Skipf("no active package")
				}
				t.Expect(`409 {"error": …} for %s, then the repository lists %q`, active[0], repo)
				t.expectErrorText("DELETE /repository/"+active[0], t.pkg("DELETE", "/repository/"+active[0], nil), 409, msgIsActive(active[0]))
				t.expectList("/repository/", repo)
				t.Seen("409 with an error object; repository unchanged")
			}},
		{ID: "pkgpanda.active.put-bad-body", Section: pkgpandaSpecRef, Group: g,
			Title: "PUT /active/ with a body that is not a JSON array is 400 {error}", Run: func(t *T) {
				_, active := t.knownState()
				bodies := []string{`{}`, `"` + fixMesosOld + `"`, `not json`}
				t.Expect(`400 {"error": …} for bodies %q; active set unchanged`, bodies)
				for _, b := range bodies {
					t.expectErrorText("PUT /active/ "+b, t.pkg("PUT", "/active/", []byte(b)), 400, msgActiveBody)
				}
				t.expectList("/active/", active)
				t.Seen("400 with an error object for each")
			}},
		{ID: "pkgpanda.active.put-missing", Section: pkgpandaSpecRef, Group: g,
			Title: "PUT /active/ naming absent ids is 409 {error, missing_packages}", Run: func(t *T) {
				_, active := t.knownState()
				ids := append(append([]string(nil), active...), fixMissingID, fixMissingOther)
				want := []string{fixMissingOther, fixMissingID}
				sort.Strings(want)
				body, _ := json.Marshal(ids)
				t.Expect(`409 {"error": …, "missing_packages": %q}; active set unchanged`, want)
				obj := t.expectErrorText("PUT /active/ "+string(body), t.pkg("PUT", "/active/", body), 409, msgNotAllPresent)
				var missing []string
				if err := json.Unmarshal(obj["missing_packages"], &missing); err != nil || strings.Join(missing, ",") != strings.Join(want, ",") {
					t.Fatalf("missing_packages %s", obj["missing_packages"])
				}
				t.expectList("/active/", active)
				t.Seen("missing_packages %q", missing)
			}},
		{ID: "pkgpanda.active.put-refused", Section: pkgpandaSpecRef, Group: g,
			Title: "PUT /active/ the CLI refuses (two versions of one name) is 409 {error}", Run: func(t *T) {
				repo, active := t.knownState()
				byName := map[string]string{}
				var pair []string
				for _, id := range repo {
					n, _, _ := strings.Cut(id, "--")
					if other, ok := byName[n]; ok && pair == nil {
						pair = []string{other, id}
					}
					byName[n] = id
				}
				if pair == nil {
					t.Skipf("no two versions of one package in the repository")
				}
				body, _ := json.Marshal(pair)
				t.Expect(`409 {"error": …} for PUT %s; active set unchanged`, body)
				t.expectError("PUT /active/ "+string(body), t.pkg("PUT", "/active/", body), 409)
				t.expectList("/active/", active)
				t.Seen("409 with an error object")
			}},
		{ID: "pkgpanda.http.trailing-slash", Section: pkgpandaSpecRef, Group: g,
			Title: "/repository and /active without the slash are 301 to the slash form for every method; PUT /active is not carried out", Run: func(t *T) {
				_, active := t.knownState()
				o := t.Options()
				t.Expect("301 with a Location that resolves to /%s/<route>/, for GET, POST, PUT, DELETE; then GET /active/ lists %q", o.PkgpandaID, active)
				body, _ := json.Marshal([]string{fixMesosNew, fixConfigJust})
				for _, route := range []string{"repository", "active"} {
					base, _ := url.Parse("http://" + o.Target + "/" + o.PkgpandaID + "/" + route)
					for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
						r := t.roundTrip(httpRequest(m, base.Path, o.Target, body, "Content-Type: application/json"))
						loc, _ := r.Headers.get("Location")
						ref, err := url.Parse(loc)
						if r.Code != 301 || err != nil || base.ResolveReference(ref).Path != base.Path+"/" {
							t.Fatalf("%s %s: %s Location %q", m, base.Path, r.summary(), loc)
						}
					}
				}
				t.expectList("/active/", active)
				t.Seen("301 to the slash form for each; active set unchanged")
			}},
		{ID: "pkgpanda.http.slash-in-id", Section: pkgpandaSpecRef, Group: g,
			Title: "ids never contain '/': /repository/<id>/, /repository/a/b, /active/<id>/ are 404 for every method", Run: func(t *T) {
				paths := []string{"/repository/" + fixMesosOld + "/", "/repository/a/b", "/active/" + fixMesosOld + "/"}
				t.Expect("404 for GET, POST, PUT, DELETE on each of %q", paths)
				for _, path := range paths {
					for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
						if r := t.pkg(m, path, []byte(`{"repository_url": "file:///conformance-nonexistent/"}`)); r.Code != 404 {
							t.Fatalf("%s %s: %s", m, path, r.summary())
						}
					}
				}
				t.Seen("404 for each")
			}},
		{ID: "pkgpanda.http.allow", Section: pkgpandaSpecRef, Group: g,
			Title: "a method a path lacks is 405 with Allow (HEAD and OPTIONS included); OPTIONS is 200, empty, with the same Allow", Run: func(t *T) {
				cases := []struct {
					path, wrong string
					allow       []string
				}{
					{"/repository/", "POST", []string{"GET", "HEAD", "OPTIONS"}},
					{"/repository/" + fixMesosOld, "PUT", []string{"DELETE", "GET", "HEAD", "OPTIONS", "POST"}},
					{"/active/", "DELETE", []string{"GET", "HEAD", "OPTIONS", "PUT"}},
					{"/active/" + fixMesosOld, "PUT", []string{"GET", "HEAD", "OPTIONS"}},
				}
				t.Expect("405 and OPTIONS 200 with Allow listing exactly the path's methods plus HEAD and OPTIONS")
				allowOf := func(r *response) string {
					v, _ := r.Headers.get("Allow")
					var ms []string
					for _, m := range strings.Split(v, ",") {
						ms = append(ms, strings.TrimSpace(m))
					}
					sort.Strings(ms)
					return strings.Join(ms, ",")
				}
				for _, c := range cases {
					want := strings.Join(c.allow, ",")
					if r := t.pkg(c.wrong, c.path, nil); r.Code != 405 || allowOf(r) != want {
						t.Fatalf("%s %s: %s Allow %s, want 405 Allow %s", c.wrong, c.path, r.summary(), allowOf(r), want)
					}
					if r := t.pkg("OPTIONS", c.path, nil); r.Code != 200 || len(r.Body) != 0 || allowOf(r) != want {
						t.Fatalf("OPTIONS %s: %s Allow %s, want 200 empty Allow %s", c.path, r.summary(), allowOf(r), want)
					}
				}
				t.Seen("405 and OPTIONS with the right Allow for each")
			}},
		{ID: "pkgpanda.http.content-type", Section: pkgpandaSpecRef, Group: g,
			Title: "a JSON body sent with a non-JSON Content-Type counts as no body: 400, nothing done", Run: func(t *T) {
				repo, active := t.knownState()
				o := t.Options()
				body, _ := json.Marshal([]string{fixMesosNew, fixConfigJust})
				t.Expect("PUT /active/ as text/plain: 400 %q; POST /repository/%s as text/plain: 400 %q; nothing changed", msgActiveBody, fixMissingID, msgFetchBody)
				r := t.roundTrip(httpRequest("PUT", "/"+o.PkgpandaID+"/active/", o.Target, body, "Content-Type: text/plain"))
				t.expectErrorText("PUT /active/ as text/plain", r, 400, msgActiveBody)
				r = t.roundTrip(httpRequest("POST", "/"+o.PkgpandaID+"/repository/"+fixMissingID, o.Target,
					[]byte(`{"repository_url": "file:///conformance-nonexistent/"}`), "Content-Type: text/plain"))
				t.expectErrorText("POST /repository/ as text/plain", r, 400, msgFetchBody)
				t.expectList("/active/", active)
				t.expectList("/repository/", repo)
				t.Seen("400 with DC/OS's texts; nothing changed")
			}},
		{ID: "pkgpanda.active.put-invalid-elements", Section: pkgpandaSpecRef, Group: g,
			Title: "PUT /active/ with invalid ids or numbers is 409 with them as missing_packages, sorted, as sent", Run: func(t *T) {
				_, active := t.knownState()
				cases := []struct{ body, missing string }{
					{`["a--b--c","invalid-package","a--b--c"]`, `["a--b--c","invalid-package"]`},
					{`[2, 1]`, `[1,2]`},
				}
				t.Expect("409 %q with missing_packages as sent", msgNotAllPresent)
				for _, c := range cases {
					obj := t.expectErrorText("PUT /active/ "+c.body, t.pkg("PUT", "/active/", []byte(c.body)), 409, msgNotAllPresent)
					var got, want any
					_ = json.Unmarshal(obj["missing_packages"], &got)
					_ = json.Unmarshal([]byte(c.missing), &want)
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("PUT /active/ %s: missing_packages %s, want %s", c.body, obj["missing_packages"], c.missing)
					}
				}
				t.expectList("/active/", active)
				t.Seen("409 with missing_packages as sent")
			}},
		{ID: "pkgpanda.message.roundtrip", Section: "§3.1, pkgpanda-cli §6", Group: g,
			Title: "a message to the pkgpanda process is answered by a message (hook)", Run: func(t *T) {
				rt := t.Options().PkgpandaRoundTrip
				if rt == nil {
					// HOOK: the pkgpanda message protocol (PkgpandaCall /
					// PkgpandaResponse) is defined by processes/pkgpanda; its test
					// fills Options.PkgpandaRoundTrip.
					t.Skipf("no Options.PkgpandaRoundTrip hook set")
				}
				o := t.Options()
				p := t.peer()
				t.Expect("202, then %s", rt.ReplyName)
				mark := p.mark()
				r := t.roundTrip(messageRequest(o.Target, "/"+o.PkgpandaID+"/"+rt.Name, p.UPID(), rt.Body))
				t.expectAccepted(r)
				in, err := p.wait(t.Context(), mark, func(in Inbound) bool { return in.Req.Target == "/"+PeerID+"/"+rt.ReplyName })
				if err != nil {
					t.Fatalf("%s; %v", r.summary(), err)
				}
				if rt.Check != nil {
					if err := rt.Check(in.Req.Body); err != nil {
						t.Fatalf("reply body: %v", err)
					}
				}
				t.Seen("reply of %d bytes", len(in.Req.Body))
			}},

		{ID: "pkgpanda.message.client", Section: "§3.1, pkgpanda-cli §6", Group: g,
			Title: "a typed client's LIST over messages matches GET /repository/ (hook)", Run: func(t *T) {
				list := t.Options().PkgpandaClientList
				if list == nil {
					// HOOK: the client lives beside the pkgpanda process;
					// its users fill Options.PkgpandaClientList.
					t.Skipf("no Options.PkgpandaClientList hook set")
				}
				o := t.Options()
				want := t.list("/repository/")
				t.Expect("LIST answered with %q", want)
				got, err := list(t.Context(), o.PkgpandaID+"@"+o.Target)
				if err != nil {
					t.Fatalf("LIST through the client: %v", err)
				}
				if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
					t.Fatalf("LIST through the client = %q", got)
				}
				t.Seen("%d package ids", len(got))
			}},

		// Mutating chain: each step starts from the state the previous one
		// left and the last restores the fixture's state.
		{ID: "pkgpanda.active.put", Section: pkgpandaSpecRef, Group: g,
			Mutates: "active set becomes " + fixMesosNew + " + " + fixConfigJust,
			Title:   "PUT /active/ replaces the active set (204)", Run: func(t *T) {
				t.fixture()
				t.Expect("204 empty, then GET /active/ lists exactly the new set")
				activate(t, fixMesosNew, fixConfigJust)
				t.Seen("active set replaced")
			}},
		{ID: "pkgpanda.active.put-again", Section: pkgpandaSpecRef, Group: g, After: "pkgpanda.active.put",
			Mutates: "active set becomes the fixture's with " + fixMesosOld + " replaced by " + fixMesosNew,
			Title:   "PUT /active/ again (leaves " + fixMesosOld + " inactive)", Run: func(t *T) {
				want := replaceName(t.fixture().active, fixMesosNew)
				t.Expect("204 empty, then GET /active/ lists %q", want)
				activate(t, want...)
				t.Seen("active set replaced")
			}},
		{ID: "pkgpanda.repository.delete", Section: pkgpandaSpecRef, Group: g, After: "pkgpanda.active.put-again",
			Mutates: "removes " + fixMesosOld + " from the repository",
			Title:   "DELETE /repository/<inactive id> is 204 and the package is gone", Run: func(t *T) {
				want := without(t.fixture().repo, fixMesosOld)
				t.Expect("204 empty, then GET /repository/ lists %q and GET /repository/%s is 404", want, fixMesosOld)
				t.expectNoContent("DELETE /repository/"+fixMesosOld, t.pkg("DELETE", "/repository/"+fixMesosOld, nil))
				t.expectList("/repository/", want)
				t.expectError("GET /repository/"+fixMesosOld, t.pkg("GET", "/repository/"+fixMesosOld, nil), 404)
				t.Seen("package removed")
			}},
		{ID: "pkgpanda.repository.fetch", Section: pkgpandaSpecRef, Group: g, After: "pkgpanda.repository.delete",
			Mutates: "fetches " + fixMesosOld + " back from remote_repo",
			Title:   "POST /repository/<id> {repository_url} fetches the package (204)", Run: func(t *T) {
				st := t.fixture()
				url := t.remoteRepoURL()
				body, _ := json.Marshal(map[string]string{"repository_url": url})
				t.Expect("204 empty, then GET /repository/ lists %q and GET /repository/%s is 200", st.repo, fixMesosOld)
				t.expectNoContent("POST /repository/"+fixMesosOld+" "+string(body), t.pkg("POST", "/repository/"+fixMesosOld, body))
				t.expectList("/repository/", st.repo)
				t.expectPackage("/repository/"+fixMesosOld, fixMesosOld)
				t.Seen("package fetched")
			}},
		{ID: "pkgpanda.active.restore", Section: pkgpandaSpecRef, Group: g, After: "pkgpanda.active.put",
			Mutates: "restores the fixture's active set",
			Title:   "PUT /active/ with the fixture's set restores the starting state", Run: func(t *T) {
				st := t.fixture()
				t.Expect("204, then GET /active/ lists %q and GET /repository/ lists %q", st.active, st.repo)
				activate(t, st.active...)
				t.expectList("/repository/", st.repo)
				t.Seen("fixture state restored")
			}},
	}
}
