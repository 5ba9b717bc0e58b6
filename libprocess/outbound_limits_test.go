package libprocess

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// fakePeer is a remote address that accepts connections and hands them to
// the test.
type fakePeer struct {
	ln    net.Listener
	conns chan net.Conn
	to    UPID
}

func newFakePeer(t testing.TB, id string) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return servePeer(t, ln, id)
}

// servePeer is a fakePeer on ln.
func servePeer(t testing.TB, ln net.Listener, id string) *fakePeer {
	f := &fakePeer{ln: ln, conns: make(chan net.Conn, 16),
		to: UPID{ID: id, Host: "127.0.0.1", Port: uint16(ln.Addr().(*net.TCPAddr).Port)}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(f.conns)
				return
			}
			f.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range f.conns {
			c.Close()
		}
	})
	return f
}

// peerConn is one accepted connection, read line by line.
type peerConn struct {
	net.Conn
	r *bufio.Reader
}

func (f *fakePeer) accept(t testing.TB) *peerConn {
	t.Helper()
	select {
	case c := <-f.conns:
		t.Cleanup(func() { c.Close() })
		return &peerConn{Conn: c, r: bufio.NewReader(c)}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no connection within 10s", f.to)
		return nil
	}
}

// expectRequest reads one message request and checks its request line.
func (c *peerConn) expectRequest(t testing.TB, to UPID, name string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	if want := "POST /" + to.ID + "/" + name + " HTTP/1.1\r\n"; err != nil || line != want {
		t.Fatalf("request line %q (%v), want %q", line, err, want)
	}
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			return // messages in these tests have no body
		}
	}
}

// expectClosed waits for the runtime to close the connection.
func (c *peerConn) expectClosed(t testing.TB, why string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c.r); err != nil {
		t.Fatalf("%s: connection not closed: %v", why, err)
	}
}

// flushed waits until every outbound message has been written.
func flushed(t testing.TB, rt *Runtime) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.outbound.flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// peerAddrs lists the remote addresses the runtime keeps peers for.
func peerAddrs(rt *Runtime) []string {
	rt.outbound.mu.Lock()
	defer rt.outbound.mu.Unlock()
	var out []string
	for _, p := range rt.outbound.peers {
		out = append(out, p.addr)
	}
	sort.Strings(out)
	return out
}

func addrsOf(fs ...*fakePeer) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.to.HostPort())
	}
	sort.Strings(out)
	return out
}

// waitMetric polls a metric until it has the wanted value (the runtime
// updates connection gauges from its reader goroutines).
func waitMetricEq(t testing.TB, rt *Runtime, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for rt.Snapshot()[name] != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, rt.Snapshot()[name], want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// countGoroutines counts goroutines whose stack mentions fn.
func countGoroutines(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), fn)
}

// At MaxOutboundPeers, a new peer closes the least recently used idle one:
// replying to a flood of senders cannot exhaust descriptors.
func TestOutboundPeerLimitEvictsLeastRecentlyUsed(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.MaxOutboundPeers = 3 })
	sender, _ := spawnSender(t, rt, "pkgpanda")
	fs := []*fakePeer{newFakePeer(t, "c0"), newFakePeer(t, "c1"), newFakePeer(t, "c2"), newFakePeer(t, "c3")}
	conns := make([]*peerConn, 3)
	for i := 0; i < 3; i++ {
		if err := sender.Send(fs[i].to, "reply", nil); err != nil {
			t.Fatal(err)
		}
		conns[i] = fs[i].accept(t)
		conns[i].expectRequest(t, fs[i].to, "reply")
	}
	// c0 is used again: c1 is now the least recently used.
	if err := sender.Send(fs[0].to, "reply", nil); err != nil {
		t.Fatal(err)
	}
	conns[0].expectRequest(t, fs[0].to, "reply")
	flushed(t, rt)

	if err := sender.Send(fs[3].to, "reply", nil); err != nil {
		t.Fatalf("send to a fourth peer at the limit: %v", err)
	}
	fs[3].accept(t).expectRequest(t, fs[3].to, "reply")
	conns[1].expectClosed(t, "least recently used idle peer at the limit")
	if got, want := peerAddrs(rt), addrsOf(fs[0], fs[2], fs[3]); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("peers %v, want %v", got, want)
	}
	waitMetricEq(t, rt, "libprocess/connections_outbound", 3)
	snap := rt.Snapshot()
	if snap["libprocess/outbound_peers_evicted"] != 1 || snap["libprocess/outbound_peers"] != 3 || snap["libprocess/outbound_peer_limit"] != 3 {
		t.Fatalf("metrics: evicted %v, peers %v, limit %v", snap["libprocess/outbound_peers_evicted"], snap["libprocess/outbound_peers"], snap["libprocess/outbound_peer_limit"])
	}
	// The kept connections still carry messages.
	if err := sender.Send(fs[2].to, "again", nil); err != nil {
		t.Fatal(err)
	}
	conns[2].expectRequest(t, fs[2].to, "again")
}

