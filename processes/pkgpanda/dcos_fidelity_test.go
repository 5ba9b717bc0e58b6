package pkgpanda

import (
	"bytes"
	"encoding/json"
	"github.com/procpanda/procpanda/internal/testlog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestDCOSNoActiveFolder: on an install that was never bootstrapped (no
// <root>/active, no leftovers of an activation), Install.get_active
// raises an InstallError (pkgpanda/__init__.py, get_active), which the
// app's generic handler answers as 500 "An unexpected error has
// occurred." (pkgpanda/http/__init__.py, unexpected_exception_handler).
// The tool's own text is logged, not sent.
func TestDCOSNoActiveFolder(t *testing.T) {
	var logs testlog.Buffer
	e := newEnv(t, envOpt{log: &logs})
	_, active := fixtureIDs(t, e.fixture)
	if err := os.RemoveAll(filepath.Join(e.dir, "install", "active")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/active/"},
		{"GET", "/active/" + active[0]},
		{"DELETE", "/repository/mesos--0.23.0"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			expectDCOS(t, c.method+" "+c.path+" without an active folder", e.do(c.method, c.path, nil), 500, "An unexpected error has occurred.")
		})
	}
	want := "Install directory " + filepath.Join(e.dir, "install") + " has no active folder. Has it been bootstrapped?"
	if !strings.Contains(logs.String(), want) {
		t.Errorf("the tool's text %q is not in the log:\n%s", want, logs.String())
	}
	// The repository is untouched: the refused DELETE removed nothing.
	expectStatus(t, "GET /repository/mesos--0.23.0", e.do("GET", "/repository/mesos--0.23.0", nil), 200)
}

// TestDCOSPkginfoShapes: what Repository.load (pkgpanda/__init__.py)
// makes of a package's pkginfo.json, as GET /repository/<id> and GET
// /active/<id> answer it. Valid JSON that is not an object (null
// included) is a PackageError: 500 "Unable to load package <id>.".
// JSON Python cannot decode (invalid, empty, a UTF-8 BOM, bytes that are
// not UTF-8) is a ValueError that no handler of the route catches: the
// app's generic 500 "An unexpected error has occurred.". Python's
// decoder also takes NaN, Infinity and numbers beyond float64.
func TestDCOSPkginfoShapes(t *testing.T) {
	e := newEnv(t, envOpt{})
	_, active := fixtureIDs(t, e.fixture)
	id := active[0]
	file := filepath.Join(e.dir, "packages", id, "pkginfo.json")
	const unexpected = "An unexpected error has occurred."
	unable := "Unable to load package " + id + "."
	for _, c := range []struct {
		what, content string
		status        int
		text          string
	}{
		{"null", "null", 500, unable},
		{"null with whitespace", " \n null \r\n", 500, unable},
		{"an array", "[1,2]", 500, unable},
		{"a string", `"x"`, 500, unable},
		{"a number", "5", 500, unable},
		{"NaN alone", "NaN", 500, unable},
		{"invalid", "not json", 500, unexpected},
		{"empty", "", 500, unexpected},
		{"truncated", `{"a":`, 500, unexpected},
		{"trailing data", `{} {}`, 500, unexpected},
		{"BOM", "\ufeff{}", 500, unexpected},
		{"not UTF-8", "{\"a\": \"\xff\"}", 500, unexpected},
		{"-NaN", `{"a": -NaN}`, 500, unexpected},
		{"an object", `{}`, 200, ""},
		{"NaN and infinities", `{"a": [NaN, Infinity, -Infinity]}`, 200, ""},
		{"beyond float64", `{"a": 1e400}`, 200, ""},
		{"non-ASCII", `{"a": "é"}`, 200, ""},
	} {
		if err := os.WriteFile(file, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run(c.what, func(t *testing.T) {
			for _, path := range []string{"/repository/" + id, "/active/" + id} {
				r := e.do("GET", path, nil)
				if c.status == 200 {
					expectStatus(t, "GET "+path+" with pkginfo.json "+c.what, r, 200)
					continue
				}
				expectDCOS(t, "GET "+path+" with pkginfo.json "+c.what, r, c.status, c.text)
			}
		})
	}
}

// FuzzPythonJSONObject: the pkginfo.json check never panics, accepts
// every document Go's decoder accepts (UTF-8, no BOM), and calls it an
// object exactly when it is one; it accepts NaN and the infinities only
// where a value may stand.
func FuzzPythonJSONObject(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"a": [NaN, -Infinity]}`, `{"a": "NaN"}`, `-NaN`, "\ufeff{}", `{"a": 1e400}`, `{"a": "\"NaN"}`, `[Infinity1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		object, err := pythonJSONObject(b)
		if !json.Valid(b) || !utf8.Valid(b) || bytes.HasPrefix(b, []byte("\ufeff")) {
			return
		}
		var v any
		if uerr := json.Unmarshal(b, &v); uerr != nil {
			return // valid, but beyond float64
		}
		_, isObject := v.(map[string]any)
		if err != nil || object != isObject {
			t.Fatalf("%q: object %v, err %v; Go decodes %T", b, object, err, v)
		}
	})
}
