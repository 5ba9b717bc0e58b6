package main

// One test per item of docs/pkgpanda-cli.md §7: what the real CLI
// does that the stand-in must do too. Expected texts are DC/OS pkgpanda's
// (pkgpanda/__init__.py, actions.py, cli.py).

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// addPkg puts a package folder into the fixture's repository: pkginfo.json
// and files (a name ending in "/" is a folder).
func (f *fixture) addPkg(t *testing.T, id, pkginfo string, files map[string]string) {
	t.Helper()
	dir := filepath.Join(f.dir, "packages", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pkginfo.json"), []byte(pkginfo), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) path(rel string) string { return filepath.Join(f.dir, rel) }

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Error(err)
	}
	return string(b)
}

func wantLink(t *testing.T, link, target string) {
	t.Helper()
	got, err := os.Readlink(link)
	if err != nil || got != target {
		t.Errorf("%s -> %q (%v), want -> %q", link, got, err, target)
	}
}

func wantAbsent(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if exists(p) {
			t.Errorf("%s exists", p)
		}
	}
}

// recorder writes a systemctl stand-in that appends its arguments to log
// and exits with $STOP_RC for `stop`; it returns the environment that
// selects it.
func recorder(t *testing.T) (env []string, log string) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "systemctl")
	log = filepath.Join(dir, "calls")
	body := "#!/bin/sh\necho \"$*\" >> \"$SYSTEMCTL_LOG\"\ncase \"$1\" in stop) exit ${STOP_RC:-0};; esac\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{systemctlEnv + "=" + script, "SYSTEMCTL_LOG=" + log}, log
}

