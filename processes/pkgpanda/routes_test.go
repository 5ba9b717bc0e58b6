package pkgpanda

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadRoutes(t *testing.T) {
	e := newEnv(t, envOpt{})
	repo, active := fixtureIDs(t, e.fixture)
	if len(repo) < 2 || len(active) < 1 {
		t.Fatalf("fixture has too few packages: %v %v", repo, active)
	}
	inactive := ""
	for _, id := range repo {
		if !slices.Contains(active, id) {
			inactive = id
			break
		}
	}
	pkg := func(id string) string {
		name, version, _ := strings.Cut(id, "--")
		b, _ := json.Marshal(map[string]string{"id": id, "name": name, "version": version})
		return string(b)
	}

	expectJSON(t, "GET /repository/", e.do("GET", "/repository/", nil), 200, jsonList(repo))
	expectJSON(t, "GET /repository", e.do("GET", "/repository", nil), 200, jsonList(repo))
	expectJSON(t, "GET /list.json", e.do("GET", "/list.json", nil), 200, jsonList(repo))
	expectJSON(t, "GET /active/", e.do("GET", "/active/", nil), 200, jsonList(active))
	expectJSON(t, "GET /active.json", e.do("GET", "/active.json", nil), 200, jsonList(active))
	for _, id := range repo {
		expectJSON(t, "GET /repository/"+id, e.do("GET", "/repository/"+id, nil), 200, pkg(id))
	}
	expectJSON(t, "GET /active/"+active[0], e.do("GET", "/active/"+active[0], nil), 200, pkg(active[0]))
	expectStatus(t, "GET /active/<inactive>", e.do("GET", "/active/"+inactive, nil), 404)
	expectStatus(t, "GET /active/<absent>", e.do("GET", "/active/absent--1", nil), 404)
	expectStatus(t, "GET /active/<invalid>", e.do("GET", "/active/invalid-package", nil), 404)
	expectStatus(t, "GET /repository/<absent>", e.do("GET", "/repository/mesos--9.9.9", nil), 404)
	expectStatus(t, "GET /repository/<invalid>", e.do("GET", "/repository/invalid-package", nil), 404)
	expectJSON(t, "GET /check?list=true (no checks)", e.do("GET", "/check?list=true", nil), 200, `[]`)

	// Wrong methods: 405 with Allow.
	for _, c := range []struct{ method, path, allow string }{
		{"POST", "/repository/", "HEAD, OPTIONS, GET"},
		{"PATCH", "/repository/mesos--0.22.0", "HEAD, OPTIONS, GET, POST, DELETE"},
		{"DELETE", "/active/", "HEAD, OPTIONS, GET, PUT"},
		{"PUT", "/active/mesos--0.22.0", "HEAD, OPTIONS, GET"},
		{"GET", "/add", "POST"},
		{"GET", "/remove", "POST"},
		{"GET", "/activate", "POST"},
		{"GET", "/swap", "POST"},
		{"GET", "/fetch", "POST"},
		{"POST", "/check", "GET, HEAD"},
		{"POST", "/list.json", "GET, HEAD"},
		{"DELETE", "/active.json", "GET, HEAD"},
		{"GET", "/api/v1", "POST"},
	} {
		r := e.do(c.method, c.path, nil)
		expectStatus(t, c.method+" "+c.path, r, 405)
		if got := r.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}

	// GET routes answer HEAD like GET, without a body.
	for _, path := range []string{"/repository/", "/active/", "/list.json", "/active.json", "/check?list=true", "/repository/mesos--0.22.0"} {
		r := e.do("HEAD", path, nil)
		expectStatus(t, "HEAD "+path, r, 200)
		if len(r.body) != 0 {
			t.Errorf("HEAD %s: body %q", path, r.body)
		}
	}

	// /help lists every route.
	resp, err := http.Get("http://" + e.rt.Addr().HostPort() + "/help/pkgpanda")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/help/pkgpanda: %d", resp.StatusCode)
	}
	for _, route := range append(RouteNames(), routeAPIv1) {
		r, err := http.Get("http://" + e.rt.Addr().HostPort() + "/help/pkgpanda/" + route)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Errorf("/help/pkgpanda/%s: %d", route, r.StatusCode)
		}
	}
}

