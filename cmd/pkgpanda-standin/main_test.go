package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/procpanda/procpanda/internal/testfixture"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// standinDir holds the binary; TestMain makes and removes it.
var standinDir string

// build makes the stand-in binary once, on first use, so fuzz workers and
// `go test -list` (which run TestMain but no command) do not build it.
var build = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(standinDir, "pkgpanda-standin")
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building the stand-in: no go on PATH: %v", err)
	}
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the stand-in: %v\n%s", err, out)
	}
	return bin, nil
})

// standinBin returns the path of the stand-in binary.
func standinBin(t testing.TB) string {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pkgpanda-standin-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	standinDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture is a scratch copy of the shared http fixture.
type fixture struct {
	dir  string
	opts []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	src, err := testfixture.Find()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "fx")
	if err := testfixture.Copy(src, dir); err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: dir, opts: []string{
		"--root=" + dir + "/install", "--repository=" + dir + "/packages", "--config-dir=" + dir + "/etc",
		"--state-dir-root=" + dir + "/state", "--rooted-systemd", "--no-systemd",
	}}
}

type result struct {
	code           int
	stdout, stderr string
}

func runStandin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runStandinIn(t, "", env, args...)
}

// runStandinIn runs the stand-in in the working directory dir ("" = the
// test's) with env (and a minimal PATH).
func runStandinIn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(standinBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running %q: %v", args, err)
	}
	return r
}

// run runs a subcommand with the fixture's global options after it.
func (f *fixture) run(t *testing.T, sub ...string) result {
	t.Helper()
	return runStandin(t, nil, append(sub, f.opts...)...)
}

func (f *fixture) ok(t *testing.T, sub ...string) string {
	t.Helper()
	r := f.run(t, sub...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("%q: exit %d, stderr %q", sub, r.code, r.stderr)
	}
	return r.stdout
}

