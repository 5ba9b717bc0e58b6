package pkgpanda

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/procpanda/procpanda/internal/testlog"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// panicOn returns an onRun hook that panics once per arm() on the first
// run whose argv holds word, and the arming function.
func panicOn(word string) (func(runInfo), func()) {
	var armed atomic.Bool
	return func(ri runInfo) {
			if slices.Contains(ri.Argv, word) && armed.CompareAndSwap(true, false) {
				panic("injected panic on `pkgpanda " + word + "`")
			}
		}, func() {
			armed.Store(true)
		}
}

// A panic in pkgpanda's own code, on whatever path the operation took,
// answers that request 500, is counted and logged with its stack, and the
// same route then serves the next request: the actor, its locks and the
// process go on. The hook that panics is Config.onRun, called on the
// goroutine that ran the subprocess.
func TestPanicIsContainedOnEveryPath(t *testing.T) {
	hook := struct {
		sync.Mutex
		f func(runInfo)
	}{}
	var logs testlog.Buffer
	e := newEnv(t, envOpt{noCache: true, log: &logs, onRun: func(ri runInfo) {
		hook.Lock()
		f := hook.f
		hook.Unlock()
		if f != nil {
			f(ri)
		}
	}})
	inject := func(word string) {
		f, arm := panicOn(word)
		hook.Lock()
		hook.f = f
		hook.Unlock()
		arm()
	}
	repo, active := fixtureIDs(t, e.fixture)
	panics := func() float64 { return e.metric("pkgpanda/panics") }

	// A read (GET /repository/ runs `pkgpanda list`).
	inject("list")
	expectJSON(t, "read that panics", e.do("GET", "/repository/", nil), 500, `{"error":"`+internalError+`"}`)
	expectJSON(t, "next read on the route", e.do("GET", "/repository/", nil), 200, jsonList(repo))

	// A mutation's pre-check: PUT /active/ reads `list` under the write
	// lock before it activates anything.
	inject("list")
	expectJSON(t, "mutation pre-check that panics", e.doJSON("PUT", "/active/", []byte(jsonList(active))), 500, `{"error":"`+internalError+`"}`)
	expectStatus(t, "next mutation on the route (the write lock and the repository lock are free)",
		e.doJSON("PUT", "/active/", []byte(jsonList(active))), 204)

	// A mutation's command.
	inject("activate")
	expectJSON(t, "activation that panics", e.do("POST", "/activate?id="+strings.Join(active, "&id="), nil), 500, `{"error":"`+internalError+`"}`)
	expectStatus(t, "next activation", e.do("POST", "/activate?id="+strings.Join(active, "&id="), nil), 204)

	// A staged operation: a fetch downloads on a staging goroutine, then
	// its actor runs `pkgpanda add`.
	// The remote repository serves the fixture's tarball under a new id.
	remoteDir := t.TempDir()
	const fetched = "mesos--0.99.0"
	tb, err := os.ReadFile(filepath.Join(e.dir, "remote_repo", "packages", "mesos", "mesos--0.22.0.tar.xz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(remoteDir, "packages", "mesos"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(remoteDir, "packages", "mesos", fetched+".tar.xz"), tb, 0o644); err != nil {
		t.Fatal(err)
	}
	remote := "file://" + remoteDir + "/"
	inject("add")
	expectJSON(t, "staged fetch that panics", e.doJSON("POST", "/repository/"+fetched, []byte(`{"repository_url":"`+remote+`"}`)),
		500, `{"error":"`+internalError+`"}`)
	expectStatus(t, "next fetch", e.doJSON("POST", "/repository/"+fetched, []byte(`{"repository_url":"`+remote+`"}`)), 204)

	// A message gets a PkgpandaResponse 500, with its request id.
	pr := newPeer(t)
	inject("list")
	e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST, RequestId: "boom"})
	if r := pr.next(t); r.Status != 500 || r.RequestId != "boom" || r.Error != internalError {
		t.Fatalf("message whose run panics: status %d, request id %q, error %q", r.Status, r.RequestId, r.Error)
	}
	e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST, RequestId: "next"})
	if r := pr.next(t); r.Status != 200 || r.RequestId != "next" {
		t.Fatalf("next message: status %d, request id %q, error %q", r.Status, r.RequestId, r.Error)
	}

	if got := panics(); got != 5 {
		t.Errorf("pkgpanda/panics = %v, want 5", got)
	}
	if n := bytes.Count([]byte(logs.String()), []byte(`"message":"pkgpanda recovered a panic`)); n != 5 {
		t.Errorf("%d panic log lines, want 5", n)
	}
	if !bytes.Contains([]byte(logs.String()), []byte(`"stack":`)) || !bytes.Contains([]byte(logs.String()), []byte("injected panic")) {
		t.Error("the panic log lines lack the panic or its stack")
	}
}

// A panic on an upload, body-reading or staging goroutine (goTracked)
// answers its request, is counted, and still lets Drain finish.
func TestPanicOnTrackedGoroutine(t *testing.T) {
	e := newEnv(t, envOpt{})
	answered := make(chan struct{})
	if !e.p.goUpload("test", func() { close(answered) }, func() { panic("injected") }) {
		t.Fatal("goUpload refused while not draining")
	}
	<-answered
	e.p.uploadsDone.Wait() // the goroutine ended: Drain is not held
	if got := e.metric("pkgpanda/panics"); got != 1 {
		t.Fatalf("pkgpanda/panics = %v, want 1", got)
	}
	// A panic while answering is contained too.
	done := make(chan struct{})
	e.p.goUpload("test", func() { defer close(done); panic("in the answer") }, func() { panic("injected") })
	<-done
	e.p.uploadsDone.Wait()
	if got := e.metric("pkgpanda/panics"); got != 3 {
		t.Fatalf("pkgpanda/panics = %v, want 3", got)
	}
}