func TestUnloadablePackageIs500(t *testing.T) {
	e := newEnv(t, envOpt{})
	repo, _ := fixtureIDs(t, e.fixture)
	id := repo[len(repo)-1]
	if err := os.WriteFile(filepath.Join(e.dir, "packages", id, "pkginfo.json"), []byte("[1,2]"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, "GET /repository/<broken>", e.do("GET", "/repository/"+id, nil), 500)
}

func TestRepositoryMutations(t *testing.T) {
	e := newEnv(t, envOpt{})
	repo, active := fixtureIDs(t, e.fixture)
	remote := "file://" + filepath.Join(e.dir, "remote_repo") + "/"
	const fetchable = "mesos--0.22.0" // the one package in remote_repo (fixture README)
	if !slices.Contains(active, fetchable) {
		t.Fatalf("fixture: %s should start active", fetchable)
	}

	expectStatus(t, "DELETE active", e.do("DELETE", "/repository/"+fetchable, nil), 409)
	expectStatus(t, "DELETE absent", e.do("DELETE", "/repository/absent--1", nil), 404)
	expectStatus(t, "DELETE invalid", e.do("DELETE", "/repository/invalid-package", nil), 404)
	expectJSON(t, "still listed", e.do("GET", "/repository/", nil), 200, jsonList(repo))

	// PUT /active/ errors.
	expectStatus(t, "PUT not array", e.doJSON("PUT", "/active/", []byte(`{"a":1}`)), 400)
	expectStatus(t, "PUT bad JSON", e.doJSON("PUT", "/active/", []byte(`[`)), 400)
	r := e.doJSON("PUT", "/active/", []byte(`["mesos--0.23.0","zzz--1","aaa--2"]`))
	expectStatus(t, "PUT missing", r, 409)
	var missing struct {
		Error   string   `json:"error"`
		Missing []string `json:"missing_packages"`
	}
	if err := json.Unmarshal(r.body, &missing); err != nil || !slices.Equal(missing.Missing, []string{"aaa--2", "zzz--1"}) {
		t.Fatalf("PUT missing: body %s, want missing_packages [aaa--2 zzz--1]", r.body)
	}
	expectStatus(t, "PUT two versions of one name", e.doJSON("PUT", "/active/", []byte(`["mesos--0.22.0","mesos--0.23.0"]`)), 409)
	expectJSON(t, "active unchanged", e.do("GET", "/active/", nil), 200, jsonList(active))

	// Activate another set, delete the now inactive package, fetch it back.
	next := []string{}
	for _, id := range active {
		if id != fetchable {
			next = append(next, id)
		}
	}
	next = append(next, "mesos--0.23.0")
	slices.Sort(next)
	body, _ := json.Marshal(next)
	expectStatus(t, "PUT /active/", e.doJSON("PUT", "/active/", body), 204)
	expectJSON(t, "active after PUT", e.do("GET", "/active/", nil), 200, jsonList(next))

	r = e.do("DELETE", "/repository/"+fetchable, nil)
	expectStatus(t, "DELETE inactive", r, 204)
	if len(r.body) != 0 {
		t.Fatalf("204 with a body: %q", r.body)
	}
	expectStatus(t, "GET deleted", e.do("GET", "/repository/"+fetchable, nil), 404)

	expectStatus(t, "POST no body", e.doJSON("POST", "/repository/"+fetchable, nil), 400)
	expectStatus(t, "POST no url", e.doJSON("POST", "/repository/"+fetchable, []byte(`{"x": "y"}`)), 400)
	expectStatus(t, "POST array", e.doJSON("POST", "/repository/"+fetchable, []byte(`["x"]`)), 400)
	expectStatus(t, "POST invalid id", e.doJSON("POST", "/repository/invalid-package", []byte(`{"repository_url":"`+remote+`"}`)), 400)
	expectStatus(t, "POST fetch fails", e.doJSON("POST", "/repository/mesos--7.7.7", []byte(`{"repository_url":"`+remote+`"}`)), 500)
	expectStatus(t, "POST fetch", e.doJSON("POST", "/repository/"+fetchable, []byte(`{"repository_url":"`+remote+`"}`)), 204)
	expectStatus(t, "GET fetched", e.do("GET", "/repository/"+fetchable, nil), 200)
	expectJSON(t, "repository restored", e.do("GET", "/repository/", nil), 200, jsonList(repo))
}

func TestCLIRoutes(t *testing.T) {
	e := newEnv(t, envOpt{})
	repo, active := fixtureIDs(t, e.fixture)
	remote := "file://" + filepath.Join(e.dir, "remote_repo") + "/"

	// swap
	expectStatus(t, "swap no name active", e.do("POST", "/swap?id=nothere--1", nil), 409)
	expectStatus(t, "swap two ids", e.do("POST", "/swap?id=mesos--0.23.0&id=mesos--0.22.0", nil), 400)
	expectStatus(t, "swap", e.do("POST", "/swap?id=mesos--0.23.0", nil), 204)
	swapped := slices.Clone(active)
	swapped[slices.Index(swapped, "mesos--0.22.0")] = "mesos--0.23.0"
	slices.Sort(swapped)
	expectJSON(t, "active after swap", e.do("GET", "/active.json", nil), 200, jsonList(swapped))

	// remove
	expectStatus(t, "remove active", e.do("POST", "/remove?id=mesos--0.23.0", nil), 409)
	expectStatus(t, "remove no id", e.do("POST", "/remove", nil), 400)
	expectJSON(t, "remove", e.do("POST", "/remove?id=mesos--0.22.0&id=absent--1", nil), 200, `{"removed":["mesos--0.22.0"]}`)

	// fetch (streamed)
	r := e.do("POST", "/fetch?repository_url="+url.QueryEscape(remote)+"&id=mesos--0.22.0", nil)
	expectStatus(t, "fetch", r, 200)
	if !strings.Contains(string(r.body), "Fetched: mesos--0.22.0") || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("fetch: body %q, headers %v", r.body, r.header)
	}
	r = e.do("POST", "/fetch?repository_url="+url.QueryEscape(remote)+"&id=mesos--8.8.8", nil)
	if r.status != 200 || !strings.Contains(string(r.body), "pkgpanda failed (500): Unable to fetch package mesos--8.8.8") {
		t.Fatalf("failed fetch after output began: %s", r)
	}
	expectStatus(t, "fetch without url", e.do("POST", "/fetch?id=mesos--0.22.0", nil), 400)
	expectJSON(t, "repository after fetch", e.do("GET", "/list.json", nil), 200, jsonList(repo))

	// activate
	expectStatus(t, "activate nothing", e.do("POST", "/activate", nil), 400)
	expectStatus(t, "activate conflict", e.do("POST", "/activate?id=mesos--0.22.0&id=mesos--0.23.0", nil), 409)
	expectStatus(t, "activate", e.do("POST", "/activate?"+url.Values{"id": active}.Encode(), nil), 204)
	expectJSON(t, "active after activate", e.do("GET", "/active.json", nil), 200, jsonList(active))

	// add
	tb := tarball(t)
	expectStatus(t, "add without id", e.do("POST", "/add", tb), 400)
	expectStatus(t, "add empty", e.do("POST", "/add?id=newpkg--1.0", nil), 400)
	expectStatus(t, "add ids differ", e.do("POST", "/add?id=newpkg--1.0", tb, packageIDHeader, "other--1"), 400)
	expectJSON(t, "add", e.do("POST", "/add?id=newpkg--1.0", tb), 200,
		`{"id":"newpkg--1.0","name":"newpkg","version":"1.0","already_added":false}`)
	expectJSON(t, "add again (header)", e.do("POST", "/add", tb, packageIDHeader, "newpkg--1.0"), 200,
		`{"id":"newpkg--1.0","name":"newpkg","version":"1.0","already_added":true}`)
	r = e.do("POST", "/add?id=junk--1", []byte("not a tarball"))
	if r.status < 500 {
		t.Fatalf("add junk: %s, want a 5xx", r)
	}
	expectStatus(t, "add junk", r, r.status)
	expectJSON(t, "repository after add", e.do("GET", "/repository/", nil), 200, jsonList(append(slices.Clone(repo), "newpkg--1.0")))
	ents, err := os.ReadDir(e.p.cfg.tempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), "pkgpanda-add-") {
			t.Errorf("add left its temporary directory %s behind", ent.Name())
		}
	}
}

