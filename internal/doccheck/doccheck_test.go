package doccheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/procpanda/procpanda/conformance"
)

// repoRoot is the repository's top directory, seen from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatalf("finding the repository root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

// loadDocs reads docs/*.md and returns each document's sections by name
// ("libprocess-wire"), reporting numbering problems as test errors.
func loadDocs(t *testing.T, root string) map[string]map[string]bool {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("reading docs/*.md: %v (found %d)", err, len(paths))
	}
	docs := make(map[string]map[string]bool)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		nums, problems := parseSections(string(b))
		for _, pr := range problems {
			t.Errorf("docs/%s: %s", filepath.Base(p), pr)
		}
		docs[strings.TrimSuffix(filepath.Base(p), ".md")] = nums
	}
	return docs
}

// check returns what is wrong with the citations in j, a text from file
// name. self is the document a run of numbers without a name cites, ""
// when such a run is an error (strict) or is ignored (!strict).
func check(name string, j joined, docs map[string]map[string]bool, self string, strict bool) []string {
	var problems []string
	for _, c := range findCitations(j.text) {
		if c.rfc {
			continue
		}
		doc := c.doc
		if docs[doc] == nil {
			if c.explicit {
				problems = append(problems, name+":"+strconv.Itoa(j.lineOf(c.off))+": cites docs/"+doc+".md, which does not exist")
				continue
			}
			doc = self
		}
		if doc == "" {
			if strict {
				problems = append(problems, name+":"+strconv.Itoa(j.lineOf(c.off))+": cites §"+c.num+" without naming its document (write docs/<document>.md §"+c.num+")")
			}
			continue
		}
		if !docs[doc][c.num] {
			problems = append(problems, name+":"+strconv.Itoa(j.lineOf(c.off))+": cites docs/"+doc+".md §"+c.num+", which has no such section")
		}
	}
	for _, m := range staleRE.FindAllStringIndex(j.text, -1) {
		problems = append(problems, name+":"+strconv.Itoa(j.lineOf(m[0]))+": cites the old protocol notes ("+strings.TrimSpace(j.text[m[0]:m[1]])+"…); cite docs/<document>.md §n instead")
	}
	return problems
}

