package cli

import (
	"errors"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/; the f.Add calls below
// add a few more inline.

func FuzzParseID(f *testing.F) {
	f.Add("mesos--0.22.0")
	f.Add("--root=/")
	// The patterns as regular expressions: the byte checks must agree
	// with them on every string, and the split on "--" with
	// strings.Split.
	nameRE := regexp.MustCompile(namePattern)
	versionRE := regexp.MustCompile(versionPattern)
	f.Fuzz(func(t *testing.T, s string) {
		if matchName(s) != nameRE.MatchString(s) || matchVersion(s) != versionRE.MatchString(s) {
			t.Fatalf("byte checks and patterns disagree on %q: name %v/%v, version %v/%v",
				s, matchName(s), nameRE.MatchString(s), matchVersion(s), versionRE.MatchString(s))
		}
		parts := strings.Split(s, "--")
		want := len(parts) == 2 && nameRE.MatchString(parts[0]) && versionRE.MatchString(parts[1])
		id, err := ParseID(s)
		if (err == nil) != want {
			t.Fatalf("ParseID(%q) = %v; the patterns say valid=%v", s, err, want)
		}
		if (ValidID(s) == nil) != (err == nil) {
			t.Fatalf("ValidID and ParseID disagree on %q", s)
		}
		if err != nil {
			var ie *IDError
			if !errors.As(err, &ie) || ie.ID != s {
				t.Fatalf("error %v for %q", err, s)
			}
			return
		}
		if id.String() != s || strings.Count(s, "--") != 1 || strings.HasPrefix(s, "-") {
			t.Fatalf("accepted %q as %+v", s, id)
		}
		if !ValidName(id.Name) || !ValidVersion(id.Version) || strings.ContainsAny(s, " ;/\t\n\x00") {
			t.Fatalf("accepted %q with bad parts", s)
		}
	})
}

func FuzzParseList(f *testing.F) {
	f.Add([]byte("mesos:\n  0.22.0\n  0.23.0\nzk--1\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		ids, err := ParseList(out)
		if err != nil {
			return
		}
		if !sort.StringsAreSorted(ids) {
			t.Fatalf("unsorted %q", ids)
		}
		for i, id := range ids {
			if ValidID(id) != nil || (i > 0 && ids[i-1] == id) {
				t.Fatalf("bad or duplicate id %q", id)
			}
		}
		again, err := FormatList(ids)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseList(again)
		if err != nil || !slices.Equal(back, ids) {
			t.Fatalf("round trip of %q: %q %v", ids, back, err)
		}
	})
}

func FuzzParseActive(f *testing.F) {
	f.Add([]byte("mesos--0.22.0\nmesos-config--x\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		ids, err := ParseActive(out)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, s := range ids {
			id, err := ParseID(s)
			if err != nil || names[id.Name] {
				t.Fatalf("bad or repeated %q in %q", s, ids)
			}
			names[id.Name] = true
		}
		if !sort.StringsAreSorted(ids) {
			t.Fatalf("unsorted %q", ids)
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add(1, []byte(""), []byte("Validation Error: x\n"))
	f.Fuzz(func(t *testing.T, code int, stdout, stderr []byte) {
		err := Classify(code, stdout, stderr)
		if code == 0 {
			if err != nil {
				t.Fatalf("exit 0 gave %v", err)
			}
			return
		}
		var te *ToolError
		if !errors.As(err, &te) || te.ExitCode != code || !errors.Is(err, te.Kind) {
			t.Fatalf("Classify(%d) = %v", code, err)
		}
		switch te.Kind {
		case KindValidation, KindPackage, KindError:
			if strings.Contains(te.Message, "\n") {
				t.Fatalf("one-line kind with multi-line message %q", te.Message)
			}
		}
	})
}

func FuzzParseProgress(f *testing.F) {
	f.Add([]byte("\rFetching: a--1\rFetched: a--1\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		for _, parse := range []func([]byte) ([]Progress, error){ParseFetch, ParseRemove} {
			ps, err := parse(out)
			if err != nil {
				continue
			}
			for _, p := range ps {
				if ValidID(p.ID) != nil {
					t.Fatalf("bad id in %+v", p)
				}
			}
		}
	})
}
