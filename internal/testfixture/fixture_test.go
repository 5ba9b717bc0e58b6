package testfixture

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestCopy(t *testing.T) {
	src, err := Find()
	if err != nil {
		t.Skip(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := Copy(src, dst); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"mesos":        "../../packages/mesos--0.22.0",
		"mesos-config": "../../packages/mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8",
	} {
		link := filepath.Join(dst, "install", "active", name)
		got, err := os.Readlink(link)
		if err != nil || got != want {
			t.Errorf("%s: link %q, %v; want %q", name, got, err, want)
		}
		if _, err := os.Stat(filepath.Join(link, "pkginfo.json")); err != nil {
			t.Errorf("%s: link does not resolve: %v", name, err)
		}
	}
	// Everything is writable and the tree can be removed.
	var files []string
	err = filepath.Walk(dst, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode()&os.ModeSymlink == 0 && info.Mode().Perm()&0o200 == 0 {
			t.Errorf("%s is not writable: %v", p, info.Mode())
		}
		rel, _ := filepath.Rel(dst, p)
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var srcFiles []string
	filepath.Walk(src, func(p string, _ os.FileInfo, _ error) error {
		rel, _ := filepath.Rel(src, p)
		srcFiles = append(srcFiles, rel)
		return nil
	})
	sort.Strings(files)
	sort.Strings(srcFiles)
	if !slices.Equal(files, srcFiles) {
		t.Errorf("copied tree differs:\n got %q\nwant %q", files, srcFiles)
	}
	b, err := os.ReadFile(filepath.Join(dst, "packages", "mesos--0.23.0", "pkginfo.json"))
	if err != nil || !strings.Contains(string(b), "state_directory") {
		t.Errorf("pkginfo copy: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(dst, "packages", "mesos--0.22.0", "pkginfo.json"), []byte("{}"), 0o644); err != nil {
		t.Errorf("copy not writable: %v", err)
	}
	if err := os.RemoveAll(dst); err != nil {
		t.Errorf("RemoveAll: %v", err)
	}
	// A second copy onto an existing tree fails rather than merging.
	dst2 := t.TempDir()
	if err := Copy(src, dst2); err != nil {
		t.Fatalf("copy into empty existing dir: %v", err)
	}
	if err := Copy(src, dst2); err == nil {
		t.Error("copy over an existing copy succeeded")
	}
}

// The repository's copy of the fixture must match the shared one whenever
// the shared one is there to compare with.
func TestRepoCopyMatchesShared(t *testing.T) {
	wd, _ := os.Getwd()
	var shared string
	for dir := wd; ; dir = filepath.Dir(dir) {
		if c := filepath.Join(dir, "shared", "fixtures", "pkgpanda", "http"); dirExists(c) {
			shared = c
			break
		}
		if filepath.Dir(dir) == dir {
			t.Skip("no shared fixture beside the checkout to compare with")
		}
	}
	root := filepath.Join(wd, "..", "..")
	copyDir := filepath.Join(root, filepath.FromSlash(RepoCopy))
	files := func(base string) map[string]string {
		out := map[string]string{}
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(base, p)
			out[rel] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := files(shared), files(copyDir)
	if len(a) != len(b) {
		t.Fatalf("shared fixture has %d files, the copy %d", len(a), len(b))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s differs between %s and %s; refresh the copy", k, shared, copyDir)
		}
	}
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