// TestSpecActivateBuildsWholeInstall: activate and swap build bin, lib,
// etc, include, dcos.target.wants (role folders included, unit files
// copied under the root), environment(.export), active.buildinfo.full.json
// and etc/dcos-service-configuration.json, keep the previous ones as
// .old, and make the state folders of packages with state_directory.
func TestSpecActivateBuildsWholeInstall(t *testing.T) {
	f := newFixture(t)
	f.addPkg(t, "svc--1", `{"state_directory": true, "requires": ["mesos"], "environment": {"SVC_B": "2", "SVC_A": 1}}`, map[string]string{
		"bin/svc":                            "#!/bin/sh\n",
		"lib/libsvc.so":                      "elf",
		"include/svc.h":                      "int svc;",
		"etc/svc.conf":                       "conf",
		"dcos.target.wants/dcos-svc.service": "[Unit]\n",
		"buildinfo.full.json":                `{"z": 1, "a": [true, null, "é"]}`,
	})
	os.Chmod(f.path("packages/svc--1/dcos.target.wants/dcos-svc.service"), 0o640)
	env, log := recorder(t)
	root, repo := f.path("install"), f.path("packages")
	r := runStandin(t, env, append([]string{"activate", "mesos--0.22.0", "mesos-config--justmesos", "svc--1"}, f.opts...)...)
	if r.code != 0 || r.stdout != "" || r.stderr != warnFirst(f) {
		t.Fatalf("activate: %+v", r)
	}
	if got := f.active(t); !reflect.DeepEqual(got, []string{"mesos--0.22.0", "mesos-config--justmesos", "svc--1"}) {
		t.Errorf("active %q", got)
	}
	for link, target := range map[string]string{
		"bin/mesos":                          repo + "/mesos--0.22.0/bin/mesos",
		"bin/mesos-dir/.gitignore":           repo + "/mesos--0.22.0/bin/mesos-dir/.gitignore",
		"bin/svc":                            repo + "/svc--1/bin/svc",
		"lib/libmesos.so":                    repo + "/mesos--0.22.0/lib/libmesos.so",
		"lib/libsvc.so":                      repo + "/svc--1/lib/libsvc.so",
		"include/svc.h":                      repo + "/svc--1/include/svc.h",
		"etc/foobar":                         repo + "/mesos-config--justmesos/etc/foobar",
		"etc/svc.conf":                       repo + "/svc--1/etc/svc.conf",
		"active/mesos":                       repo + "/mesos--0.22.0",
		"active/svc":                         repo + "/svc--1",
		"dcos.target.wants/dcos-svc.service": root + "/dcos-svc.service",
		"dcos.target.wants/dcos-mesos-slave.service": root + "/dcos-mesos-slave.service",
	} {
		wantLink(t, filepath.Join(root, link), target)
	}
	if st, err := os.Lstat(filepath.Join(root, "bin/mesos-dir")); err != nil || !st.IsDir() {
		t.Errorf("bin/mesos-dir is not a real folder: %v", err)
	}
	// The master role's files are not linked on a slave.
	wantAbsent(t, root+"/bin/mesos-master", root+"/dcos.target.wants/dcos-mesos-master.service", root+"/dcos-mesos-master.service")
	if st, err := os.Lstat(root + "/dcos-svc.service"); err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o640 || readFile(t, root+"/dcos-svc.service") != "[Unit]\n" {
		t.Errorf("unit file copy: %v %v", st, err)
	}
	if got, want := readFile(t, root+"/etc/dcos-service-configuration.json"),
		"{\n  \"sysctl\":{\n    \"dcos-mesos-master\":{\n      \"kernel.watchdog_thresh\":\"11\",\n      \"net.netfilter.nf_conntrack_udp_timeout\":\"30\"\n    },\n    \"dcos-mesos-slave\":{\n      \"kperf.debug_level\":\"1\"\n    }\n  }\n}"; got != want {
		t.Errorf("dcos-service-configuration.json %q, want %q", got, want)
	}
	wantEnv := "# Pkgpanda provided environment variables\nLD_LIBRARY_PATH=" + root + "/lib\nPATH=" + root + "/bin:/usr/bin:/bin:/sbin\n\n" +
		"# package: mesos--0.22.0\n\n# package: mesos-config--justmesos\nFOO=BAR\nBAZ=TEST\n\n# package: svc--1\nSVC_B=2\nSVC_A=1\n\n"
	if got := readFile(t, root+"/environment"); got != wantEnv {
		t.Errorf("environment %q, want %q", got, wantEnv)
	}
	wantExport := "# Pkgpanda provided environment variables\nexport LD_LIBRARY_PATH=" + root + "/lib\nexport PATH=\"" + root + "/bin:$PATH\"\n\n" +
		"# package: mesos--0.22.0\n\n# package: mesos-config--justmesos\nexport FOO=BAR\nexport BAZ=TEST\n\n# package: svc--1\nexport SVC_B=2\nexport SVC_A=1\n\n"
	if got := readFile(t, root+"/environment.export"); got != wantExport {
		t.Errorf("environment.export %q, want %q", got, wantExport)
	}
	if got, want := readFile(t, root+"/active.buildinfo.full.json"),
		"{\n  \"mesos\":{},\n  \"mesos-config\":{},\n  \"svc\":{\n    \"a\":[\n      true,\n      null,\n      \"\\u00e9\"\n    ],\n    \"z\":1\n  }\n}"; got != want {
		t.Errorf("active.buildinfo.full.json %q, want %q", got, want)
	}
	if st, err := os.Stat(f.path("state/svc")); err != nil || !st.IsDir() {
		t.Errorf("state/svc: %v", err)
	}
	wantAbsent(t, f.path("state/mesos"), root+"/install_progress", root+"/bin.old", root+"/active.new", root+"/bin.new",
		root+"/dcos-svc.service.unit.new", root+"/environment.new")
	if st, err := os.Lstat(root + "/active.old/mesos"); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("active.old not kept: %v", err)
	}
	if _, err := os.Stat(log); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--no-systemd ran systemctl: %v", err)
	}

	// Swap: the previous install is kept as .old, units follow the set.
	r = runStandin(t, env, append([]string{"swap", "mesos--0.23.0"}, f.opts...)...)
	if r.code != 0 || r.stderr != "Do not stop services\n" {
		t.Fatalf("swap: %+v", r)
	}
	wantLink(t, root+"/bin/mesos", repo+"/mesos--0.23.0/bin/mesos")
	wantLink(t, root+"/bin.old/mesos", repo+"/mesos--0.22.0/bin/mesos")
	wantLink(t, root+"/dcos.target.wants.old/dcos-mesos-slave.service", root+"/dcos-mesos-slave.service")
	wantAbsent(t, root+"/dcos-mesos-slave.service", root+"/dcos.target.wants/dcos-mesos-slave.service")
	if !exists(root + "/dcos-svc.service") {
		t.Error("the unit of a package still active was removed")
	}
	for _, old := range []string{"environment.old", "environment.export.old", "active.buildinfo.full.json.old", "etc.old/dcos-service-configuration.json", "lib.old", "include.old"} {
		if !exists(filepath.Join(root, old)) {
			t.Errorf("%s not kept", old)
		}
	}
	if got := readFile(t, root+"/etc/dcos-service-configuration.json"); got != "{\n  \"sysctl\":{}\n}" {
		t.Errorf("dcos-service-configuration.json after swap %q", got)
	}
	if st, err := os.Stat(f.path("state/mesos")); err != nil || !st.IsDir() {
		t.Errorf("state/mesos after swapping in a state_directory package: %v", err)
	}
}

