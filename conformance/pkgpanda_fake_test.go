package conformance

import (
	"context"
	"encoding/json"
	"github.com/procpanda/procpanda/internal/testfixture"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
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
	if rest == "repository" || rest == "active" {
		w.Header().Set("Location", rest+"/")
		reply(301, nil)
		return
	}
	kind, id, _ := strings.Cut(rest, "/")
	if strings.Contains(id, "/") {
		fail(404, "not found")
		return
	}
	allow := map[bool]map[string]string{
		true:  {"repository": "HEAD, OPTIONS, GET", "active": "HEAD, OPTIONS, GET, PUT"},
		false: {"repository": "HEAD, OPTIONS, GET, POST, DELETE", "active": "HEAD, OPTIONS, GET"},
	}[id == ""][kind]
	if allow == "" {
		fail(404, "no route")
		return
	}
	if r.Method == "OPTIONS" {
		w.Header().Set("Allow", allow)
		reply(200, nil)
		return
	}
	if !strings.Contains(allow, r.Method) {
		w.Header().Set("Allow", allow)
		fail(405, "method not allowed")
		return
	}
	isJSON := r.Header.Get("Content-Type") == "application/json"
	switch {
	case kind == "repository" && id == "" && r.Method == "GET":
		reply(200, sorted(f.repo))
	case kind == "repository" && r.Method == "GET":
		switch {
		case !validPkgID(id):
			fail(404, msgInvalidID(id))
		case !f.repo[id]:
			fail(404, msgNotFound(id))
		default:
			reply(200, pkg(id))
		}
	case kind == "repository" && r.Method == "POST":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); !isJSON || err != nil || body["repository_url"] == nil {
			fail(400, msgFetchBody)
			return
		}
		if !validPkgID(id) {
			fail(400, msgInvalidID(id))
			return
		}
		if body["repository_url"] != f.remote || id != fixMesosOld {
			fail(500, msgUnexpected)
			return
		}
		f.repo[id] = true
		reply(204, nil)
	case kind == "repository" && r.Method == "DELETE":
		switch {
		case f.active[id]:
			fail(409, msgIsActive(id))
		case !validPkgID(id):
			fail(404, msgInvalidID(id))
		case !f.repo[id]:
			fail(404, msgNotFound(id))
		default:
			delete(f.repo, id)
			reply(204, nil)
		}
	case kind == "active" && id == "" && r.Method == "GET":
		reply(200, sorted(f.active))
	case kind == "active" && r.Method == "GET":
		switch {
		case !validPkgID(id):
			fail(404, msgInvalidID(id))
		case !f.repo[id]:
			fail(404, msgNotFound(id))
		case !f.active[id]:
			fail(404, msgNotActive(id))
		default:
			reply(200, pkg(id))
		}
	case kind == "active" && id == "" && r.Method == "PUT":
		var elems []any
		if err := json.NewDecoder(r.Body).Decode(&elems); !isJSON || err != nil || elems == nil {
			fail(400, msgActiveBody)
			return
		}
		var ids []string
		var missingNums []float64
		for _, e := range elems {
			switch v := e.(type) {
			case string:
				ids = append(ids, v)
			case float64:
				missingNums = append(missingNums, v)
			default:
				fail(400, msgActiveBody)
				return
			}
		}
		if len(missingNums) > 0 {
			sort.Float64s(missingNums)
			reply(409, map[string]any{"error": msgNotAllPresent, "missing_packages": missingNums})
			return
		}
		missing := []string{}
		names := map[string]bool{}
		dup := false
		for _, i := range ids {
			if !f.repo[i] && !slices.Contains(missing, i) {
				missing = append(missing, i)
			}
			n, _, _ := strings.Cut(i, "--")
			dup = dup || names[n]
			names[n] = true
		}
		sort.Strings(missing)
		switch {
		case len(missing) > 0:
			reply(409, map[string]any{"error": msgNotAllPresent, "missing_packages": missing})
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