// Linked peers are never evicted: with every peer linked, a send needing a
// new peer fails with ErrTooManyPeers and is counted; once a link ends,
// there is room again.
func TestOutboundPeerLimitRefusesWhenAllLinked(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.MaxOutboundPeers = 2 })
	watcher, exited := spawnSender(t, rt, "watcher")
	f0, f1, f2 := newFakePeer(t, "l0"), newFakePeer(t, "l1"), newFakePeer(t, "x")
	if err := watcher.Link(f0.to); err != nil {
		t.Fatal(err)
	}
	c0 := f0.accept(t)
	if err := watcher.Link(f1.to); err != nil {
		t.Fatal(err)
	}
	f1.accept(t)
	dropped := rt.Snapshot()["libprocess/messages_dropped"]
	err := watcher.Send(f2.to, "m", nil)
	if !errors.Is(err, ErrTooManyPeers) {
		t.Fatalf("send beyond the limit with every peer linked: %v, want ErrTooManyPeers", err)
	}
	snap := rt.Snapshot()
	if snap["libprocess/outbound_peer_limit_rejections"] != 1 || snap["libprocess/messages_dropped"] != dropped+1 {
		t.Fatalf("rejections %v, dropped %v (was %v)", snap["libprocess/outbound_peer_limit_rejections"], snap["libprocess/messages_dropped"], dropped)
	}
	if err := watcher.Link(f2.to); !errors.Is(err, ErrTooManyPeers) {
		t.Fatalf("link beyond the limit: %v, want ErrTooManyPeers", err)
	}
	// l0 exits: its peer is forgotten and the new one fits.
	c0.Close()
	if u := <-exited; u != f0.to {
		t.Fatalf("exited %v", u)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := watcher.Send(f2.to, "m", nil)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrTooManyPeers) || time.Now().After(deadline) {
			t.Fatalf("send after a link ended: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	f2.accept(t).expectRequest(t, f2.to, "m")
}

// An unlinked peer's connection is closed after OutboundIdleTimeout and
// leaves no goroutine behind; a linked peer's connection stays open.
func TestOutboundIdleCloseSparesLinked(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.OutboundIdleTimeout = 50 * time.Millisecond })
	sender, _ := spawnSender(t, rt, "pkgpanda")
	linked, unlinked := newFakePeer(t, "linked"), newFakePeer(t, "client")
	if err := sender.Link(linked.to); err != nil {
		t.Fatal(err)
	}
	cl := linked.accept(t)
	if err := sender.Send(linked.to, "first", nil); err != nil {
		t.Fatal(err)
	}
	cl.expectRequest(t, linked.to, "first")
	// The unlinked peer is used last, so its idle period ends last.
	if err := sender.Send(unlinked.to, "reply", nil); err != nil {
		t.Fatal(err)
	}
	cu := unlinked.accept(t)
	cu.expectRequest(t, unlinked.to, "reply")
	cu.expectClosed(t, "idle unlinked peer")

	if got, want := peerAddrs(rt), addrsOf(linked); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("peers %v, want only the linked one %v", got, want)
	}
	if n := rt.Snapshot()["libprocess/outbound_idle_closed"]; n != 1 {
		t.Fatalf("libprocess/outbound_idle_closed = %v, want 1", n)
	}
	waitMetricEq(t, rt, "libprocess/connections_outbound", 1)
	// One writer and one reader remain: the linked peer's.
	deadline := time.Now().Add(10 * time.Second)
	for countGoroutines("(*peer).writeLoop") != 1 || countGoroutines("(*peer).readLoop") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left: %d writers, %d readers, want 1 each",
				countGoroutines("(*peer).writeLoop"), countGoroutines("(*peer).readLoop"))
		}
		time.Sleep(2 * time.Millisecond)
	}
	// The linked peer's connection, idle longer than the unlinked one's,
	// is the same open connection.
	if err := sender.Send(linked.to, "second", nil); err != nil {
		t.Fatal(err)
	}
	cl.expectRequest(t, linked.to, "second")
	select {
	case c := <-linked.conns:
		c.Close()
		t.Fatal("the linked peer was reconnected: its idle connection had been closed")
	default:
	}
}

