package conformance

import (
	"context"
	"encoding/json"
	"github.com/procpanda/procpanda/internal/testfixture"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePkgpanda serves the Pkgpanda HTTP API over in-memory state seeded from
// the fixture, so the pkgpanda section's logic (including the mutating
// chain) can be tested before the real process exists.
type fakePkgpanda struct {
	mu     sync.Mutex
	repo   map[string]bool
	active map[string]bool
	remote string // repository_url holding fixMesosOld
}

func (f *fakePkgpanda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reply := func(code int, v any) {
		if v == nil {
			w.WriteHeader(code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(code int, msg string) { reply(code, map[string]string{"error": msg}) }
	sorted := func(m map[string]bool) []string {
		out := []string{}
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	pkg := func(id string) map[string]string {
		n, v, _ := strings.Cut(id, "--")
		return map[string]string{"id": id, "name": n, "version": v}
	}
	rest := strings.TrimPrefix(r.URL.Path, "/pkgpanda/")
	kind, id, _ := strings.Cut(rest, "/")
	switch {
	case kind == "repository" && id == "" && r.Method == "GET":
		reply(200, sorted(f.repo))
	case kind == "repository" && r.Method == "GET":
		if !validPkgID(id) || !f.repo[id] {
			fail(404, "no such package")
			return
		}
		reply(200, pkg(id))
	case kind == "repository" && r.Method == "POST":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["repository_url"] == nil || !validPkgID(id) {
			fail(400, "bad request")
			return
		}
		if body["repository_url"] != f.remote || id != fixMesosOld {
			fail(500, "fetch failed")
			return
		}
		f.repo[id] = true
		reply(204, nil)
	case kind == "repository" && r.Method == "DELETE":
		switch {
		case !validPkgID(id) || !f.repo[id]:
			fail(404, "no such package")
		case f.active[id]:
			fail(409, "Refusing to remove active package "+id)
		default:
			delete(f.repo, id)
			reply(204, nil)
		}
	case kind == "active" && id == "" && r.Method == "GET":
		reply(200, sorted(f.active))
	case kind == "active" && r.Method == "GET":
		if !f.active[id] {
			fail(404, "not active")
			return
		}
		reply(200, pkg(id))
	case kind == "active" && id == "" && r.Method == "PUT":
		var ids []string
		if err := json.NewDecoder(r.Body).Decode(&ids); err != nil || ids == nil {
			fail(400, "body must be a JSON array")
			return
		}
		missing := []string{}
		names := map[string]bool{}
		dup := false
		for _, i := range ids {
			if !f.repo[i] {
				missing = append(missing, i)
			}
			n, _, _ := strings.Cut(i, "--")
			dup = dup || names[n]
			names[n] = true
		}
		sort.Strings(missing)
		switch {
		case len(missing) > 0:
			reply(409, map[string]any{"error": "missing packages", "missing_packages": missing})
		case dup:
			fail(409, "Validation Error: repeated name")
		default:
			f.active = map[string]bool{}
			for _, i := range ids {
				f.active[i] = true
			}
			reply(204, nil)
		}
	default:
		fail(404, "no route")
	}
}

func TestPkgpandaSectionAgainstFake(t *testing.T) {
	dir, err := testfixture.Find()
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	st, err := readFixture(dir)
	if err != nil {
		t.Skipf("fixture not readable: %v", err)
	}
	f := &fakePkgpanda{repo: map[string]bool{}, active: map[string]bool{}, remote: "file://" + filepath.Join(dir, "remote_repo") + "/"}
	for _, id := range st.repo {
		f.repo[id] = true
	}
	for _, id := range st.active {
		f.active[id] = true
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	for _, fixture := range []string{dir, ""} {
		rep, err := Run(context.Background(), Options{
			Target: strings.TrimPrefix(srv.URL, "http://"), Process: "pkgpanda", Pkgpanda: true, Fixture: fixture,
			Timeout: 5 * time.Second, Run: regexp.MustCompile(`^pkgpanda\.`),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			okSkip := r.ID == "pkgpanda.message.roundtrip" || r.ID == "pkgpanda.message.client" || fixture == "" && (r.Status == Skip && strings.Contains(r.Seen, "--fixture") || strings.HasPrefix(r.Seen, "needs "))
			if r.Status == Fail || r.Status == Skip && !okSkip {
				t.Errorf("fixture %q: %s", fixture, r.Line())
			}
		}
		if fixture != "" && rep.Count(Pass) != len(pkgpandaCases())-2 {
			t.Errorf("%d passed, want all but the two message hooks", rep.Count(Pass))
		}
	}
	if got := strings.Join(keys(f.active), ","); got != strings.Join(st.active, ",") {
		t.Errorf("active set not restored: %s", got)
	}
	if got := strings.Join(keys(f.repo), ","); got != strings.Join(st.repo, ",") {
		t.Errorf("repository not restored: %s", got)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
