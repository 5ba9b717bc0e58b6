package libprocess

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stuckProcess blocks in its first message handler until released.
func stuckProcess(t *testing.T, rt *Runtime, id string) (*Process, chan struct{}, chan struct{}, *atomic.Int64) {
	t.Helper()
	p := NewProcess(id)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var handled atomic.Int64
	p.Install("m", func(m *Message) {
		if handled.Add(1) == 1 {
			entered <- struct{}{}
			<-release
		}
	})
	p.Route("r", Help{TLDR: "r"}, func(req *Request, respond Responder) { respond(TextResponse(200, "ok")) })
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	return p, entered, release, &handled
}

// drain waits until p has handled everything queued so far. A full mailbox
// refuses the dispatch, so it retries until the backlog has made room.
func drain(t *testing.T, p *Process) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		err := p.DispatchWait(func() {})
		if err == nil {
			return
		}
		if !errors.Is(err, ErrMailboxFull) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMailboxBoundedLocalAndHTTP(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.MailboxCapacity = 4 })
	p, entered, release, handled := stuckProcess(t, rt, "stuck")
	src, _ := spawnSender(t, rt, "src")
	if err := src.Send(p.Self(), "m", nil); err != nil {
		t.Fatal(err)
	}
	<-entered
	for i := 0; i < 4; i++ {
		if err := src.Send(p.Self(), "m", nil); err != nil {
			t.Fatalf("send %d within capacity: %v", i, err)
		}
	}
	if err := src.Send(p.Self(), "m", nil); !errors.Is(err, ErrMailboxFull) {
		t.Fatalf("send beyond capacity: %v, want ErrMailboxFull", err)
	}
	if err := p.Dispatch(func() {}); !errors.Is(err, ErrMailboxFull) {
		t.Fatalf("dispatch beyond capacity: %v", err)
	}
	c := dialRaw(t, rt)
	c.write("GET /stuck/r HTTP/1.1\r\nHost: x\r\n\r\n")
	resp := c.read()
	if resp.Status != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("HTTP to a full mailbox: %q Retry-After=%q", resp.StatusLine, resp.Header.Get("Retry-After"))
	}
	if d := rt.Snapshot()["libprocess/mailbox_depth/stuck"]; d != 4 {
		t.Fatalf("mailbox depth %v, want 4", d)
	}
	if rt.Snapshot()["libprocess/messages_dropped"] < 1 {
		t.Fatal("dropped message not counted")
	}
	close(release)
	drain(t, p)
	if got := handled.Load(); got != 5 {
		t.Fatalf("handled %d messages, want 5", got)
	}
}

// A full mailbox pushes back on a remote peer's connection instead of
// dropping, and drops (counted) only after ReadTimeout.
func TestMailboxBackpressureRemote(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.MailboxCapacity = 2; c.ReadTimeout = 30 * time.Second })
	p, entered, release, handled := stuckProcess(t, rt, "stuck")
	c := dialRaw(t, rt)
	msg := "POST /stuck/m HTTP/1.1\r\nLibprocess-From: a@127.0.0.1:1\r\nHost: \r\n\r\n"
	c.write(strings.Repeat(msg, 10))
	<-entered
	// The connection is now blocked with the mailbox full: release the
	// handler and every message must still arrive.
	close(release)
	for i := 0; i < 10; i++ {
		if r := c.read(); r.Status != 202 {
			t.Fatalf("response %d: %q", i, r.StatusLine)
		}
	}
	drain(t, p)
	if got := handled.Load(); got != 10 {
		t.Fatalf("handled %d of 10 messages", got)
	}
	if d := rt.Snapshot()["libprocess/messages_dropped"]; d != 0 {
		t.Fatalf("dropped %v messages despite backpressure", d)
	}

	rt2 := startRuntime(t, func(c *Config) { c.MailboxCapacity = 1; c.ReadTimeout = 50 * time.Millisecond })
	_, entered2, release2, _ := stuckProcess(t, rt2, "stuck")
	defer close(release2)
	c2 := dialRaw(t, rt2)
	c2.write(strings.Repeat(msg, 4))
	<-entered2
	for i := 0; i < 4; i++ {
		if r := c2.read(); r.Status != 202 {
			t.Fatalf("response %d: %q", i, r.StatusLine)
		}
	}
	if d := rt2.Snapshot()["libprocess/messages_dropped"]; d != 2 {
		t.Fatalf("dropped %v, want 2 (one handling, one queued, two timed out)", d)
	}
}

func TestTerminateAnswersQueuedHTTP(t *testing.T) {
	rt := startRuntime(t)
	p, entered, release, _ := stuckProcess(t, rt, "stuck")
	src, _ := spawnSender(t, rt, "src")
	src.Send(p.Self(), "m", nil)
	<-entered
	c := dialRaw(t, rt)
	c.write("GET /stuck/r HTTP/1.1\r\nHost: x\r\n\r\n")
	// Wait until the request is queued behind the stuck handler.
	deadline := time.Now().Add(5 * time.Second)
	for rt.Snapshot()["libprocess/mailbox_depth/stuck"] < 1 {
		if time.Now().After(deadline) {
			t.Fatal("request never queued")
		}
		time.Sleep(time.Millisecond)
	}
	p.Terminate()
	close(release)
	resp := c.read()
	if resp.Status != 503 {
		t.Fatalf("queued request on termination: %q, want 503", resp.StatusLine)
	}
	<-p.Done()
}