// At most MaxConcurrentDials connection attempts run at once: peers that
// accept TCP but never finish the TLS handshake hold two slots, and the
// other dials wait instead of opening sockets.
func TestOutboundDialsBounded(t *testing.T) {
	pki := newTestPKI(t)
	rt := startRuntime(t, pki.config(false, false), func(c *Config) {
		c.MaxConcurrentDials = 2
		c.DialTimeout = time.Minute
	})
	sender, _ := spawnSender(t, rt, "pkgpanda")
	accepted := make(chan net.Conn, 16)
	var fs []*fakePeer
	for i := 0; i < 5; i++ {
		f := newFakePeer(t, "silent")
		fs = append(fs, f)
		go func() {
			for c := range f.conns {
				accepted <- c
			}
		}()
	}
	for _, f := range fs {
		if err := sender.Send(f.to, "m", nil); err != nil {
			t.Fatal(err)
		}
	}
	var held []net.Conn
	for len(held) < 2 {
		select {
		case c := <-accepted:
			held = append(held, c)
		case <-time.After(10 * time.Second):
			t.Fatal("no dial reached the silent peers")
		}
	}
	waitMetricEq(t, rt, "libprocess/outbound_dials_waiting", 3)
	snap := rt.Snapshot()
	if snap["libprocess/outbound_dials_in_progress"] != 2 || snap["libprocess/outbound_dial_waits"] != 3 {
		t.Fatalf("dials in progress %v, waits %v", snap["libprocess/outbound_dials_in_progress"], snap["libprocess/outbound_dial_waits"])
	}
	// The two slots are taken by handshakes that cannot finish: no third
	// socket was opened.
	select {
	case c := <-accepted:
		t.Fatalf("a third dial ran while two were in progress (from %s)", c.RemoteAddr())
	default:
	}
	// Failing the held handshakes frees the slots for the waiting dials.
	total := len(held)
	for _, c := range held {
		c.Close()
	}
	for total < 5 {
		select {
		case c := <-accepted:
			total++
			c.Close()
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of 5 dials ran after the slots were freed", total)
		}
	}
	waitMetricEq(t, rt, "libprocess/outbound_dials_waiting", 0)
}

// The reflection flood: a process that answers every sender (as pkgpanda
// answers every PkgpandaCall) receives calls from many distinct sender
// addresses. Its outbound peers, sockets and goroutines stay within
// MaxOutboundPeers however many senders there are.
func TestOutboundReplyFloodStaysBounded(t *testing.T) {
	const limit, senders = 4, 40
	rt := startRuntime(t, func(c *Config) { c.MaxOutboundPeers = limit })
	echo := NewProcess("pkgpanda")
	echo.Install("call", func(m *Message) { _ = echo.Send(m.From, "reply", nil) })
	if _, err := rt.Spawn(echo); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	var conns []*peerConn
	for i := 0; i < senders; i++ {
		f := newFakePeer(t, "client")
		from := f.to.String()
		c.write("POST /pkgpanda/call HTTP/1.1\r\nUser-Agent: libprocess/" + from + "\r\nLibprocess-From: " + from + "\r\nConnection: Keep-Alive\r\nHost: \r\n\r\n")
		if r := c.read(); r.Status != 202 {
			t.Fatalf("call from %s: %q", from, r.StatusLine)
		}
		pc := f.accept(t)
		pc.expectRequest(t, f.to, "reply")
		conns = append(conns, pc)
		drain(t, echo)
		flushed(t, rt)
		if n := rt.Snapshot()["libprocess/outbound_peers"]; n > limit {
			t.Fatalf("%v outbound peers, limit %d", n, limit)
		}
		// An evicted peer's writer exits right after its eviction.
		for deadline := time.Now().Add(10 * time.Second); countGoroutines("(*peer).writeLoop") > limit; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d peer writers, limit %d", countGoroutines("(*peer).writeLoop"), limit)
			}
		}
	}
	// Every sender was answered; all but the last `limit` connections
	// were closed by the runtime.
	for _, pc := range conns[:senders-limit] {
		pc.expectClosed(t, "evicted peer")
	}
	if n := rt.Snapshot()["libprocess/outbound_peers_evicted"]; n != senders-limit {
		t.Fatalf("libprocess/outbound_peers_evicted = %v, want %d", n, senders-limit)
	}
	waitMetricEq(t, rt, "libprocess/connections_outbound", limit)
	if n := countGoroutines("(*peer).readLoop"); n > limit {
		t.Fatalf("%d peer readers, limit %d", n, limit)
	}
}