// TestSpecSystemctlCalls: without --no-systemd the real tool's systemctl
// calls are made, through PKGPANDA_STANDIN_SYSTEMCTL; --no-block-systemd
// adds --no-block; `stop` exiting 5 is only a warning, any other failure
// is the tool's error.
func TestSpecSystemctlCalls(t *testing.T) {
	f := newFixture(t)
	env, log := recorder(t)
	opts := []string{"--root=" + f.path("install"), "--repository=" + f.path("packages"), "--config-dir=" + f.path("etc"),
		"--state-dir-root=" + f.path("state"), "--rooted-systemd"}
	wants := f.path("install/dcos.target.wants")
	calls := func() string {
		b, _ := os.ReadFile(log)
		os.Remove(log)
		return string(b)
	}
	steps := []struct {
		env    string
		args   []string
		code   int
		stderr string
		calls  string
	}{
		{"", []string{"activate", "mesos--0.22.0", fixtureActive[1]}, 0,
			"Do not stop services. " + wants + " does not exist\nDo not remove files. " + wants + " does not exist\n",
			"daemon-reload\nenable dcos.target --no-reload\nstart dcos.target\n"},
		{"", []string{"swap", "mesos--0.23.0", "--no-block-systemd"}, 0, "",
			"stop dcos-mesos-slave.service --no-block\ndaemon-reload\nenable dcos.target --no-reload\nstart dcos.target --no-block\n"},
		{"STOP_RC=5", []string{"swap", "mesos--0.22.0"}, 0, "Command '['systemctl', 'stop']' returned non-zero exit status 5.\n",
			"stop\ndaemon-reload\nenable dcos.target --no-reload\nstart dcos.target\n"},
		{"STOP_RC=1", []string{"swap", "mesos--0.23.0"}, 1,
			"Command '['systemctl', 'stop', 'dcos-mesos-slave.service']' returned non-zero exit status 1.\nERROR: Command '['systemctl', 'stop', 'dcos-mesos-slave.service']' returned non-zero exit status 1.\n",
			"stop dcos-mesos-slave.service\n"},
	}
	for i, s := range steps {
		e := env
		if s.env != "" {
			e = append(append([]string{}, env...), s.env)
		}
		r := runStandin(t, e, append(s.args, opts...)...)
		if r.code != s.code || r.stderr != s.stderr || r.stdout != "" {
			t.Errorf("step %d %q: %+v\nwant exit %d stderr %q", i, s.args, r, s.code, s.stderr)
		}
		if got := calls(); got != s.calls {
			t.Errorf("step %d %q: systemctl calls %q, want %q", i, s.args, got, s.calls)
		}
	}
	// The failed stop left the swap recorded as in progress, as the real
	// tool does, with the active set not yet moved.
	if got := readFile(t, f.path("install/install_progress")); got != `{"stage": "archive", "extension": ".new"}` {
		t.Errorf("install_progress %q", got)
	}
	if got := f.active(t); !reflect.DeepEqual(got, []string{"mesos--0.22.0", fixtureActive[1]}) {
		t.Errorf("active after the failed stop %q", got)
	}

	// A systemctl that cannot be run fails as Python's check_call does.
	for _, prog := range []string{"/nonexistent/systemctl", "no-such-systemctl"} {
		r := runStandin(t, []string{systemctlEnv + "=" + prog}, append([]string{"activate", "mesos--0.22.0", fixtureActive[1]}, opts...)...)
		if r.code != 1 || r.stderr != "ERROR: [Errno 2] No such file or directory: 'systemctl'\n" {
			t.Errorf("%s: %+v", prog, r)
		}
	}

	// Without --rooted-systemd the machine's unit folder would be used:
	// the stand-in refuses and changes nothing.
	before := tree(t, f.dir)
	r := runStandin(t, env, "activate", "mesos--0.23.0", "--root="+f.path("install"), "--repository="+f.path("packages"), "--config-dir="+f.path("etc"), "--no-systemd")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "ERROR: the pkgpanda stand-in does not write /etc/systemd/system") {
		t.Errorf("unrooted activate: %+v", r)
	}
	if after := tree(t, f.dir); !reflect.DeepEqual(before, after) {
		t.Error("unrooted activate changed the tree")
	}
	if calls() != "" {
		t.Error("unrooted activate ran systemctl")
	}
}