// fails checks exit 1 with exactly one stderr line of the given kind and
// message (a prefix when prefix is true), and that cli.Classify agrees.
func (f *fixture) fails(t *testing.T, kind cli.Kind, msg string, prefix bool, sub ...string) result {
	t.Helper()
	r := f.run(t, sub...)
	if r.code != 1 {
		t.Fatalf("%q: exit %d, want 1 (stdout %q stderr %q)", sub, r.code, r.stdout, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("%q: stderr %q is not one line", sub, r.stderr)
	}
	err := cli.Classify(r.code, []byte(r.stdout), []byte(r.stderr))
	var te *cli.ToolError
	if !errors.As(err, &te) || te.Kind != kind {
		t.Fatalf("%q: classified %v, want %v", sub, err, kind)
	}
	if (prefix && !strings.HasPrefix(te.Message, msg)) || (!prefix && te.Message != msg) {
		t.Errorf("%q: message %q, want %q (prefix %v)", sub, te.Message, msg, prefix)
	}
	return r
}

// okWarn checks exit 0 and that stderr holds exactly the warnings the
// real tool logs.
func (f *fixture) okWarn(t *testing.T, warnings string, sub ...string) string {
	t.Helper()
	r := f.run(t, sub...)
	if r.code != 0 || r.stderr != warnings {
		t.Fatalf("%q: exit %d, stderr %q, want %q", sub, r.code, r.stderr, warnings)
	}
	return r.stdout
}

// warnFirst is what the first activation of a fixture copy (no unit
// folder yet) logs with --no-systemd.
func warnFirst(f *fixture) string {
	return "Do not stop services\nDo not remove files. " + f.dir + "/install/dcos.target.wants does not exist\n"
}

func (f *fixture) active(t *testing.T) []string {
	t.Helper()
	ids, err := cli.ParseActive([]byte(f.ok(t, "active")))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (f *fixture) list(t *testing.T) []string {
	t.Helper()
	ids, err := cli.ParseList([]byte(f.ok(t, "list")))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

var (
	fixtureIDs    = []string{"mesos--0.22.0", "mesos--0.23.0", "mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8", "mesos-config--justmesos"}
	fixtureActive = []string{"mesos--0.22.0", "mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8"}
)

func TestListAndActive(t *testing.T) {
	f := newFixture(t)
	out := f.ok(t, "list")
	want := "mesos:\n  0.22.0\n  0.23.0\nmesos-config:\n  ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8\n  justmesos\n"
	if out != want {
		t.Errorf("list stdout %q, want %q", out, want)
	}
	if got := f.list(t); !reflect.DeepEqual(got, fixtureIDs) {
		t.Errorf("list ids %q", got)
	}
	if out := f.ok(t, "active"); out != strings.Join(fixtureActive, "\n")+"\n" {
		t.Errorf("active stdout %q", out)
	}
	// Options are accepted in any order after the subcommand, and a
	// missing repository lists nothing.
	r := runStandin(t, nil, "list", "--repository="+f.dir+"/nothing-here")
	if r.code != 0 || r.stdout != "" {
		t.Errorf("empty repository: %+v", r)
	}
}

func TestRemove(t *testing.T) {
	f := newFixture(t)
	f.fails(t, cli.KindValidation, "Refusing to remove active package mesos--0.22.0", false, "remove", "mesos--0.22.0")
	f.fails(t, cli.KindValidation, "Invalid package id a;b", false, "remove", "a;b")
	out := f.ok(t, "remove", "mesos--0.23.0", "absent--1")
	if out != "\rRemoving: mesos--0.23.0\rRemoved: mesos--0.23.0\n\rRemoving: absent--1\n" {
		t.Errorf("remove stdout %q", out)
	}
	ps, err := cli.ParseRemove([]byte(out))
	if err != nil || !reflect.DeepEqual(ps, []cli.Progress{{ID: "mesos--0.23.0", Done: true}, {ID: "absent--1"}}) {
		t.Errorf("ParseRemove: %+v %v", ps, err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "packages", "mesos--0.23.0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("package folder still there: %v", err)
	}
	if got := f.list(t); !reflect.DeepEqual(got, []string{fixtureIDs[0], fixtureIDs[2], fixtureIDs[3]}) {
		t.Errorf("list after remove %q", got)
	}
}

func TestFetch(t *testing.T) {
	f := newFixture(t)
	repo := filepath.Join(f.dir, "empty-repo")
	url := "file://" + f.dir + "/remote_repo/"
	opts := func(sub ...string) []string { return append(sub, "--repository="+repo, "--root="+f.dir+"/install") }
	r := runStandin(t, nil, opts("fetch", "--repository-url="+url, "mesos--0.22.0")...)
	if r.code != 0 || r.stderr != "" || r.stdout != "\rFetching: mesos--0.22.0\rFetched: mesos--0.22.0\n" {
		t.Fatalf("fetch: %+v", r)
	}
	for _, p := range []string{"pkginfo.json", "bin/mesos", "bin_master/mesos-master", "lib/libmesos.so"} {
		if _, err := os.Stat(filepath.Join(repo, "mesos--0.22.0", p)); err != nil {
			t.Errorf("fetched package lacks %s: %v", p, err)
		}
	}
	ents, _ := os.ReadDir(repo)
	if len(ents) != 1 || ents[0].Name() != "mesos--0.22.0" {
		t.Errorf("repository holds %v, want only mesos--0.22.0 (no _tmp)", ents)
	}
	// Again: already added.
	r = runStandin(t, nil, opts("fetch", "--repository-url="+url, "mesos--0.22.0")...)
	ps, err := cli.ParseFetch([]byte(r.stdout))
	if r.code != 0 || err != nil || !reflect.DeepEqual(ps, []cli.Progress{{ID: "mesos--0.22.0", Done: true, AlreadyAdded: true}}) {
		t.Errorf("second fetch: %+v, %+v, %v", r, ps, err)
	}
	// Missing in the remote repository.
	r = runStandin(t, nil, opts("fetch", "--repository-url="+url, "mesos--9.9")...)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "ERROR: Unable to fetch package mesos--9.9: ") || r.stdout != "\rFetching: mesos--9.9\n" {
		t.Errorf("missing fetch: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(repo, "mesos--9.9_tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("_tmp left behind: %v", err)
	}
	// Invalid id: a validation error.
	r = runStandin(t, nil, opts("fetch", "--repository-url="+url, "mesos")...)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "Validation Error: Invalid package id mesos") {
		t.Errorf("invalid fetch: %+v", r)
	}
}

func TestFetchHTTP(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(f.dir, "remote_repo"))))
	defer srv.Close()
	repo := filepath.Join(f.dir, "empty-repo")
	r := runStandin(t, nil, "fetch", "--repository-url="+srv.URL+"/", "mesos--0.22.0", "--repository="+repo)
	if r.code != 0 || r.stdout != "\rFetching: mesos--0.22.0\rFetched: mesos--0.22.0\n" {
		t.Fatalf("http fetch: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(repo, "mesos--0.22.0", "pkginfo.json")); err != nil {
		t.Error(err)
	}
	r = runStandin(t, nil, "fetch", "--repository-url="+srv.URL, "mesos--0.21.0", "--repository="+repo)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "ERROR: Unable to fetch package mesos--0.21.0: ") || !strings.Contains(r.stderr, "404") {
		t.Errorf("http 404: %+v", r)
	}
}