func TestCheckRoute(t *testing.T) {
	e := newEnv(t, envOpt{})
	_, active := fixtureIDs(t, e.fixture)
	dir := filepath.Join(e.dir, "packages", active[0], "check")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-ok"), []byte("#!/bin/sh\necho check-ok-output\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	expectJSON(t, "check --list", e.do("GET", "/check?list=true", nil), 200, `[{"id":"`+active[0]+`","checks":["10-ok"]}]`)
	r := e.do("GET", "/check", nil)
	if r.status != 200 || !strings.Contains(string(r.body), "check-ok-output") || strings.Contains(string(r.body), "pkgpanda failed") {
		t.Fatalf("check: %s", r)
	}
	if err := os.WriteFile(filepath.Join(dir, "20-fail"), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = e.do("GET", "/check", nil)
	if r.status != 200 || !strings.Contains(string(r.body), "Check failed: 20-fail") || !strings.Contains(string(r.body), "pkgpanda failed (500)") {
		t.Fatalf("failing check: %s", r)
	}
	expectStatus(t, "check bad list", e.do("GET", "/check?list=maybe", nil), 400)
}

// TestAddLargeBody sends tarballs larger than the runtime buffers in memory
// (they arrive as a body stream) and one over the size cap.
func TestAddLargeBody(t *testing.T) {
	big := tarballWith(t, 3<<20)
	e := newEnv(t, envOpt{maxAdd: int64(len(big)) + 1024})
	expectJSON(t, "add streamed body", e.do("POST", "/add?id=bigpkg--1", big), 200,
		`{"id":"bigpkg--1","name":"bigpkg","version":"1","already_added":false}`)
	if _, err := os.Stat(filepath.Join(e.dir, "packages", "bigpkg--1", "blob")); err != nil {
		t.Fatalf("the added package lacks its content: %v", err)
	}
	bigger := tarballWith(t, 4<<20)
	expectStatus(t, "add over the cap", e.do("POST", "/add?id=biggerpkg--1", bigger), 413)
	if n := e.runsStarted("add"); n != 1 {
		t.Fatalf("%d add runs, want 1 (the oversized one must not run)", n)
	}
	// A large JSON body on an API route is refused, not buffered.
	huge := []byte(`["` + strings.Repeat("a", 2<<20) + `--1"]`)
	expectStatus(t, "PUT /active/ huge", e.doJSON("PUT", "/active/", huge), 413)
}
