package libprocess

import (
	"bytes"
	"errors"
	"github.com/procpanda/procpanda/internal/testlog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// A panic in a message handler, a route, a dispatched function or an
// exited handler is contained to its event: the route answers 500, the
// process keeps serving, the panic is counted and logged with its stack.
func TestHandlerPanicsAreContained(t *testing.T) {
	logs := &testlog.Buffer{}
	rt := startRuntime(t, func(c *Config) { c.Logger = zerolog.New(logs) })
	p := NewProcess("fragile")
	got := make(chan string, 4)
	exited := make(chan UPID, 1)
	p.Install("boom", func(m *Message) { panic("message handler exploded") })
	p.Install("ok", func(m *Message) { got <- string(m.Body) })
	p.Route("boom", Help{TLDR: "panics"}, func(req *Request, respond Responder) { panic("route exploded") })
	p.Route("fine", Help{TLDR: "answers"}, func(req *Request, respond Responder) { respond(TextResponse(200, "fine")) })
	p.OnExited(func(u UPID) {
		exited <- u
		panic("exited handler exploded")
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	src, _ := spawnSender(t, rt, "src")

	c := dialRaw(t, rt)
	c.write("GET /fragile/boom HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); r.Status != 500 || !strings.Contains(string(r.Body), `"error"`) {
		t.Fatalf("panicking route: %q %q, want 500 with a JSON error", r.StatusLine, r.Body)
	}
	c.write("GET /fragile/fine HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); r.Status != 200 || string(r.Body) != "fine" {
		t.Fatalf("route after a panic: %q %q", r.StatusLine, r.Body)
	}

	if err := src.Send(p.Self(), "boom", nil); err != nil {
		t.Fatal(err)
	}
	if err := src.Send(p.Self(), "ok", []byte("after")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "after" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("process stopped handling messages after a handler panicked")
	}

	if err := p.DispatchWait(func() { panic("dispatch exploded") }); err == nil {
		t.Fatal("DispatchWait of a panicking function returned nil")
	}

	target := spawnRecorder(t, rt, "target")
	if err := p.Link(target.Self()); err != nil {
		t.Fatal(err)
	}
	target.Terminate()
	<-exited
	// The process still runs after the exited handler's panic.
	if err := p.DispatchWait(func() {}); err != nil {
		t.Fatalf("process gone after panics: %v", err)
	}
	if n := rt.Snapshot()["libprocess/handler_panics"]; n != 4 {
		t.Fatalf("libprocess/handler_panics = %v, want 4", n)
	}
	out := logs.String()
	for _, want := range []string{"message handler exploded", "route exploded", "dispatch exploded", "exited handler exploded", "runtime/debug.Stack"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q", want)
		}
	}
}

// Exited notifications bypass the mailbox bound: a linker whose mailbox is
// full when its peer terminates still learns of it.
func TestExitedDeliveredWhenMailboxFull(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.MailboxCapacity = 2 })
	watcher, entered, release, _ := stuckProcess(t, rt, "watcher")
	exited := make(chan UPID, 1)
	watcher.OnExited(func(u UPID) { exited <- u })
	target := spawnRecorder(t, rt, "target")
	if err := watcher.Link(target.Self()); err != nil {
		t.Fatal(err)
	}
	src, _ := spawnSender(t, rt, "src")
	if err := src.Send(watcher.Self(), "m", nil); err != nil {
		t.Fatal(err)
	}
	<-entered
	for i := 0; i < 2; i++ {
		if err := src.Send(watcher.Self(), "m", nil); err != nil {
			t.Fatalf("filling the mailbox: %v", err)
		}
	}
	if err := src.Send(watcher.Self(), "m", nil); !errors.Is(err, ErrMailboxFull) {
		t.Fatalf("mailbox not full: %v", err)
	}
	target.Terminate()
	<-target.Done() // its linkers have been notified (or the notice lost)
	close(release)
	drain(t, watcher)
	select {
	case u := <-exited:
		if u != target.Self() {
			t.Fatalf("exited for %v", u)
		}
	default:
		t.Fatal("exited notification lost while the linker's mailbox was full")
	}
}

