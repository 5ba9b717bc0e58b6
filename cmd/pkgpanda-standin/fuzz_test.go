package main

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkExtract extracts data into a package folder two levels below a
// scratch base holding an `outside` folder, and fails if anything at all
// appears or changes outside the package folder, or if a successful
// extraction left a symbolic link that resolves outside it.
func checkExtract(t *testing.T, data []byte) {
	t.Helper()
	base := t.TempDir()
	pkg := filepath.Join(base, "repo", "pkg")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{pkg, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("v"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := extractStream(bytes.NewReader(data), pkg)
	want := []string{
		". " + (fs.ModeDir | 0o755).String(),
		"outside " + (fs.ModeDir | 0o755).String(),
		"outside/victim -rw-r--r-- v",
		"repo " + (fs.ModeDir | 0o755).String(),
	}
	var got []string
	for _, e := range tree(t, base) {
		if !strings.HasPrefix(e, "repo/pkg ") && !strings.HasPrefix(e, "repo/pkg/") {
			got = append(got, e)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("outside the package folder:\n got %q\nwant %q", got, want)
	}
	if err != nil {
		return
	}
	realPkg, _ := filepath.EvalSymlinks(pkg)
	filepath.WalkDir(pkg, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		l, _ := os.Readlink(p)
		if filepath.IsAbs(l) {
			t.Errorf("%s -> %s: absolute", p, l)
		}
		if r, err := filepath.EvalSymlinks(p); err == nil && r != realPkg && !strings.HasPrefix(r, realPkg+"/") {
			t.Errorf("%s -> %s resolves outside to %s", p, l, r)
		}
		return nil
	})
	// Restore write permission so t.TempDir can clean up read-only folders.
	filepath.WalkDir(pkg, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}

// FuzzExtract feeds arbitrary bytes (a tar stream, possibly compressed)
// to the extraction and checks that nothing is ever created outside the
// package folder.
func FuzzExtract(f *testing.F) {
	f.Add(tarBytes(f, symlink("esc", "../../outside"), reg("esc/FILE", "x")))
	f.Add(tarBytes(f, dir("top/"), symlink("x", "top/later/.."), symlink("top/later", "..")))
	f.Add(tarBytes(f, reg("pkginfo.json", "{}"), symlink("bin/l", "../lib/x"), hardlink("h", "pkginfo.json")))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBytes(f, symlink("esc", "../../outside"), reg("esc/FILE", "x")))
	zw.Close()
	f.Add(gz.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		checkExtract(t, data)
	})
}