// makeTarball writes a package tarball compressed with xz or gzip.
func makeTarball(t *testing.T, path, compression string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	var cw io.WriteCloser
	var err error
	switch compression {
	case "xz":
		cw, err = xz.NewWriter(&buf)
	case "gzip":
		cw = gzip.NewWriter(&buf)
	default:
		cw = nopCloser{&buf}
	}
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(cw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestAdd(t *testing.T) {
	f := newFixture(t)
	up := t.TempDir()
	for _, c := range []struct{ id, comp string }{{"zk--3.4", "xz"}, {"exhibitor--1.0", "gzip"}} {
		file := filepath.Join(up, c.id+".tar.xz")
		makeTarball(t, file, c.comp, map[string]string{"pkginfo.json": "{}", "bin/" + c.id: c.comp})
		if out := f.ok(t, "add", file); out != "" {
			t.Errorf("add stdout %q", out)
		}
		b, err := os.ReadFile(filepath.Join(f.dir, "packages", c.id, "bin", c.id))
		if err != nil || string(b) != c.comp {
			t.Errorf("%s (%s): extracted %q, %v", c.id, c.comp, b, err)
		}
		if out := f.ok(t, "add", file); out != "Package already added.\n" {
			t.Errorf("re-add stdout %q", out)
		}
	}
	if got := f.list(t); !reflect.DeepEqual(got, append([]string{"exhibitor--1.0"}, append(fixtureIDs, "zk--3.4")...)) {
		t.Errorf("list %q", got)
	}
	// `tar -xf` reads an uncompressed tarball whatever its name says.
	plain := filepath.Join(up, "plain--1.tar.xz")
	makeTarball(t, plain, "none", map[string]string{"pkginfo.json": "{}"})
	f.ok(t, "add", plain)
	if _, err := os.Stat(filepath.Join(f.dir, "packages", "plain--1", "pkginfo.json")); err != nil {
		t.Errorf("uncompressed tarball: %v", err)
	}
	// Not a tarball at all: tar's failure, and nothing left behind.
	junk := filepath.Join(up, "junk--1.tar.xz")
	os.WriteFile(junk, bytes.Repeat([]byte("not a tar "), 100), 0o644)
	r := f.run(t, "add", junk)
	want := "tar: This does not look like a tar archive\ntar: Exiting with failure status due to previous errors\n" +
		"ERROR: Command '['tar', '-xf', '" + junk + "', '-C', '" + f.dir + "/packages/junk--1_tmp']' returned non-zero exit status 2.\n"
	if r.code != 1 || r.stdout != "" || r.stderr != want {
		t.Errorf("junk tarball: %+v\nwant stderr %q", r, want)
	}
	if exists(filepath.Join(f.dir, "packages", "junk--1_tmp")) || exists(filepath.Join(f.dir, "packages", "junk--1")) {
		t.Error("junk tarball left a folder behind")
	}
	f.fails(t, cli.KindError, "Path doesn't exist but should: "+filepath.Join(up, "none--1.tar.xz"), false, "add", filepath.Join(up, "none--1.tar.xz"))
	f.fails(t, cli.KindValidation, "ERROR: Can only add package tarballs which have names like {pkg-id}.tar.xz", false, "add", filepath.Join(up, "zk--3.4.tgz"))
	f.fails(t, cli.KindValidation, "Invalid package id zk. Package ids may only contain one '--' which seperates the name and version", false, "add", filepath.Join(up, "zk.tar.xz"))
}

func TestActivate(t *testing.T) {
	f := newFixture(t)
	f.fails(t, cli.KindPackage, "mesos--9.9", false, "activate", "mesos--0.22.0", "mesos--9.9")
	f.fails(t, cli.KindValidation, "Repeated name mesos in set of packages mesos--0.22.0 mesos--0.23.0", false, "activate", "mesos--0.22.0", "mesos--0.23.0")
	if got := f.active(t); !reflect.DeepEqual(got, fixtureActive) {
		t.Fatalf("failed activations changed the active set: %q", got)
	}
	f.okWarn(t, warnFirst(f), "activate", "mesos--0.23.0", "mesos-config--justmesos")
	if got := f.active(t); !reflect.DeepEqual(got, []string{"mesos--0.23.0", "mesos-config--justmesos"}) {
		t.Errorf("active %q", got)
	}
	// The previous set stays as active.old; no active.new is left.
	old, err := os.Readlink(filepath.Join(f.dir, "install", "active.old", "mesos"))
	if err != nil || filepath.Base(old) != "mesos--0.22.0" {
		t.Errorf("active.old/mesos -> %q, %v", old, err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "install", "active.new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("active.new left: %v", err)
	}
	// A package without a readable pkginfo.json, or whose pkginfo is not an
	// object, cannot be activated.
	os.Mkdir(filepath.Join(f.dir, "packages", "broken--1"), 0o755)
	f.fails(t, cli.KindPackage, "No / unreadable pkginfo.json in broken--1", true, "activate", "broken--1")
	os.Mkdir(filepath.Join(f.dir, "packages", "listy--1"), 0o755)
	os.WriteFile(filepath.Join(f.dir, "packages", "listy--1", "pkginfo.json"), []byte("[]"), 0o644)
	f.fails(t, cli.KindPackage, "Usage should be a dictionary, not a list", false, "activate", "listy--1")
	f.fails(t, cli.KindValidation, "Invalid package id invalid-package. Package ids may only contain one '--' which seperates the name and version", false, "activate", "mesos--0.23.0", "invalid-package")
}

func TestSwap(t *testing.T) {
	f := newFixture(t)
	f.fails(t, cli.KindValidation, "No package with name marathon currently active to swap with.", false, "swap", "marathon--1.0")
	f.okWarn(t, warnFirst(f), "swap", "mesos--0.23.0")
	if got := f.active(t); !reflect.DeepEqual(got, []string{"mesos--0.23.0", fixtureActive[1]}) {
		t.Errorf("after swap: %q", got)
	}
	f.fails(t, cli.KindPackage, "mesos--0.24.0", false, "swap", "mesos--0.24.0")
}

func TestInterruptedActivation(t *testing.T) {
	for _, leftover := range []string{"active.new", "active.old"} {
		t.Run(leftover, func(t *testing.T) {
			f := newFixture(t)
			install := filepath.Join(f.dir, "install")
			if err := os.Rename(filepath.Join(install, "active"), filepath.Join(install, leftover)); err != nil {
				t.Fatal(err)
			}
			f.fails(t, cli.KindError, "Broken past deploy. See "+install+"/active.new", true, "active")
			f.fails(t, cli.KindError, "Broken past deploy.", true, "remove", "mesos--0.23.0")
			f.fails(t, cli.KindError, "Broken past deploy.", true, "swap", "mesos--0.23.0")
			f.fails(t, cli.KindError, "Broken past deploy.", true, "check", "--list")
		})
	}
	f := newFixture(t)
	os.RemoveAll(filepath.Join(f.dir, "install", "active"))
	f.fails(t, cli.KindError, "Install directory "+f.dir+"/install has no active folder.", true, "active")
}

func TestCheck(t *testing.T) {
	f := newFixture(t)
	if out := f.ok(t, "check", "--list"); out != "" {
		t.Errorf("no checks: %q", out)
	}
	dir := filepath.Join(f.dir, "packages", "mesos--0.22.0", "check")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "a_ok"), []byte("#!/bin/sh\necho ran a_ok\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "b_fail"), []byte("#!/bin/sh\nexit 3\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "c_notexec"), []byte("#!/bin/sh\n"), 0o644)
	r := f.run(t, "check", "--list")
	if r.code != 0 || r.stdout != "mesos--0.22.0\n - a_ok\n - b_fail\n" || r.stderr != "WARNING: `c_notexec` is not executable\n" {
		t.Errorf("check --list: %+v", r)
	}
	cl, err := cli.ParseCheckList([]byte(r.stdout))
	if err != nil || !reflect.DeepEqual(cl, []cli.PackageChecks{{ID: "mesos--0.22.0", Checks: []string{"a_ok", "b_fail"}}}) {
		t.Errorf("ParseCheckList: %+v %v", cl, err)
	}
	r = f.run(t, "check")
	if r.code != 1 || r.stdout != "ran a_ok\n" || r.stderr != "WARNING: `c_notexec` is not executable\nCheck failed: b_fail\n" {
		t.Errorf("check: %+v", r)
	}
	os.Remove(filepath.Join(dir, "b_fail"))
	if r := f.run(t, "check"); r.code != 0 {
		t.Errorf("passing checks: %+v", r)
	}
}

func TestUsage(t *testing.T) {
	f := newFixture(t)
	for _, args := range [][]string{
		{}, {"bogus"}, {"remove"}, {"activate"}, {"swap"}, {"swap", "a--1", "b--1"}, {"fetch", "a--1"},
		{"fetch", "--repository-url=file:///x"}, {"list", "extra"}, {"list", "--frobnicate"}, {"active", "--list"},
		{"list", "--root"}, {"add"}, {"demo-init"},
	} {
		// The fixture's options first: a trailing option that wants a
		// value (`--root`) must find none.
		r := runStandin(t, nil, append(slices.Clone(f.opts), args...)...)
		if len(args) == 0 {
			r = runStandin(t, nil)
		}
		if r.code == 0 || !strings.Contains(r.stderr, "Usage:") || r.stdout != "" {
			t.Errorf("%q: %+v", args, r)
		}
		var te *cli.ToolError
		if err := cli.Classify(r.code, []byte(r.stdout), []byte(r.stderr)); !errors.As(err, &te) || te.Kind != cli.KindUsage {
			t.Errorf("%q classified %v", args, err)
		}
	}
	for _, sub := range []string{"setup", "uninstall"} {
		f.fails(t, cli.KindError, sub+" is not supported by the pkgpanda stand-in", false, sub)
	}
}

func TestTraceAndDelayHooks(t *testing.T) {
	f := newFixture(t)
	traceFile := filepath.Join(t.TempDir(), "trace")
	const delay = time.Second
	env := []string{traceEnv + "=" + traceFile, delayEnv + "=" + delay.String()}
	var wg sync.WaitGroup
	runActive := func() {
		defer wg.Done()
		if r := runStandin(t, env, append([]string{"active"}, f.opts...)...); r.code != 0 {
			t.Errorf("active: %+v", r)
		}
	}
	// Start the second run once the first has written its start line, so
	// the second starts inside the first's delay.
	wg.Add(2)
	go runActive()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(traceFile)
		if strings.HasPrefix(string(b), "start ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first run never wrote its start line")
		}
		time.Sleep(5 * time.Millisecond) // polling a file, bounded by the deadline
	}
	go runActive()
	wg.Wait()
	b, err := os.ReadFile(traceFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("trace %q", b)
	}
	starts := map[string]int64{}
	overlap := false
	running := 0
	for _, l := range lines {
		fs := strings.Fields(l)
		if len(fs) != 4 || fs[2] != "active" {
			t.Fatalf("trace line %q", l)
		}
		ns, err := strconv.ParseInt(fs[3], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		switch fs[0] {
		case "start":
			starts[fs[1]] = ns
			running++
			if running > 1 {
				overlap = true
			}
		case "end":
			st, ok := starts[fs[1]]
			if !ok || time.Duration(ns-st) < delay {
				t.Errorf("pid %s ran %v, want ≥ %v", fs[1], time.Duration(ns-st), delay)
			}
			running--
		default:
			t.Fatalf("trace line %q", l)
		}
	}
	// Two unserialized runs are visible as overlapping.
	if !overlap {
		t.Errorf("concurrent runs did not overlap in the trace: %q", lines)
	}
}

func TestDemoInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	r := runStandin(t, nil, "demo-init", dir)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("demo-init: %+v", r)
	}
	opts := strings.Fields(r.stdout)
	want := []string{"--root=" + dir + "/install", "--repository=" + dir + "/packages", "--config-dir=" + dir + "/etc",
		"--state-dir-root=" + dir + "/state", "--rooted-systemd", "--no-systemd"}
	if !reflect.DeepEqual(opts, want) {
		t.Fatalf("options %q, want %q", opts, want)
	}
	f := &fixture{dir: dir, opts: opts}
	if got := f.list(t); !reflect.DeepEqual(got, []string{"marathon--1.10.0", "mesos--1.11.0", "mesos--1.12.0", "mesos-config--demo"}) {
		t.Errorf("demo list %q", got)
	}
	if got := f.active(t); !reflect.DeepEqual(got, demoActive) {
		t.Errorf("demo active %q", got)
	}
	f.okWarn(t, "Do not stop services\n", "swap", "mesos--1.12.0")
	// Idempotent: a second run keeps the (changed) state and prints the same.
	r2 := runStandin(t, nil, "demo-init", dir)
	if r2.code != 0 || r2.stdout != r.stdout {
		t.Errorf("second demo-init: %+v", r2)
	}
	if got := f.active(t); !reflect.DeepEqual(got, []string{"marathon--1.10.0", "mesos--1.12.0", "mesos-config--demo"}) {
		t.Errorf("demo-init reset the active set: %q", got)
	}
}