func TestDispatchAndDeferredResponse(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	pending := make(chan Responder, 1)
	var count int // touched only on the process goroutine
	p.Route("wait", Help{TLDR: "answers later"}, func(req *Request, respond Responder) { pending <- respond })
	p.Route("count", Help{TLDR: "count"}, func(req *Request, respond Responder) {
		count++
		respond(TextResponse(200, "counted"))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c1 := dialRaw(t, rt)
	c1.write("GET /svc/wait HTTP/1.1\r\nHost: x\r\n\r\n")
	respond := <-pending
	// The process keeps serving while /wait is outstanding.
	c2 := dialRaw(t, rt)
	c2.write("GET /svc/count HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c2.read(); string(r.Body) != "counted" {
		t.Fatalf("count: %q", r.Body)
	}
	var seen int
	if err := p.DispatchWait(func() { seen = count }); err != nil || seen != 1 {
		t.Fatalf("dispatch saw count %d (%v)", seen, err)
	}
	go respond(TextResponse(201, "finally"))
	if r := c1.read(); r.Status != 201 || string(r.Body) != "finally" {
		t.Fatalf("deferred: %q %q", r.StatusLine, r.Body)
	}
}

func TestClientDisconnectCancelsRequestContext(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	cancelled := make(chan struct{})
	entered := make(chan struct{})
	p.Route("slow", Help{TLDR: "slow"}, func(req *Request, respond Responder) {
		close(entered)
		go func() {
			<-req.Context().Done()
			close(cancelled)
			respond(TextResponse(499, "gone"))
		}()
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	c.write("GET /svc/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	// Hang up with a reset: end-of-stream alone may be a half-close
	// (TestHTTPHalfClosedClientGetsAnswer).
	_ = c.Conn.(*net.TCPConn).SetLinger(0)
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("request context not cancelled after the client reset the connection")
	}
}

func TestShutdownFinishesInFlightAndFlushes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IP = "127.0.0.1"
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	p := NewProcess("svc")
	release := make(chan struct{})
	entered := make(chan struct{})
	p.Route("slow", Help{TLDR: "slow"}, func(req *Request, respond Responder) {
		close(entered)
		go func() { <-release; respond(TextResponse(200, "done")) }()
	})
	finalized := make(chan struct{})
	p.OnFinalize(func() { close(finalized) })
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	c.write("GET /svc/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- rt.Shutdown(ctx)
	}()
	close(release)
	if r := c.read(); r.Status != 200 || string(r.Body) != "done" {
		t.Fatalf("in-flight request during shutdown: %q %q", r.StatusLine, r.Body)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-finalized
	if _, err := rt.Spawn(NewProcess("late")); err == nil {
		t.Fatal("spawn after shutdown succeeded")
	}
}

func TestSpawnRules(t *testing.T) {
	notStarted, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notStarted.Spawn(NewProcess("p")); err == nil {
		t.Fatal("spawn before Start succeeded")
	}
	rt := startRuntime(t)
	for _, id := range []string{"", "a/b", "a b"} {
		if _, err := rt.Spawn(NewProcess(id)); err == nil {
			t.Fatalf("spawn of id %q succeeded", id)
		}
	}
	p := NewProcess("dup")
	u, err := rt.Spawn(p)
	if a := rt.Addr(); err != nil || u != (UPID{ID: "dup", Host: a.Host, Port: a.Port}) || u.Host != "127.0.0.1" || a.Port == 0 {
		t.Fatalf("spawn: %v %v", u, err)
	}
	if _, err := rt.Spawn(NewProcess("dup")); err == nil {
		t.Fatal("duplicate id spawned")
	}
	if _, err := rt.Spawn(p); err == nil {
		t.Fatal("process spawned twice")
	}
}

// Addr is the advertised address, not the bound one, and what spawned
// processes' UPIDs carry; it is zero before Start.
func TestAddrIsAdvertised(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IP = "127.0.0.1"
	cfg.AdvertiseIP, cfg.AdvertisePort = "203.0.113.7", 15052
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rt.Addr().IsZero() {
		t.Fatalf("Addr before Start: %v", rt.Addr())
	}
	rt = startRuntime(t, func(c *Config) { c.AdvertiseIP, c.AdvertisePort = "203.0.113.7", 15052 })
	want := UPID{Host: "203.0.113.7", Port: 15052}
	if a := rt.Addr(); a != want || a.HostPort() != "203.0.113.7:15052" {
		t.Fatalf("Addr %+v, want %+v", a, want)
	}
	want.ID = "p"
	if u, err := rt.Spawn(NewProcess("p")); err != nil || u != want {
		t.Fatalf("Spawn: %v %v, want %v", u, err, want)
	}
}
