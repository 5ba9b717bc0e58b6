package cli

import (
	"errors"
	"reflect"
	"regexp"
	"testing"
)

func TestParseID(t *testing.T) {
	valid := map[string]ID{
		"mesos--0.22.0": {"mesos", "0.22.0"},
		"mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8": {"mesos-config", "ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8"},
		"a--b":           {"a", "b"},
		"@x+_.y-z--1:2@": {"@x+_.y-z", "1:2@"},
		"name.--v":       {"name.", "v"}, // the CLI accepts a trailing '.'
	}
	for s, want := range valid {
		got, err := ParseID(s)
		if err != nil || got != want {
			t.Errorf("ParseID(%q) = %+v, %v; want %+v", s, got, err, want)
		}
		if got.String() != s || ValidID(s) != nil || got.Validate() != nil {
			t.Errorf("round trip of %q failed", s)
		}
	}
	invalid := []string{
		"", "--", "--root=/", "a;b", "a b", "../x", "-x", "-x--1", "mesos--0.22.0--x", "mesos--",
		"--0.22.0", "mesos", "mesos-0.22.0", ".x--1", "a--1-2", "a--1 ", "a--b/c", "a/b--c",
		"a---b", "a----b", "mesos--0.22.0\n", "é--1", "a--b\x00",
	}
	for _, s := range invalid {
		if id, err := ParseID(s); err == nil {
			t.Errorf("ParseID(%q) = %+v, want error", s, id)
		} else {
			var ie *IDError
			if !errors.As(err, &ie) || ie.ID != s {
				t.Errorf("ParseID(%q) error %v is not an *IDError for the input", s, err)
			}
		}
	}
	if (ID{Name: "-x", Version: "1"}).Validate() == nil {
		t.Error("hand-built invalid ID validated")
	}
}

