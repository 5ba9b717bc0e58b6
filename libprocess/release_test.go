package libprocess

import (
	"net"
	"sync"
	"testing"
	"time"
)

// A handler that runs on its request's goroutine and releases the process
// may block there: the process serves other requests meanwhile, and
// DispatchWait works from it. On the process' own goroutine the release
// is refused.
func TestReleaseProcess(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	entered := make(chan struct{}, 1)
	unblock := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(unblock) }) }
	t.Cleanup(free) // a failure must not leave the handler blocked
	p.Route("block", Help{TLDR: "releases the process, then blocks"}, func(req *Request, respond Responder) {
		if !req.ReleaseProcess() {
			respond(TextResponse(200, "held"))
			return
		}
		if !req.ReleaseProcess() {
			respond(TextResponse(500, "a second release was refused"))
			return
		}
		if err := p.DispatchWait(func() {}); err != nil {
			respond(TextResponse(500, "DispatchWait after the release: "+err.Error()))
			return
		}
		entered <- struct{}{}
		<-unblock
		respond(TextResponse(200, "released"))
	})
	p.Route("ping", Help{TLDR: "answers at once"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "pong"))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}

	waitIdle(t, p)
	a := dialRaw(t, rt)
	a.write("GET /svc/block HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the released handler did not get past DispatchWait")
	}
	// Without the release the process would still be held by the
	// blocked handler, and this request would wait behind it.
	b := dialRaw(t, rt)
	b.write("GET /svc/ping HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := b.read(); r.Status != 200 || string(r.Body) != "pong" {
		t.Fatalf("request beside a released handler: %q %q", r.StatusLine, r.Body)
	}
	free()
	if r := a.read(); r.Status != 200 || string(r.Body) != "released" {
		t.Fatalf("released handler: %q %q", r.StatusLine, r.Body)
	}

	// A request that finds the process busy runs on its goroutine,
	// where the release is refused.
	busy := make(chan struct{})
	running := make(chan struct{})
	if err := p.Dispatch(func() { close(running); <-busy }); err != nil {
		t.Fatal(err)
	}
	<-running
	a.write("GET /svc/block HTTP/1.1\r\nHost: x\r\n\r\n")
	waitQueued(t, p, 1)
	close(busy)
	if r := a.read(); r.Status != 200 || string(r.Body) != "held" {
		t.Fatalf("handler on the process' goroutine: %q %q", r.StatusLine, r.Body)
	}
}

// waitIdle waits until p's goroutine has released it with nothing
// queued, so that the next request runs inline.
func waitIdle(t *testing.T, p *Process) {
	t.Helper()
	waitUntil(t, "the process to become idle", func() bool {
		p.mbox.mu.Lock()
		defer p.mbox.mu.Unlock()
		return p.mbox.heldBy == heldByNone && len(p.mbox.pending) == 0
	})
}

// waitQueued waits until p has n events queued.
func waitQueued(t *testing.T, p *Process, n int) {
	t.Helper()
	waitUntil(t, "events to be queued", func() bool { return p.mbox.depth() >= n })
}

// waitUntil polls cond, a state that signals nothing when it changes,
// for up to 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A released handler that blocks past its route's deadline has its
// context cancelled then, and its client gets 504 once it returns; its
// late answer is dropped.
func TestReleasedHandlerDeadline(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	cancelled := make(chan error, 1)
	p.Route("slow", Help{TLDR: "blocks until its context ends"}, func(req *Request, respond Responder) {
		if !req.ReleaseProcess() {
			respond(TextResponse(500, "not released"))
			return
		}
		<-req.Context().Done()
		cancelled <- req.Context().Err()
		respond(TextResponse(200, "late"))
	})
	if err := p.SetRouteTimeout("slow", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	before := rt.Snapshot()["libprocess/route_timeouts"]
	waitIdle(t, p)
	c := dialRaw(t, rt)
	start := time.Now()
	c.write("GET /svc/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read()
	if r.Status != 504 || string(r.Body) != "route deadline exceeded" {
		t.Fatalf("released handler past its deadline: %q %q", r.StatusLine, r.Body)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("answered 504 after %v, before the route's deadline", took)
	}
	if err := <-cancelled; err == nil {
		t.Fatal("the handler's context ended without an error")
	}
	if got := rt.Snapshot()["libprocess/route_timeouts"] - before; got != 1 {
		t.Fatalf("route_timeouts grew by %v, want 1", got)
	}
	// The connection goes on serving.
	c.write("GET /svc/none HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); r.Status != 404 {
		t.Fatalf("next request on the connection: %q", r.StatusLine)
	}
}

// A released handler's context is cancelled when its client resets the
// connection.
func TestReleasedHandlerClientReset(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	entered := make(chan struct{})
	cancelled := make(chan struct{})
	p.Route("wait", Help{TLDR: "blocks until its context ends"}, func(req *Request, respond Responder) {
		if !req.ReleaseProcess() {
			respond(TextResponse(500, "not released"))
			return
		}
		close(entered)
		<-req.Context().Done()
		close(cancelled)
		respond(TextResponse(200, "nobody reads this"))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, p)
	c := dialRaw(t, rt)
	c.write("GET /svc/wait HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	_ = c.Conn.(*net.TCPConn).SetLinger(0)
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the released handler's context outlived its client's reset")
	}
}
