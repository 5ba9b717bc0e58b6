package main

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// member is one crafted tar entry.
type member struct {
	name string
	typ  byte
	link string
	body string
	mode int64
}

func reg(name, body string) member {
	return member{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func dir(name string) member { return member{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) member {
	return member{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) member {
	return member{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

// tarBytes writes the members, in order, as an uncompressed tar stream.
func tarBytes(t testing.TB, ms ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Linkname: m.link, Mode: m.mode, Format: tar.FormatPAX}
		if m.typ == tar.TypeReg {
			h.Size = int64(len(m.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if m.typ == tar.TypeReg {
			tw.Write([]byte(m.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tree lists every path below base (links not followed) with its type,
// link target or content, so two snapshots can be compared.
func tree(t testing.TB, base string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := rel + " " + info.Mode().String()
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case d.Type().IsRegular():
			b, _ := os.ReadFile(p)
			desc += " " + string(b)
		}
		out = append(out, desc)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// escapeEnv is a scratch layout: a repository three folders below base,
// and base/outside with one victim file, which extraction must never
// change or add to.
type escapeEnv struct {
	base, repo, outside, victim string
}

func newEscapeEnv(t *testing.T) *escapeEnv {
	base := t.TempDir()
	e := &escapeEnv{base: base, repo: filepath.Join(base, "r", "opt", "packages"), outside: filepath.Join(base, "outside")}
	e.victim = filepath.Join(e.outside, "victim")
	for _, d := range []string{e.repo, e.outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(e.victim, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestExtractionStaysInside adds crafted tarballs with the stand-in and
// checks each is refused the way a failed `tar -xf` fails in the real
// CLI, with nothing created or changed outside the repository and no
// package or `_tmp` folder left behind.
func TestExtractionStaysInside(t *testing.T) {
	// From <repo>/evil--1_tmp, "../../../../outside" is base/outside.
	const up = "../../../../outside"
	cases := []struct {
		name    string
		members []member
		diag    string // tar's diagnostic line
	}{
		{"symlink escape then file through it", []member{reg("pkginfo.json", "{}"), symlink("esc", up), reg("esc/FILE", "pwned")},
			"tar: esc: Cannot create symlink: target resolves outside the package"},
		{"symlink escape as in the report", []member{symlink("esc", "../../../../tmp/x"), reg("esc/FILE", "pwned")},
			"tar: esc: Cannot create symlink: target resolves outside the package"},
		{"absolute symlink then file through it", []member{symlink("abs", "/"), reg("abs/FILE", "pwned")},
			"tar: abs: Cannot create symlink to '/': absolute link target refused"},
		{"absolute symlink to a file", []member{symlink("passwd", "/etc/passwd")},
			"tar: passwd: Cannot create symlink to '/etc/passwd': absolute link target refused"},
		{"inside symlink, then a write through it", []member{dir("sub/"), symlink("in", "sub"), reg("in/FILE", "x")},
			"tar: in/FILE: Cannot open: in is a symbolic link; writing through it is refused"},
		{"hard link to a file outside", []member{hardlink("h", up+"/victim")},
			"tar: h: Cannot hard link to '" + up + "/victim': link target refused"},
		{"hard link with an absolute target", []member{hardlink("h", "/etc/passwd")},
			"tar: h: Cannot hard link to 'etc/passwd': No such file or directory"},
		{"hard link through a symlink", []member{dir("d/"), reg("d/f", "x"), symlink("l", "d"), hardlink("h", "l/f")},
			"tar: h: Cannot open: l is a symbolic link; writing through it is refused"},
		{"dot-dot member name", []member{reg("ok", "x"), reg(up+"/FILE", "pwned")},
			"tar: " + up + "/FILE: Member name contains '..'"},
		{"dot-dot inside a member name", []member{reg("a/../../FILE", "pwned")},
			"tar: a/../../FILE: Member name contains '..'"},
		{"deep nesting, symlink climbing out", []member{dir("a/b/c/d/e/"), symlink("a/b/c/d/e/l", "../../../../../../../../outside"), reg("a/b/c/d/e/l/FILE", "x")},
			"tar: a/b/c/d/e/l: Cannot create symlink: target resolves outside the package"},
		{"lexically inside, outside through an earlier link", []member{dir("top/"), symlink("top/u", ".."), symlink("x", "top/u/..")},
			"tar: x: Cannot create symlink: target resolves outside the package"},
		{"link made to escape by a later member", []member{dir("top/"), symlink("x", "top/later/.."), symlink("top/later", "..")},
			"tar: x: Cannot create symlink: target resolves outside the package"},
		{"symlink loop", []member{symlink("a", "b"), symlink("b", "a"), symlink("c", "a/x")},
			"tar: c: Cannot create symlink: Too many levels of symbolic links"},
		{"hard link to a missing file", []member{hardlink("h", "no/such/file")},
			"tar: h: Cannot hard link to 'no/such/file': No such file or directory"},
		{"fifo", []member{{name: "fifo", typ: tar.TypeFifo, mode: 0o644}},
			"tar: fifo: Cannot mknod: special files are refused"},
		{"character device", []member{{name: "null", typ: tar.TypeChar, mode: 0o666}},
			"tar: null: Cannot mknod: special files are refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEscapeEnv(t)
			file := filepath.Join(e.base, "evil--1.tar.xz")
			if err := os.WriteFile(file, tarBytes(t, c.members...), 0o644); err != nil {
				t.Fatal(err)
			}
			before := tree(t, e.base)
			r := runStandin(t, nil, "add", file, "--repository="+e.repo, "--root="+e.base+"/r/opt")
			want := c.diag + "\ntar: Exiting with failure status due to previous errors\n" +
				"ERROR: Command '['tar', '-xf', '" + file + "', '-C', '" + e.repo + "/evil--1_tmp']' returned non-zero exit status 2.\n"
			if r.code != 1 || r.stdout != "" || r.stderr != want {
				t.Errorf("exit %d stdout %q stderr %q\nwant stderr %q", r.code, r.stdout, r.stderr, want)
			}
			if after := tree(t, e.base); !reflect.DeepEqual(before, after) {
				t.Errorf("the tree changed:\nbefore %q\nafter  %q", before, after)
			}
			if _, err := os.Stat("/tmp/x/FILE"); err == nil {
				t.Error("/tmp/x/FILE exists")
			}
		})
	}
}

// TestExtractionKeepsWhatIsInside: links that stay inside, hard links to
// extracted files, and the members' modes (sticky bit included, setuid
// and setgid dropped) come out as in the archive; directory modes are
// applied after their contents are written.
func TestExtractionKeepsWhatIsInside(t *testing.T) {
	e := newEscapeEnv(t)
	file := filepath.Join(e.base, "good--1.tar.xz")
	ms := []member{
		{name: "./", typ: tar.TypeDir, mode: 0o750},
		reg("pkginfo.json", "{}"),
		{name: "lib/", typ: tar.TypeDir, mode: 0o755},
		{name: "lib/libx.so", typ: tar.TypeReg, body: "elf", mode: 0o640},
		{name: "bin/x", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o4755},
		{name: "bin/y", typ: tar.TypeReg, body: "y", mode: 0o2711},
		symlink("bin/libx.so", "../lib/libx.so"),
		symlink("self", "."),
		symlink("dangling", "nowhere/yet"),
		hardlink("lib/libx.so.1", "lib/libx.so"),
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "ro/", typ: tar.TypeDir, mode: 0o555},
		{name: "ro/file", typ: tar.TypeReg, body: "r", mode: 0o400},
		{name: "/abs/name", typ: tar.TypeReg, body: "a", mode: 0o600},
		{name: "dup/", typ: tar.TypeDir, mode: 0o700},
		{name: "dup/", typ: tar.TypeDir, mode: 0o751},
	}
	if err := os.WriteFile(file, tarBytes(t, ms...), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runStandin(t, nil, "add", file, "--repository="+e.repo)
	if r.code != 0 || r.stderr != "" || r.stdout != "" {
		t.Fatalf("add: %+v", r)
	}
	pkg := filepath.Join(e.repo, "good--1")
	modes := map[string]fs.FileMode{
		".":            fs.ModeDir | 0o750,
		"lib/libx.so":  0o640,
		"bin/x":        0o755,
		"bin/y":        0o711,
		"tmp":          fs.ModeDir | fs.ModeSticky | 0o777,
		"ro":           fs.ModeDir | 0o555,
		"ro/file":      0o400,
		"abs/name":     0o600,
		"bin":          fs.ModeDir | 0o755,
		"pkginfo.json": 0o644,
		"dup":          fs.ModeDir | 0o751,
	}
	for name, want := range modes {
		st, err := os.Lstat(filepath.Join(pkg, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, st.Mode(), want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(pkg, "bin", "libx.so")); err != nil || string(b) != "elf" {
		t.Errorf("bin/libx.so reads %q, %v", b, err)
	}
	a, _ := os.Stat(filepath.Join(pkg, "lib", "libx.so"))
	b, _ := os.Stat(filepath.Join(pkg, "lib", "libx.so.1"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Error("lib/libx.so.1 is not a hard link to lib/libx.so")
	}
	if st, ok := b.Sys().(*syscall.Stat_t); !ok || st.Nlink != 2 {
		t.Errorf("link count %v", b.Sys())
	}
	for link, target := range map[string]string{"self": ".", "dangling": "nowhere/yet", "bin/libx.so": "../lib/libx.so"} {
		if l, err := os.Readlink(filepath.Join(pkg, link)); err != nil || l != target {
			t.Errorf("%s -> %q, %v", link, l, err)
		}
	}
	if !strings.HasSuffix(tree(t, e.outside)[1], "untouched") {
		t.Error("victim changed")
	}
}

// TestExtractStreamDirect exercises extractStream the way the fuzz target
// does, so a fuzz failure can be turned into a plain test case here.
func TestExtractStreamDirect(t *testing.T) {
	for _, ms := range [][]member{
		{symlink("esc", "../outside"), reg("esc/FILE", "x")},
		{reg("a", "1"), reg("a", "2")},
		{dir("d/"), reg("d", "file over a dir")},
		{reg("f", "x"), dir("f/")},
		{symlink("l", "f"), reg("l", "replaces the link")},
	} {
		checkExtract(t, tarBytes(t, ms...))
	}
}