func TestArgv(t *testing.T) {
	tool := Tool{Path: "/usr/bin/pkgpanda", Options: Options{
		Root: "/r/install", Repository: "/r/packages", ConfigDir: "/r/etc", StateDirRoot: "/r/state",
		RootedSystemd: true, NoSystemd: true,
	}}
	g := []string{"--root=/r/install", "--repository=/r/packages", "--config-dir=/r/etc", "--state-dir-root=/r/state", "--rooted-systemd", "--no-systemd"}
	m := ID{"mesos", "0.22.0"}
	c := ID{"mesos-config", "x"}
	must := func(a []string, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	cases := []struct {
		name string
		got  []string
		sub  []string
	}{
		{"list", must(tool.List()), []string{"list"}},
		{"active", must(tool.Active()), []string{"active"}},
		{"add", must(tool.Add("/tmp/up/mesos--0.22.0.tar.xz")), []string{"add", "/tmp/up/mesos--0.22.0.tar.xz"}},
		{"fetch", must(tool.Fetch("file:///x/remote_repo/", m, c)), []string{"fetch", "--repository-url=file:///x/remote_repo/", "mesos--0.22.0", "mesos-config--x"}},
		{"remove", must(tool.Remove(m)), []string{"remove", "mesos--0.22.0"}},
		{"activate", must(tool.Activate(m, c)), []string{"activate", "mesos--0.22.0", "mesos-config--x"}},
		{"swap", must(tool.Swap(m)), []string{"swap", "mesos--0.22.0"}},
		{"check", must(tool.Check(false)), []string{"check"}},
		{"check --list", must(tool.Check(true)), []string{"check", "--list"}},
	}
	for _, c := range cases {
		want := append(append([]string{"/usr/bin/pkgpanda"}, c.sub...), g...)
		if !reflect.DeepEqual(c.got, want) {
			t.Errorf("%s: argv %q, want %q", c.name, c.got, want)
		}
	}
	// Empty options: just the subcommand.
	if a := must(Tool{Path: "p"}.List()); !reflect.DeepEqual(a, []string{"p", "list"}) {
		t.Errorf("default options argv %q", a)
	}
	if a := must(Tool{Path: "p", Options: Options{NoBlockSystemd: true, Silent: true}}.Active()); !reflect.DeepEqual(a, []string{"p", "active", "--no-block-systemd", "--silent"}) {
		t.Errorf("flags argv %q", a)
	}

	bad := ID{"--root=/", "x"}
	for name, f := range map[string]func() ([]string, error){
		"remove invalid":     func() ([]string, error) { return tool.Remove(bad) },
		"remove none":        func() ([]string, error) { return tool.Remove() },
		"activate invalid":   func() ([]string, error) { return tool.Activate(m, bad) },
		"activate none":      func() ([]string, error) { return tool.Activate() },
		"swap invalid":       func() ([]string, error) { return tool.Swap(ID{}) },
		"fetch none":         func() ([]string, error) { return tool.Fetch("file:///x", nil...) },
		"fetch invalid":      func() ([]string, error) { return tool.Fetch("file:///x", bad) },
		"fetch empty url":    func() ([]string, error) { return tool.Fetch("", m) },
		"fetch space url":    func() ([]string, error) { return tool.Fetch("file:///a b", m) },
		"add relative":       func() ([]string, error) { return tool.Add("mesos--0.22.0.tar.xz") },
		"add dash":           func() ([]string, error) { return tool.Add("-x--1.tar.xz") },
		"add bad suffix":     func() ([]string, error) { return tool.Add("/tmp/mesos--0.22.0.tar.gz") },
		"add bad id":         func() ([]string, error) { return tool.Add("/tmp/mesos.tar.xz") },
		"no path":            func() ([]string, error) { return Tool{}.List() },
		"blank option value": func() ([]string, error) { return Tool{Path: "p", Options: Options{Root: " "}}.List() },
	} {
		if a, err := f(); err == nil {
			t.Errorf("%s: argv %q, want error", name, a)
		}
	}
}

func TestParseList(t *testing.T) {
	good := []struct {
		out  string
		want []string
	}{
		{"", []string{}},
		{"mesos--0.22.0\n", []string{"mesos--0.22.0"}},
		{"mesos:\n  0.22.0\n  0.23.0\nmesos-config:\n  ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8\n  justmesos\n",
			[]string{"mesos--0.22.0", "mesos--0.23.0", "mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8", "mesos-config--justmesos"}},
		{"a--1\nb:\n  1\n  2\nc--3", []string{"a--1", "b--1", "b--2", "c--3"}},
	}
	for _, g := range good {
		got, err := ParseList([]byte(g.out))
		if err != nil || !reflect.DeepEqual(got, g.want) {
			t.Errorf("ParseList(%q) = %q, %v; want %q", g.out, got, err, g.want)
		}
	}
	bad := []string{
		"  0.22.0\n",             // version outside group
		"mesos:\n  0.22.0\n",     // group of one
		"mesos:\n",               // empty group
		"mesos:\n  0.22.0\nx\n",  // invalid line
		"mesos--0.22.0\nWarning", // trailing junk
		"mesos--0.22.0\nmesos--0.22.0\n",
		"mesos:\n  1\n  1\n",
		"mesos:\n   1\n  2\n",  // three-space indent
		"mesos--0.22.0\r\n",    // CR
		"-x:\n  1\n  2\n",      // bad name
		"mesos:\n  1-2\n  2\n", // bad version
		"\n",
	}
	for _, b := range bad {
		if got, err := ParseList([]byte(b)); err == nil {
			t.Errorf("ParseList(%q) = %q, want error", b, got)
		} else if pe := (*ParseError)(nil); !errors.As(err, &pe) {
			t.Errorf("ParseList(%q) error %T", b, err)
		}
	}
}

func TestFormatList(t *testing.T) {
	ids := []string{"mesos-config--justmesos", "mesos--0.23.0", "mesos--0.22.0", "mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8", "zk--1"}
	out, err := FormatList(ids)
	if err != nil {
		t.Fatal(err)
	}
	want := "mesos:\n  0.22.0\n  0.23.0\nmesos-config:\n  ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8\n  justmesos\nzk--1\n"
	if string(out) != want {
		t.Errorf("FormatList = %q, want %q", out, want)
	}
	if _, err := FormatList([]string{"bad"}); err == nil {
		t.Error("FormatList accepted an invalid id")
	}
}

func TestParseActive(t *testing.T) {
	got, err := ParseActive([]byte("mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8\nmesos--0.22.0\n"))
	want := []string{"mesos--0.22.0", "mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseActive = %q, %v", got, err)
	}
	if got, err := ParseActive(nil); err != nil || len(got) != 0 {
		t.Errorf("empty: %q %v", got, err)
	}
	for _, b := range []string{"mesos\n", "mesos--1\nmesos--2\n", "a--1\n\n", " a--1\n", "mesos:\n  1\n  2\n"} {
		if got, err := ParseActive([]byte(b)); err == nil {
			t.Errorf("ParseActive(%q) = %q, want error", b, got)
		}
	}
}

