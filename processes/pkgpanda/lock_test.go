package pkgpanda

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	"golang.org/x/sys/unix"
)

// holdLock takes the repository lock the way another process would (an
// flock on its own open file description) until the test ends or the
// returned release is called.
func holdLock(t *testing.T, path string) (release func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("taking %s: %v", path, err)
	}
	var once sync.Once
	release = func() { once.Do(func() { f.Close() }) }
	t.Cleanup(release)
	return release
}

// TestMutationWaitsForForeignLock: while another process holds the
// repository lock, a mutation runs nothing and is answered 503 once the
// lock timeout passes; the contention is counted. Reads go on.
func TestMutationWaitsForForeignLock(t *testing.T) {
	e := newEnv(t, envOpt{lockTimeout: 200 * time.Millisecond})
	_, active := fixtureIDs(t, e.fixture)
	lockPath := filepath.Join(e.dir, ".pkgpanda.lock")
	release := holdLock(t, lockPath)

	r := e.do("POST", "/activate?id="+active[0], nil)
	expectStatus(t, "activate while the lock is held", r, 503)
	if r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), lockPath) {
		t.Fatalf("503 without Retry-After or the lock's path: %v %s", r.header, r.body)
	}
	if n := e.runsStarted("activate"); n != 0 {
		t.Fatalf("activate ran %d times while another process held the lock", n)
	}
	if b, to := e.metric("pkgpanda/repository_lock/busy"), e.metric("pkgpanda/repository_lock/timeouts"); b != 1 || to != 1 {
		t.Fatalf("repository_lock busy=%v timeouts=%v, want 1 and 1", b, to)
	}
	expectStatus(t, "a read while the lock is held", e.do("GET", "/repository/", nil), 200)

	release()
	expectStatus(t, "activate once the lock is free", e.do("POST", "/activate?id="+active[0], nil), 204)
}

// TestMutationChildHoldsTheLock: the CLI child of a mutation inherits the
// locked file, so the lock outlives the daemon as long as the child runs.
func TestMutationChildHoldsTheLock(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the child's descriptors in /proc")
	}
	e := newEnv(t, envOpt{delay: time.Second})
	_, active := fixtureIDs(t, e.fixture)
	lockPath := filepath.Join(e.dir, ".pkgpanda.lock")
	var wg sync.WaitGroup
	var r reply
	e.async(&wg, &r, "POST", "/activate?id="+active[0], nil)
	var pid int
	waitFor(t, "activate to start", func() bool {
		for _, s := range e.readTrace() {
			if s.sub == "activate" && s.end == 0 {
				pid = s.pid
				return true
			}
		}
		return false
	})
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatalf("reading the descriptors of the running child: %v", err)
	}
	held := false
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name()); err == nil && target == lockPath {
			held = true
		}
	}
	wg.Wait()
	expectStatus(t, "activate", r, 204)
	if !held {
		t.Fatalf("the activate child (pid %d) did not hold %s", pid, lockPath)
	}
}

// TestTwoProcessesOverOneRepositoryDoNotOverlap: two pkgpanda processes
// (as a restarted daemon beside a survivor, or a second daemon) serving
// the same repository never run mutations at the same time.
func TestTwoProcessesOverOneRepositoryDoNotOverlap(t *testing.T) {
	e1 := newEnv(t, envOpt{delay: 300 * time.Millisecond})
	e2 := newEnv(t, envOpt{delay: 300 * time.Millisecond, shareWith: e1})
	_, active := fixtureIDs(t, e1.fixture)
	var wg sync.WaitGroup
	replies := make([]reply, 4)
	for i := range replies {
		e := e1
		if i%2 == 1 {
			e = e2
		}
		e.async(&wg, &replies[i], "POST", "/activate?id="+active[0]+"&id="+active[1], nil)
	}
	wg.Wait()
	for i, r := range replies {
		expectStatus(t, "activate "+strconv.Itoa(i), r, 204)
	}
	var runs []span
	for _, s := range e1.readTrace() {
		if s.sub == "activate" {
			runs = append(runs, s)
		}
	}
	if len(runs) != 4 {
		t.Fatalf("%d activate runs, want 4", len(runs))
	}
	for i := range runs {
		for j := i + 1; j < len(runs); j++ {
			if overlaps(runs[i], runs[j]) {
				t.Fatalf("activations of two processes overlapped: %+v and %+v", runs[i], runs[j])
			}
		}
	}
}

