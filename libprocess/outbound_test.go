package libprocess

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

func spawnSender(t testing.TB, rt *Runtime, id string) (*Process, chan UPID) {
	t.Helper()
	p := NewProcess(id)
	exited := make(chan UPID, 16)
	p.OnExited(func(u UPID) { exited <- u })
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	return p, exited
}

func TestOrdering10000RemoteMessages(t *testing.T) {
	a := startRuntime(t)
	b := startRuntime(t)
	rec := spawnRecorder(t, b, "sink", "seq")
	sender, _ := spawnSender(t, a, "source")
	const n = 10000
	for i := 0; i < n; i++ {
		body := make([]byte, 8)
		binary.BigEndian.PutUint64(body, uint64(i))
		if err := sender.Send(rec.Self(), "seq", body); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := 0; i < n; i++ {
		m := rec.next(t)
		if got := binary.BigEndian.Uint64(m.Body); got != uint64(i) {
			t.Fatalf("message %d carried sequence %d: order broken", i, got)
		}
		if m.From != sender.Self() {
			t.Fatalf("from %v, want %v", m.From, sender.Self())
		}
	}
	if got := a.Snapshot()["libprocess/messages_sent"]; got < n {
		t.Fatalf("messages_sent = %v, want >= %d", got, n)
	}
}

func TestLocalSendSkipsNetwork(t *testing.T) {
	rt := startRuntime(t)
	rec := spawnRecorder(t, rt, "sink", "m")
	sender, _ := spawnSender(t, rt, "source")
	if err := sender.Send(rec.Self(), "m", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if m := rec.next(t); string(m.Body) != "x" || m.From != sender.Self() {
		t.Fatalf("got %+v", m)
	}
	snap := rt.Snapshot()
	if snap["libprocess/connections_outbound"] != 0 || snap["libprocess/messages_received"] != 0 {
		t.Fatalf("local send touched the network: %v", snap)
	}
	nobody := rt.Addr()
	nobody.ID = "nobody"
	if err := sender.Send(nobody, "m", nil); err == nil {
		t.Fatal("send to a missing local process succeeded")
	}
}

func TestLinkExitedLocal(t *testing.T) {
	rt := startRuntime(t)
	target := spawnRecorder(t, rt, "target")
	watcher, exited := spawnSender(t, rt, "watcher")
	if err := watcher.Link(target.Self()); err != nil {
		t.Fatal(err)
	}
	// Make sure the link is registered before terminating: links are
	// synchronous for local processes.
	target.Terminate()
	select {
	case u := <-exited:
		if u != target.Self() {
			t.Fatalf("exited for %v, want %v", u, target.Self())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exited notification for a terminated local process")
	}
	// Linking to a process that no longer exists notifies at once.
	if err := watcher.Link(target.Self()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("no exited notification when linking to a dead process")
	}
	// A message to the terminated id is now answered 404.
	c := dialRaw(t, rt)
	c.write("POST /target/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if r := c.read(); r.Status != 404 {
		t.Fatalf("message to terminated process: %q", r.StatusLine)
	}
}

func TestLinkExitedRemoteAndRelink(t *testing.T) {
	a := startRuntime(t)
	// A fake remote peer we can kill: it accepts connections and reads.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	remote := UPID{ID: "remote", Host: "127.0.0.1", Port: uint16(port)}
	watcher, exited := spawnSender(t, a, "watcher")
	if err := watcher.Link(remote); err != nil {
		t.Fatal(err)
	}
	first := <-conns
	// The peer process dies: its connection breaks.
	first.Close()
	select {
	case u := <-exited:
		if u != remote {
			t.Fatalf("exited for %v, want %v", u, remote)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exited notification after the remote connection broke")
	}
	// Relinking opens a fresh connection.
	if err := watcher.Link(remote); err != nil {
		t.Fatal(err)
	}
	select {
	case second := <-conns:
		defer second.Close()
		// And messages flow on it, in the C++ wire format.
		if err := watcher.Send(remote, "after.relink", []byte("hi")); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(second)
		second.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil || line != "POST /remote/after.relink HTTP/1.1\r\n" {
			t.Fatalf("request line %q (%v)", line, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relink did not open a new connection")
	}
	// A link to an address nobody listens on reports exited too.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := UPID{ID: "x", Host: "127.0.0.1", Port: uint16(ln2.Addr().(*net.TCPAddr).Port)}
	ln2.Close()
	if err := watcher.Link(dead); err != nil {
		t.Fatal(err)
	}
	select {
	case u := <-exited:
		if u != dead {
			t.Fatalf("exited for %v, want %v", u, dead)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exited notification for an unreachable peer")
	}
}

func TestLinkExitedWhenRemoteRuntimeStops(t *testing.T) {
	a := startRuntime(t)
	cfg := DefaultConfig()
	cfg.IP = "127.0.0.1"
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	rec := spawnRecorder(t, b, "peer", "ping")
	watcher, exited := spawnSender(t, a, "watcher")
	if err := watcher.Link(rec.Self()); err != nil {
		t.Fatal(err)
	}
	// Prove the connection is up: a message arrives.
	if err := watcher.Send(rec.Self(), "ping", nil); err != nil {
		t.Fatal(err)
	}
	rec.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case u := <-exited:
		if u != rec.Self() {
			t.Fatalf("exited for %v", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exited notification after the remote runtime stopped")
	}
}

// The exact bytes the runtime writes for a message (docs/libprocess-wire.md §3.1).
func TestOutboundWireFormat(t *testing.T) {
	a := startRuntime(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	sender, _ := spawnSender(t, a, "source")
	to := UPID{ID: "sink", Host: "127.0.0.1", Port: uint16(port)}
	sender.Send(to, "mesos.internal.Ping", []byte("hello"))
	sender.Send(to, "mesos.internal.Empty", nil)
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	from := sender.Self().String()
	want := "POST /sink/mesos.internal.Ping HTTP/1.1\r\n" +
		"User-Agent: libprocess/" + from + "\r\n" +
		"Libprocess-From: " + from + "\r\n" +
		"Connection: Keep-Alive\r\n" +
		"Host: " + to.HostPort() + "\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\n" +
		"POST /sink/mesos.internal.Empty HTTP/1.1\r\n" +
		"User-Agent: libprocess/" + from + "\r\n" +
		"Libprocess-From: " + from + "\r\n" +
		"Connection: Keep-Alive\r\n" +
		"Host: " + to.HostPort() + "\r\n\r\n"
	got := make([]byte, 0, len(want))
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < len(want) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		t.Fatalf("wire bytes:\n%q\nwant:\n%q", got, want)
	}
	if !strings.HasPrefix(from, "source@127.0.0.1:") {
		t.Fatalf("sender UPID %q", from)
	}
}

// Peers of short-lived clients are forgotten once their connection closes,
// and a later send to the same address connects afresh.
func TestOutboundPeersRetireWhenIdle(t *testing.T) {
	a := startRuntime(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	to := UPID{ID: "client", Host: "127.0.0.1", Port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	sender, _ := spawnSender(t, a, "source")
	peers := func() float64 { return a.Snapshot()["libprocess/outbound_peers"] }
	for round := 0; round < 2; round++ {
		if err := sender.Send(to, "reply", []byte("x")); err != nil {
			t.Fatal(err)
		}
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := r.ReadString('\n'); err != nil || line != "POST /client/reply HTTP/1.1\r\n" {
			t.Fatalf("round %d: %q %v", round, line, err)
		}
		if got := peers(); got != 1 {
			t.Fatalf("round %d: %v peers while connected, want 1", round, got)
		}
		c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for peers() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: peer not forgotten after its connection closed", round)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