func TestStartTwiceFails(t *testing.T) {
	rt := startRuntime(t)
	addr := rt.Addr().HostPort()
	if err := rt.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	if rt.Addr().HostPort() != addr {
		t.Fatalf("listener changed from %s to %s", addr, rt.Addr().HostPort())
	}
	c := dialRaw(t, rt)
	c.write("GET /help HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n")
	if r := c.read(); r.Status != 200 {
		t.Fatalf("first listener after a second Start: %q", r.StatusLine)
	}
}

// Names, receiver ids and hosts are written into the request head: bytes
// that would inject headers or retarget the request are refused at Send,
// and nothing of them reaches the wire.
func TestSendRejectsHeaderInjection(t *testing.T) {
	rt := startRuntime(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	sender, _ := spawnSender(t, rt, "source")
	to := UPID{ID: "sink", Host: "127.0.0.1", Port: port}
	bad := []struct {
		to   UPID
		name string
	}{
		{to, "x HTTP/1.1\r\nX-Injected: 1\r\n\r\nPOST /sink/y"},
		{to, "x\nX-Injected: 1"},
		{to, "x\rX-Injected: 1"},
		{to, "with space"},
		{to, "tab\tname"},
		{to, "nul\x00"},
		{to, "del\x7f"},
		{to, "caf\xc3\xa9"},
		{to, "query?X-Injected=1"},
		{to, "frag#x"},
		{to, "pct%0d%0aX-Injected"},
		{to, ""},
		{UPID{ID: "sink\r\nX-Injected: 1", Host: "127.0.0.1", Port: port}, "m"},
		{UPID{ID: "a/b", Host: "127.0.0.1", Port: port}, "m"},
		{UPID{ID: "", Host: "127.0.0.1", Port: port}, "m"},
		{UPID{ID: "sink", Host: "127.0.0.1\r\nX-Injected: 1", Port: port}, "m"},
		{UPID{ID: "sink", Host: "", Port: port}, "m"},
		{UPID{ID: "sink", Host: "fe80::1%eth0\r\n", Port: port}, "m"},
	}
	for _, b := range bad {
		err := sender.Send(b.to, b.name, []byte("payload"))
		if !errors.Is(err, ErrInvalidTarget) {
			t.Errorf("Send(%q, %q) = %v, want ErrInvalidTarget", b.to.String(), b.name, err)
		}
	}
	if n := rt.Snapshot()["libprocess/sends_invalid"]; n != float64(len(bad)) {
		t.Errorf("libprocess/sends_invalid = %v, want %d", n, len(bad))
	}
	if err := sender.Send(to, "nested/name.ok", []byte("good")); err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := "POST /sink/nested/name.ok HTTP/1.1\r\n"
	got := make([]byte, 0, 512)
	buf := make([]byte, 512)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !bytes.HasSuffix(got, []byte("4\r\ngood\r\n0\r\n\r\n")) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.HasPrefix(got, []byte(want)) || bytes.Contains(got, []byte("Injected")) || bytes.Count(got, []byte("POST ")) != 1 {
		t.Fatalf("wire bytes %q: want exactly one request, starting %q, without injected bytes", got, want)
	}
}

// DispatchWait from a goroutine other than the process' handlers waits
// for its function, even while the process is busy.
func TestDispatchWaitWhileBusy(t *testing.T) {
	rt := startRuntime(t)
	src, _ := spawnSender(t, rt, "src")
	busy, entered, release, _ := stuckProcess(t, rt, "busy")
	if err := src.Send(busy.Self(), "m", nil); err != nil {
		t.Fatal(err)
	}
	<-entered
	ran := make(chan error, 1)
	go func() { ran <- busy.DispatchWait(func() {}) }()
	close(release)
	if err := <-ran; err != nil {
		t.Fatalf("DispatchWait from another goroutine while the process was busy: %v", err)
	}
}
