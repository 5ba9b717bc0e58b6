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

// TestStaleUploadsRemovedAtStart: the upload directory a killed process
// left (its lock no longer held) is removed when the next one starts; a
// running process' directory, other users' entries and links are not.
func TestStaleUploadsRemovedAtStart(t *testing.T) {
	var stale, running, link string
	var runningLock *os.File
	e := newEnv(t, envOpt{beforeStart: func(e *env) {
		// A killed process' directory: a lock nobody holds, one upload.
		killed := filepath.Join(e.tempDir, uploadDirPrefix+"killed")
		stale = filepath.Join(killed, "upload-123")
		if err := os.MkdirAll(stale, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(killed, ".lock"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stale, "mesos--9.tar.xz"), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		// A running process' directory: its lock is held.
		running = filepath.Join(e.tempDir, uploadDirPrefix+"running")
		if err := os.MkdirAll(filepath.Join(running, "upload-1"), 0o700); err != nil {
			t.Fatal(err)
		}
		var err error
		if runningLock, err = os.OpenFile(filepath.Join(running, ".lock"), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(runningLock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			t.Fatal(err)
		}
		// A link with the prefix pointing at someone's files.
		link = filepath.Join(e.tempDir, uploadDirPrefix+"link")
		if err := os.Symlink(running, link); err != nil {
			t.Fatal(err)
		}
	}})
	defer runningLock.Close()
	if _, err := os.Stat(filepath.Dir(stale)); !os.IsNotExist(err) {
		t.Fatalf("the killed process' upload directory is still there: %v", err)
	}
	if n := e.metric("pkgpanda/uploads/stale_removed"); n != 1 {
		t.Fatalf("stale_removed = %v, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(running, "upload-1")); err != nil {
		t.Fatalf("a running process' upload was removed: %v", err)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Fatalf("a link with the prefix was removed: %v", err)
	}
	own := e.p.uploads.dir
	if !strings.HasPrefix(filepath.Base(own), uploadDirPrefix) || own == filepath.Dir(stale) || own == running {
		t.Fatalf("the process' upload directory is %s", own)
	}
	st, err := os.Lstat(own)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("the upload directory: %v, mode %v; want 0700", err, st.Mode())
	}
	// A second process over the same TempDir gets a directory of its own
	// and leaves the first's alone.
	p2, err := New(e.p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Start(e.rt); err == nil || !strings.Contains(err.Error(), "spawning") {
		// Its libprocess id is taken on this runtime; the upload
		// directory was made and removed again by the failed Start.
		t.Fatalf("second Start on the same runtime: %v", err)
	}
	if _, err := os.Stat(own); err != nil {
		t.Fatalf("a second process removed the first's upload directory: %v", err)
	}
}

// TestPlantedUploadDirCannotBlockStart: names a local user plants in a
// shared temp dir (a directory of the prefix owned by someone else,
// open to all, or a link to someone's files) neither stop Start nor
// lead its cleanup into someone else's files; a temp dir others may
// write to without the sticky bit is refused.
func TestPlantedUploadDirCannotBlockStart(t *testing.T) {
	victim := t.TempDir()
	keep := filepath.Join(victim, "keep")
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	temp := t.TempDir()
	if err := os.Chmod(temp, os.ModeSticky|0o777); err != nil { // a shared temp dir
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(temp, uploadDirPrefix+"link")); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(temp, uploadDirPrefix+"open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(open, 65534, 65534); err != nil && os.Geteuid() == 0 {
		t.Fatal(err)
	}
	cfg := Config{Tool: cli.Tool{Path: "/nonexistent/pkgpanda", Options: cli.Options{Repository: filepath.Join(victim, "packages")}}, TempDir: temp}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	up, _, err := openUploads(p.cfg.tempDir(), 1, 1)
	if err != nil {
		t.Fatalf("planted names blocked the upload directory: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("the cleanup removed a file through a planted link: %v", err)
	}
	if _, err := os.Stat(open); err != nil && os.Geteuid() == 0 {
		t.Fatalf("another user's directory was removed: %v", err)
	}
	up.close()
	if _, err := os.Stat(up.dir); !os.IsNotExist(err) {
		t.Fatalf("close left the upload directory behind: %v", err)
	}
	if err := os.Chmod(temp, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openUploads(temp, 1, 1); err == nil || !strings.Contains(err.Error(), "sticky") {
		t.Fatalf("a temp dir others may write to without the sticky bit: %v", err)
	}
	if err := os.Chmod(temp, 0o755); err != nil {
		t.Fatal(err)
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