// TestSpecValidation: a set validate_compatible refuses fails with its
// message and leaves the disk untouched.
func TestSpecValidation(t *testing.T) {
	cases := []struct {
		name    string
		pkginfo string // of extra--1, when not ""
		ids     []string
		kind    cli.Kind
		msg     string
	}{
		{"one package per name", "", []string{"mesos--0.22.0", "mesos--0.23.0"}, cli.KindValidation,
			"Repeated name mesos in set of packages mesos--0.22.0 mesos--0.23.0"},
		{"requires present", `{"requires": ["zookeeper"]}`, []string{"mesos--0.22.0", "extra--1"}, cli.KindValidation,
			"Package extra--1 variant None requires zookeeper variant None but that is not in the set of packages mesos--0.22.0, extra--1"},
		{"requires by variant", `{"variant": "ee", "requires": [{"name": "zk", "variant": "ee"}]}`, []string{"extra--1"}, cli.KindValidation,
			"Package extra--1 variant ee requires zk variant ee but that is not in the set of packages extra--1"},
		{"requires dict needs name and variant", `{"requires": [{"name": "mesos"}]}`, []string{"mesos--0.22.0", "extra--1"}, cli.KindValidation,
			"When specifying a dependency in requires by dictionary to depend on a variant both the name of the package and the variant name must always be specified"},
		{"requires no exact id", `{"requires": ["mesos--0.22.0"]}`, []string{"mesos--0.22.0", "extra--1"}, cli.KindValidation,
			"ERROR: Specifying a dependency on 'mesos--0.22.0', an exactpackage id isn't allowed. Dependencies may be specified bypackage name alone or package name + variant (to change thepackage variant)."},
		{"environment variable set twice", `{"environment": {"ZED": "1", "FOO": "other"}}`, []string{"mesos--0.22.0", "mesos-config--justmesos", "extra--1"}, cli.KindValidation,
			"Repeated environment variable FOO. In both packages other and extra--1."},
		{"reserved environment variable", `{"environment": {"LD_LIBRARY_PATH": "/x"}}`, []string{"extra--1"}, cli.KindValidation,
			"LD_LIBRARY_PATH, PATH are reserved environment vars and cannot be specified in packages. Present in package extra--1"},
		{"group without username", `{"group": "dcos_x"}`, []string{"extra--1"}, cli.KindValidation,
			"`group` cannot be used without `username`"},
		{"conflicting sysctl", `{"sysctl": {"dcos-extra": {"kernel.watchdog_thresh": "12"}}}`, []string{"mesos--0.22.0", "extra--1"}, cli.KindError,
			"Conflicting sysctl setting kernel.watchdog_thresh=12 present in the service dcos-extra"},
		{"environment not an object", `{"environment": ["A=1"]}`, []string{"extra--1"}, cli.KindError,
			"'list' object has no attribute 'items'"},
		{"pkginfo not JSON", `{"environment": `, []string{"extra--1"}, cli.KindError, "Invalid JSON in "},
		{"invalid name", "", []string{"bad!--1"}, cli.KindValidation,
			"Invalid package name bad!. Must match the regex ^[a-zA-Z0-9@_+][a-zA-Z0-9@._+\\-]*$"},
		{"invalid version", "", []string{"mesos--1-2"}, cli.KindValidation,
			"Invalid package version 1-2. Must match the regex ^[a-zA-Z0-9@_+:.]+$"},
		{"missing package", "", []string{"mesos--0.22.0", "mesos--9"}, cli.KindPackage, "mesos--9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			if c.pkginfo != "" {
				f.addPkg(t, "extra--1", c.pkginfo, nil)
			}
			before := tree(t, f.dir)
			f.fails(t, c.kind, c.msg, c.name == "pkginfo not JSON", append([]string{"activate"}, c.ids...)...)
			if after := tree(t, f.dir); !reflect.DeepEqual(before, after) {
				t.Errorf("the tree changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// TestSpecFileConflict: two packages shipping the same file fail the way
// the real tool's os.symlink does, after the .new folders were made (the
// real tool leaves them), with the active set unchanged.
func TestSpecFileConflict(t *testing.T) {
	f := newFixture(t)
	f.addPkg(t, "clash--1", `{}`, map[string]string{"bin/mesos": "mine"})
	root, repo := f.path("install"), f.path("packages")
	f.fails(t, cli.KindError, "[Errno 17] File exists: '"+repo+"/clash--1/bin/mesos' -> '"+root+"/bin.new/mesos'", false,
		"activate", "mesos--0.22.0", "clash--1")
	if got := f.active(t); !reflect.DeepEqual(got, fixtureActive) {
		t.Errorf("active %q", got)
	}
}

// TestSpecList: every entry with exactly one "--" is listed, and one that
// then fails the id grammar fails the whole list.
func TestSpecList(t *testing.T) {
	f := newFixture(t)
	os.Mkdir(f.path("packages/a--b--c"), 0o755)          // two "--": ignored
	os.WriteFile(f.path("packages/file--1"), nil, 0o644) // any entry counts
	if out := f.ok(t, "list"); out != "file--1\nmesos:\n  0.22.0\n  0.23.0\nmesos-config:\n  ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8\n  justmesos\n" {
		t.Errorf("list %q", out)
	}
	os.Mkdir(f.path("packages/foo--1-2"), 0o755)
	r := f.fails(t, cli.KindValidation, "Invalid package version 1-2. Must match the regex ^[a-zA-Z0-9@_+:.]+$", false, "list")
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
	os.Remove(f.path("packages/foo--1-2"))
	os.Mkdir(f.path("packages/.foo--1"), 0o755)
	f.fails(t, cli.KindValidation, "Invalid package name .foo. Must match the regex ^[a-zA-Z0-9@_+][a-zA-Z0-9@._+\\-]*$", false, "list")
}

// TestSpecCheckFailedOnStderr: a failing check is reported on stderr.
func TestSpecCheckFailedOnStderr(t *testing.T) {
	f := newFixture(t)
	dir := f.path("packages/mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8/check")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "fails"), []byte("#!/bin/sh\necho out; echo err >&2; exit 1\n"), 0o755)
	r := f.run(t, "check")
	if r.code != 1 || r.stdout != "out\n" || r.stderr != "err\nCheck failed: fails\n" {
		t.Errorf("check: %+v", r)
	}
}

// TestSpecRelativeFileURL: a relative file:// repository URL is resolved
// against the working directory; the fetched files keep the archive's
// modes (pkginfo.json is 0664 in the fixture tarball).
func TestSpecRelativeFileURL(t *testing.T) {
	f := newFixture(t)
	repo := f.path("fetched")
	r := runStandinIn(t, f.dir, nil, "fetch", "--repository-url=file://remote_repo", "mesos--0.22.0", "--repository="+repo)
	if r.code != 0 || r.stderr != "" || r.stdout != "\rFetching: mesos--0.22.0\rFetched: mesos--0.22.0\n" {
		t.Fatalf("fetch: %+v", r)
	}
	if st, err := os.Stat(filepath.Join(repo, "mesos--0.22.0", "pkginfo.json")); err != nil || st.Mode().Perm() != 0o664 {
		t.Errorf("pkginfo.json: %v %v", st, err)
	}
	r = runStandinIn(t, f.dir, nil, "fetch", "--repository-url=file://nowhere", "mesos--0.23.0", "--repository="+repo)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "ERROR: Unable to fetch package mesos--0.23.0: Problem fetching file://nowhere/packages/mesos/mesos--0.23.0.tar.xz to ") ||
		!strings.HasSuffix(r.stderr, " because of [Errno 2] No such file or directory: '"+f.dir+"/nowhere/packages/mesos/mesos--0.23.0.tar.xz'.\n") {
		t.Errorf("missing relative file: %+v", r)
	}
}

// TestCostHook: PKGPANDA_STANDIN_COST makes every run, usage errors and
// demo-init included, take at least that long.
func TestCostHook(t *testing.T) {
	f := newFixture(t)
	const cost = 300 * time.Millisecond
	env := []string{costEnv + "=" + cost.String()}
	for _, args := range [][]string{append([]string{"active"}, f.opts...), {"bogus"}, {"demo-init", t.TempDir()}} {
		start := time.Now()
		r := runStandin(t, env, args...)
		if took := time.Since(start); took < cost {
			t.Errorf("%q took %v, want ≥ %v (%+v)", args[0], took, cost, r)
		}
	}
	// Without it (or with a malformed value) the run still works.
	runStandin(t, []string{costEnv + "=soon"}, append([]string{"active"}, f.opts...)...)
}

// TestSystemdDirHook: without --rooted-systemd, PKGPANDA_STANDIN_SYSTEMD_DIR
// stands for /etc/systemd/system: the unit folder and the unit copies go
// there, as they would go to /etc/systemd/system on a node.
func TestSystemdDirHook(t *testing.T) {
	f := newFixture(t)
	sys := t.TempDir()
	r := runStandin(t, []string{systemdDirEnv + "=" + sys}, "swap", "mesos--0.22.0", "--root="+f.path("install"),
		"--repository="+f.path("packages"), "--config-dir="+f.path("etc"), "--state-dir-root="+f.path("state"), "--no-systemd", "--silent")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("swap: %+v", r)
	}
	wantLink(t, sys+"/dcos.target.wants/dcos-mesos-slave.service", sys+"/dcos-mesos-slave.service")
	if st, err := os.Lstat(sys + "/dcos-mesos-slave.service"); err != nil || !st.Mode().IsRegular() {
		t.Errorf("unit copy: %v", err)
	}
	wantAbsent(t, f.path("install/dcos.target.wants"))
}