// sourceFiles lists the repository's files with one of exts, skipping
// hidden directories and testdata.
func sourceFiles(t *testing.T, root string, exts ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		for _, e := range exts {
			if strings.HasSuffix(p, e) {
				out = append(out, p)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return out
}

// goComments returns the comments of a Go file, markers removed.
func goComments(t *testing.T, path string) []segment {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	var segs []segment
	for _, g := range f.Comments {
		for _, c := range g.List {
			text := c.Text
			if strings.HasPrefix(text, "//") {
				text = text[2:]
			} else {
				text = strings.TrimSuffix(strings.TrimPrefix(text, "/*"), "*/")
			}
			segs = append(segs, segment{text: text, line: fset.Position(c.Pos()).Line})
		}
	}
	return segs
}

// TestDocsNumbering checks that every numbered heading of docs/*.md has its
// anchor and a unique number, and that the documents' own references to
// their sections (a bare section number means the same document) exist.
func TestDocsNumbering(t *testing.T) {
	root := repoRoot(t)
	docs := loadDocs(t, root)
	for _, want := range []string{"libprocess-wire", "pkgpanda-cli"} {
		if len(docs[want]) == 0 {
			t.Errorf("docs/%s.md has no numbered sections", want)
		}
	}
	for name := range docs {
		b, err := os.ReadFile(filepath.Join(root, "docs", name+".md"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		segs := make([]segment, len(lines))
		for i, l := range lines {
			segs[i] = segment{text: l, line: i + 1}
		}
		for _, pr := range check("docs/"+name+".md", join(segs), docs, name, true) {
			t.Error(pr)
		}
	}
}

// TestCitationsInCode checks every Go and C++ comment in the repository:
// each section it cites exists in the document it names, and no comment
// cites a section without naming the document.
func TestCitationsInCode(t *testing.T) {
	root := repoRoot(t)
	docs := loadDocs(t, root)
	files := 0
	for _, p := range sourceFiles(t, root, ".go") {
		rel, _ := filepath.Rel(root, p)
		for _, pr := range check(rel, join(goComments(t, p)), docs, "", true) {
			t.Error(pr)
		}
		files++
	}
	for _, p := range sourceFiles(t, root, ".cpp", ".hpp", ".cc", ".h") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		for _, pr := range check(rel, join(cppComments(string(b))), docs, "", true) {
			t.Error(pr)
		}
		files++
	}
	if files < 50 {
		t.Errorf("checked only %d source files under %s: is the walk broken?", files, root)
	}
}

// markdownSelf is the document a bare "§n" cites in a Markdown file
// outside docs/: the conformance README's case table uses the suite's
// convention, where a bare number is a section of the wire document.
var markdownSelf = map[string]string{
	filepath.Join("conformance", "README.md"): "libprocess-wire",
}

// TestCitationsInMarkdown checks the named citations and section links of
// the repository's other Markdown files.
func TestCitationsInMarkdown(t *testing.T) {
	root := repoRoot(t)
	docs := loadDocs(t, root)
	for _, p := range sourceFiles(t, root, ".md") {
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(rel, "docs"+string(filepath.Separator)) {
			continue // TestDocsNumbering
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		segs := make([]segment, len(lines))
		for i, l := range lines {
			segs[i] = segment{text: l, line: i + 1}
		}
		self := markdownSelf[rel]
		for _, pr := range check(rel, join(segs), docs, self, self != "") {
			t.Error(pr)
		}
	}
}

// TestConformanceSections checks the section every conformance case
// reports: a bare "§n.m" is a section of docs/libprocess-wire.md,
// "pkgpanda-cli §n" one of docs/pkgpanda-cli.md.
func TestConformanceSections(t *testing.T) {
	docs := loadDocs(t, repoRoot(t))
	cases := conformance.Cases()
	if len(cases) == 0 {
		t.Fatal("conformance.Cases() is empty")
	}
	for _, c := range cases {
		if len(findCitations(c.Section)) == 0 {
			t.Errorf("case %s: section %q cites nothing", c.ID, c.Section)
		}
		j := join([]segment{{text: c.Section, line: 1}})
		for _, pr := range check("case "+c.ID, j, docs, "libprocess-wire", true) {
			t.Error(pr)
		}
	}
}

func TestFindCitations(t *testing.T) {
	type cite struct {
		Doc      string
		Explicit bool
		Num      string
		RFC      bool
	}
	for _, tc := range []struct {
		text string
		want []cite
	}{
		{"(docs/libprocess-wire.md §4.3)", []cite{{"libprocess-wire", true, "4.3", false}}},
		{"(docs/libprocess-wire.md §2.4, §11.2)", []cite{{"libprocess-wire", true, "2.4", false}, {"libprocess-wire", true, "11.2", false}}},
		{"request shapes real peers send (docs/libprocess-wire.md\n §2.5) before", []cite{{"libprocess-wire", true, "2.5", false}}},
		{"docs/pkgpanda-cli.md §2–§5 and §7)", []cite{{"pkgpanda-cli", true, "2", false}, {"pkgpanda-cli", true, "5", false}, {"pkgpanda-cli", true, "7", false}}},
		{"§3.1, pkgpanda-cli §6", []cite{{"", false, "3.1", false}, {"pkgpanda-cli", false, "6", false}}},
		{"pkgpanda-cli §1, §6", []cite{{"pkgpanda-cli", false, "1", false}, {"pkgpanda-cli", false, "6", false}}},
		{"as RFC 9112 §9.6 asks", []cite{{"", false, "9.6", true}}},
		{"see §4.2.", []cite{{"see", false, "4.2", false}}},
		{"[§5.4](docs/pkgpanda-cli.md#s5.4)", []cite{{"", false, "5.4", false}, {"pkgpanda-cli", true, "5.4", false}}},
		{`"§n.m" of docs/libprocess-wire.md`, nil},
		{"/* docs/libprocess-wire.md\n * §3.2 */", []cite{{"libprocess-wire", true, "3.2", false}}},
	} {
		var got []cite
		for _, c := range findCitations(tc.text) {
			if !strings.HasPrefix(tc.text[c.off:], "§"+c.num) && !strings.Contains(tc.text[c.off:], ".md#s"+c.num) {
				t.Errorf("%q: citation of %s at offset %d does not point at it", tc.text, c.num, c.off)
			}
			got = append(got, cite{c.doc, c.explicit, c.num, c.rfc})
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("findCitations(%q) = %+v, want %+v", tc.text, got, tc.want)
		}
	}
}

// TestCheckReportsDrift proves the check fails for each kind of bad
// citation, so a passing TestCitationsInCode means something.
func TestCheckReportsDrift(t *testing.T) {
	docs := map[string]map[string]bool{"libprocess-wire": {"4": true, "4.3": true}}
	for _, tc := range []struct {
		text string
		want string // in the one problem reported; "" for none
	}{
		{"route lookup (docs/libprocess-wire.md §4.3)", ""},
		{"route lookup (docs/libprocess-wire.md §4.9)", "no such section"},
		{"route lookup (docs/libprocess-wire.md §4.3, §9)", "§9, which has no such section"},
		{"route lookup (docs/libprocess-wirе.md §4.3)", "without naming"}, // Cyrillic е: not a name
		{"route lookup (docs/nosuch.md §4.3)", "docs/nosuch.md, which does not exist"},
		{"route lookup (§4.3)", "without naming"},
		{"route lookup (spec 4.3)", "old protocol notes"},
		{"as RFC 9112 §9.6 asks", ""},
	} {
		got := check("x.go", join([]segment{{text: tc.text, line: 7}}), docs, "", true)
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%q: unexpected problems %q", tc.text, got)
		case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want) || !strings.HasPrefix(got[0], "x.go:7: ")):
			t.Errorf("%q: problems %q, want one at x.go:7 containing %q", tc.text, got, tc.want)
		}
	}
}

func TestParseSections(t *testing.T) {
	good := "# T\n\n<a id=\"s1\"></a>\n## 1. One\n\n<a id=\"s1.1\"></a>\n### 1.1 Sub\n\n```\n## 9. in a fence\n```\n"
	nums, problems := parseSections(good)
	if len(problems) != 0 || !reflect.DeepEqual(nums, map[string]bool{"1": true, "1.1": true}) {
		t.Errorf("good document: sections %v, problems %q", nums, problems)
	}
	for _, tc := range []struct{ text, want string }{
		{"## 1. One\n", "has no anchor"},
		{"<a id=\"s2\"></a>\n## 1. One\n", "follows the anchor of 2"},
		{"<a id=\"s1\"></a>\ntext\n## 1. One\n", "not followed by its heading"},
		{"<a id=\"s1.2\"></a>\n### 1.2 Orphan\n", "no parent section 1"},
		{"<a id=\"s1\"></a>\n## 1. A\n<a id=\"s1\"></a>\n## 1. B\n", "numbered twice"},
	} {
		_, problems := parseSections(tc.text)
		if len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), tc.want) {
			t.Errorf("%q: problems %q, want one containing %q", tc.text, problems, tc.want)
		}
	}
}

