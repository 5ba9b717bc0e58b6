package libprocess

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestInboundDeliversEveryMessageWhenPeerClosesAfterBurst: a peer that
// pipelines a burst in the Mesos 0.22 shape and closes its socket at once
// makes the first batch of 202s fail (its kernel resets the connection),
// yet every message it sent is delivered (docs/libprocess-wire.md §3.2; a C++ receiver drops
// the rest of the batch).
func TestInboundDeliversEveryMessageWhenPeerClosesAfterBurst(t *testing.T) {
	rt := startRuntime(t)
	const burst = 500
	var got atomic.Int64
	done := make(chan struct{})
	p := NewProcess("sink")
	p.Install("x", func(*Message) {
		if got.Add(1) == burst {
			close(done)
		}
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for i := 0; i < burst; i++ {
		body := fmt.Sprintf("message %d of the burst", i)
		all = append(all, fmt.Sprintf("POST /sink/x HTTP/1.1\r\nUser-Agent: libprocess/peer@127.0.0.1:1\r\nLibprocess-From: peer@127.0.0.1:1\r\nConnection: Keep-Alive\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)...)
	}
	c, err := net.Dial("tcp", rt.Addr().HostPort())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("delivered %d of %d messages after the peer closed", got.Load(), burst)
	}
}

// TestLogLimiter: one line a second, with the count of those held back.
func TestLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	if n := l.allow(t0); n != 0 {
		t.Fatalf("first line: %d, want 0", n)
	}
	for i := 0; i < 5; i++ {
		if n := l.allow(t0.Add(time.Duration(i) * 100 * time.Millisecond)); n != -1 {
			t.Fatalf("line %d within the second let through (%d)", i, n)
		}
	}
	if n := l.allow(t0.Add(time.Second)); n != 5 {
		t.Fatalf("after a second: %d held back reported, want 5", n)
	}
}