// TestInterruptedActivationBlocksUntilRecovered: leftovers of an
// interrupted activation make activations and reads of the active set
// answer 409 naming them, while repository reads go on; once they are
// gone, service resumes.
func TestInterruptedActivationBlocksUntilRecovered(t *testing.T) {
	e := newEnv(t, envOpt{})
	_, active := fixtureIDs(t, e.fixture)
	install := filepath.Join(e.dir, "install")
	for _, c := range []struct {
		name   string
		break_ func() // leaves the install interrupted
		fix    func()
	}{
		{"X.old without X",
			func() { mustRename(t, filepath.Join(install, "active"), filepath.Join(install, "active.old")) },
			func() { mustRename(t, filepath.Join(install, "active.old"), filepath.Join(install, "active")) }},
		{"X.new",
			func() { mustMkdir(t, filepath.Join(install, "bin.new")) },
			func() { os.RemoveAll(filepath.Join(install, "bin.new")) }},
	} {
		c.break_()
		if g := e.metric("pkgpanda/interrupted_activation/leftovers"); g != 1 {
			t.Fatalf("%s: leftovers gauge %v, want 1", c.name, g)
		}
		for _, req := range [][2]string{{"GET", "/active/"}, {"GET", "/active.json"}, {"POST", "/activate?id=" + active[0]}, {"POST", "/swap?id=" + active[0]}} {
			r := e.do(req[0], req[1], nil)
			expectStatus(t, c.name+": "+req[0]+" "+req[1], r, 409)
			var obj map[string]string
			if err := json.Unmarshal(r.body, &obj); err != nil || !strings.Contains(obj["error"], install) || !strings.Contains(obj["error"], "restore") {
				t.Fatalf("%s: %s %s: error %q does not name the leftovers and the recovery", c.name, req[0], req[1], r.body)
			}
		}
		expectStatus(t, c.name+": GET /repository/", e.do("GET", "/repository/", nil), 200)
		c.fix()
		expectStatus(t, c.name+": GET /active/ after recovery", e.do("GET", "/active/", nil), 200)
	}
	if n := e.runsStarted("activate") + e.runsStarted("swap"); n != 0 {
		t.Fatalf("%d activations ran on an interrupted install", n)
	}
	if n := e.metric("pkgpanda/interrupted_activation/refused"); n != 8 {
		t.Fatalf("refused = %v, want 8", n)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestStaleUploadsRemovedAtStart: what a killed process left in its
// upload directory is removed when the next one starts.
func TestStaleUploadsRemovedAtStart(t *testing.T) {
	var stale string
	e := newEnv(t, envOpt{beforeStart: func(e *env) {
		stale = filepath.Join(e.tempDir, uploadDirName(e.p.cfg.lockFile()), "upload-123")
		if err := os.MkdirAll(stale, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stale, "mesos--9.tar.xz"), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale upload still there: %v", err)
	}
	if n := e.metric("pkgpanda/uploads/stale_removed"); n != 1 {
		t.Fatalf("stale_removed = %v, want 1", n)
	}
	// A second process over the same repository and TempDir cannot
	// take the directory while the first runs.
	p2, err := New(e.p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Start(e.rt); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Start over the same upload directory: %v", err)
	}
}

// TestPlantedUploadDirRefused: an upload directory that is a symbolic
// link, or open to other users, is refused at Start, so that the cleanup
// at start cannot be pointed at someone else's files.
func TestPlantedUploadDirRefused(t *testing.T) {
	victim := t.TempDir()
	keep := filepath.Join(victim, "keep")
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, plant := range []func(dir string) error{
		func(dir string) error { return os.Symlink(victim, dir) },
		func(dir string) error { return os.Mkdir(dir, 0o777) },
	} {
		temp := t.TempDir()
		p, err := New(Config{Tool: cli.Tool{Path: "/nonexistent/pkgpanda", Options: cli.Options{Repository: filepath.Join(victim, "packages")}}, TempDir: temp})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(temp, uploadDirName(p.cfg.lockFile()))
		if err := plant(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if _, err := p.Start(nil); err == nil {
			t.Fatal("Start accepted a planted upload directory")
		}
		if _, err := os.Stat(keep); err != nil {
			t.Fatalf("the cleanup removed a file through the planted directory: %v", err)
		}
	}
}

// TestInterruptedActivationSeenAfterACleanLookWasKept: once a look at an
// aged install root found no leftovers, later looks only stat the root;
// leftovers made behind pkgpandad's back afterwards (X.new created, X
// renamed to X.old) still change its stamp and are refused at once, and
// the look is kept again after recovery.
func TestInterruptedActivationSeenAfterACleanLookWasKept(t *testing.T) {
	e := newEnv(t, envOpt{})
	install := filepath.Join(e.dir, "install")
	kept := func() bool {
		e.p.cache.mu.Lock()
		defer e.p.cache.mu.Unlock()
		return e.p.cache.clean != nil
	}
	for _, c := range []struct {
		name        string
		break_, fix func()
	}{
		{"X.new",
			func() { mustMkdir(t, filepath.Join(install, "bin.new")) },
			func() { os.RemoveAll(filepath.Join(install, "bin.new")) }},
		{"X.old without X",
			func() { mustRename(t, filepath.Join(install, "active"), filepath.Join(install, "active.old")) },
			func() { mustRename(t, filepath.Join(install, "active.old"), filepath.Join(install, "active")) }},
	} {
		e.settle()
		expectStatus(t, c.name+": GET /active/ before", e.do("GET", "/active/", nil), 200)
		if !kept() {
			t.Fatalf("%s: a clean look at an aged install root was not kept", c.name)
		}
		c.break_()
		expectStatus(t, c.name+": GET /active/ after the break", e.do("GET", "/active/", nil), 409)
		if kept() {
			t.Fatalf("%s: a look that found leftovers replaced the clean one", c.name)
		}
		c.fix()
		expectStatus(t, c.name+": GET /active/ after recovery", e.do("GET", "/active/", nil), 200)
	}
}