func TestCppComments(t *testing.T) {
	src := "int a = 1'000; // one (docs/x.md §1)\n" +
		"const char* s = \"// not a comment\";\n" +
		"auto r = R\"json({\"a\": \"/* nor this */\"})json\";\n" +
		"/* block\n   comment */ char c = '\"'; // last\n"
	var got []string
	var lines []int
	for _, s := range cppComments(src) {
		got = append(got, s.text)
		lines = append(lines, s.line)
	}
	want := []string{" one (docs/x.md §1)", " block\n   comment ", " last"}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(lines, []int{1, 4, 5}) {
		t.Errorf("cppComments = %q at lines %v, want %q at [1 4 5]", got, lines, want)
	}
}

var numOnlyRE = regexp.MustCompile(`^` + sectionNum + `$`)

func FuzzFindCitations(f *testing.F) {
	for _, s := range []string{
		"(docs/libprocess-wire.md §4.3)",
		"docs/pkgpanda-cli.md §2–§5 and §7",
		"§3.1, pkgpanda-cli §6",
		"RFC 9112 §9.6",
		"[x](docs/pkgpanda-cli.md#s5.4)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, c := range findCitations(text) {
			if c.off < 0 || c.off >= len(text) || !numOnlyRE.MatchString(c.num) {
				t.Fatalf("%q: bad citation %+v", text, c)
			}
			if !strings.HasPrefix(text[c.off:], "§"+c.num) && !strings.HasPrefix(text[c.off:], "docs/"+c.doc+".md#s"+c.num) && !strings.HasPrefix(text[c.off:], c.doc+".md#s"+c.num) {
				t.Fatalf("%q: citation %+v does not point at its text", text, c)
			}
		}
	})
}

func FuzzCppComments(f *testing.F) {
	for _, s := range []string{
		"// a\nint x; /* b */",
		"char c = '\\''; // c",
		"R\"d(/* x */)d\" // y",
		"/* unterminated",
		"\"unterminated // z\n// w",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		last := 0
		for _, s := range cppComments(src) {
			if s.off < last || s.off+len(s.text) > len(src) || src[s.off:s.off+len(s.text)] != s.text {
				t.Fatalf("%q: segment %+v out of order or not where it says", src, s)
			}
			if want := 1 + strings.Count(src[:s.off], "\n"); s.line != want {
				t.Fatalf("%q: segment %+v on line %d, want %d", src, s, s.line, want)
			}
			last = s.off
		}
	})
}