func TestParseCheckList(t *testing.T) {
	got, err := ParseCheckList([]byte("pkg1--12345\n - hello_world_ok.py\n - b\npkg2--12345\n - failed_check.py\n"))
	want := []PackageChecks{{"pkg1--12345", []string{"hello_world_ok.py", "b"}}, {"pkg2--12345", []string{"failed_check.py"}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCheckList = %+v, %v", got, err)
	}
	if got, err := ParseCheckList(nil); err != nil || len(got) != 0 {
		t.Errorf("empty: %+v %v", got, err)
	}
	for _, b := range []string{" - a\n", "pkg1--1\n", "pkg1--1\npkg2--1\n - a\n", "pkg1--1\n -  \n", "pkg1--1\n - a/b\n", "pkg1--1\n-a\n", "bad\n - a\n"} {
		if got, err := ParseCheckList([]byte(b)); err == nil {
			t.Errorf("ParseCheckList(%q) = %+v, want error", b, got)
		}
	}
}

func TestParseProgress(t *testing.T) {
	got, err := ParseFetch([]byte("\rFetching: mesos--0.22.0\rFetched: mesos--0.22.0\n\rFetching: a--1Package already added.\n\rFetched: a--1\n\rFetching: b--2\n"))
	// The CLI prints "Package already added." with a newline, so the
	// completion lands on a line of its own.
	want := []Progress{{"mesos--0.22.0", true, false}, {"a--1", true, true}, {"b--2", false, false}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseFetch = %+v, %v; want %+v", got, err, want)
	}
	got, err = ParseFetch([]byte("\rFetching: mesos--0.22.0\rFetched: mesos--0.22.0\n\rFetching: a--1Package already added.\rFetched: a--1\n\rFetching: b--2\n"))
	want = []Progress{{"mesos--0.22.0", true, false}, {"a--1", true, true}, {"b--2", false, false}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseFetch = %+v, %v; want %+v", got, err, want)
	}
	got, err = ParseRemove([]byte("\rRemoving: mesos--0.23.0\rRemoved: mesos--0.23.0\n"))
	if err != nil || !reflect.DeepEqual(got, []Progress{{"mesos--0.23.0", true, false}}) {
		t.Errorf("ParseRemove = %+v, %v", got, err)
	}
	if got, err := ParseRemove(nil); err != nil || len(got) != 0 {
		t.Errorf("empty remove: %+v %v", got, err)
	}
	for _, b := range []string{
		"Removing: a--1\n", "\rRemoving: a--1\rRemoved: a--2\n", "\rRemoving: a--1\rRemoved: a--1\rx\n",
		"\rFetching: a--1\n", "\rRemoving: bad\n", "\rRemoving: a--1Package already added.\n", "hello\n",
		"\rRemoved: a--1\n", "\rRemoving: a--1\n\rRemoved: a--1\n",
	} {
		if got, err := ParseRemove([]byte(b)); err == nil {
			t.Errorf("ParseRemove(%q) = %+v, want error", b, got)
		}
	}
	for _, b := range []string{
		"\rFetched: a--1\n", "\rFetching: a--1\n\rFetched: a--1\n", "\rFetching: a--1Package already added.\n\rFetched: a--2\n",
		"\rFetching: a--1Package already added.\rFetched: a--1\n\rFetched: a--1\n",
	} {
		if got, err := ParseFetch([]byte(b)); err == nil {
			t.Errorf("ParseFetch(%q) = %+v, want error", b, got)
		}
	}
}

func TestClassify(t *testing.T) {
	if err := Classify(0, []byte("x"), []byte("Validation Error: x")); err != nil {
		t.Errorf("exit 0 classified as %v", err)
	}
	cases := []struct {
		code           int
		stdout, stderr string
		kind           Kind
		msg            string
	}{
		{1, "", "Validation Error: Refusing to remove active package mesos--0.22.0\n", KindValidation, "Refusing to remove active package mesos--0.22.0"},
		{1, "", "Package Error: No / unreadable pkginfo.json in a--1: No such file\n", KindPackage, "No / unreadable pkginfo.json in a--1: No such file"},
		{1, "\rFetching: a--1\n", "ERROR: Unable to fetch package a--1: 404\n", KindError, "Unable to fetch package a--1: 404"},
		{1, "", "Validation Error: ERROR: Can only add package tarballs\n", KindValidation, "ERROR: Can only add package tarballs"},
		{1, "", "warning: something\nPackage Error: gone\n", KindPackage, "gone"},
		// Released pkgpanda prints its error line on stdout.
		{1, "\rRemoving: a--1\nValidation Error: Invalid package id a--1\n", "", KindValidation, "Invalid package id a--1"},
		{1, "", "Usage:\n  pkgpanda list [options]\n", KindUsage, "Usage:\n  pkgpanda list [options]"},
		{2, "", "unknown command\nUsage:\n  pkgpanda ...\n", KindUsage, "unknown command\nUsage:\n  pkgpanda ..."},
		{-1, "", "", KindOther, ""},
		{1, "", "Traceback (most recent call last):\n  boom\n", KindOther, "Traceback (most recent call last):\n  boom"},
	}
	for _, c := range cases {
		err := Classify(c.code, []byte(c.stdout), []byte(c.stderr))
		var te *ToolError
		if !errors.As(err, &te) {
			t.Errorf("Classify(%d, %q, %q) = %v", c.code, c.stdout, c.stderr, err)
			continue
		}
		if te.Kind != c.kind || te.Message != c.msg || te.ExitCode != c.code {
			t.Errorf("Classify(%d, %q, %q) = %+v, want kind %v msg %q", c.code, c.stdout, c.stderr, te, c.kind, c.msg)
		}
		if !errors.Is(err, c.kind) {
			t.Errorf("errors.Is(%v, %v) false", err, c.kind)
		}
		for _, k := range []Kind{KindOther, KindValidation, KindPackage, KindError, KindUsage} {
			if k != c.kind && errors.Is(err, k) {
				t.Errorf("errors.Is(%v, %v) true", err, k)
			}
		}
	}
}

// Every byte, first and later, is judged by the byte checks as the CLI's
// patterns judge it.
func TestIDPatternBytes(t *testing.T) {
	nameRE := regexp.MustCompile(namePattern)
	versionRE := regexp.MustCompile(versionPattern)
	for c := 0; c < 256; c++ {
		for _, s := range []string{string(rune(c)), string([]byte{byte(c)}), "a" + string([]byte{byte(c)}), string([]byte{byte(c)}) + "a"} {
			if matchName(s) != nameRE.MatchString(s) {
				t.Errorf("name %q: byte check %v, pattern %v", s, matchName(s), nameRE.MatchString(s))
			}
			if matchVersion(s) != versionRE.MatchString(s) {
				t.Errorf("version %q: byte check %v, pattern %v", s, matchVersion(s), versionRE.MatchString(s))
			}
		}
	}
	if matchName("") || matchVersion("") {
		t.Error("the empty string matched")
	}
}
