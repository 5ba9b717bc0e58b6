//go:build unix

package libprocess

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procpanda/procpanda/libprocess/internal/wire"
)

// newSinkPeer is a fakePeer whose accepted connections have a tiny
// receive buffer: with the test never reading them, a message larger
// than what the kernel buffers can never be written whole, so its
// writer blocks and every message queued behind it stays counted.
func newSinkPeer(t testing.TB, id string) *fakePeer {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return servePeer(t, ln, id)
}

// kernelSendMax is the most a socket's send buffer may grow to on Linux
// (0 where unknown).
func kernelSendMax() int64 {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0
	}
	n, _ := strconv.ParseInt(f[2], 10, 64)
	return n
}

// readMessage reads one message request from r and returns its path and
// body.
func readMessage(t testing.TB, r *bufio.Reader) (string, []byte) {
	t.Helper()
	req, err := http.ReadRequest(r)
	if err != nil {
		t.Fatalf("reading a message: %v", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatalf("reading a message body: %v", err)
	}
	return req.URL.Path, body
}

// TestOutboundQueueBytesBounded: a peer that accepts a connection and
// never reads holds at most Config.OutboundQueueBytes of queued messages;
// beyond it Send fails with ErrQueueBytes, the message is dropped and
// counted, and the queued bytes stay at the bound. All peers together hold
// at most Config.OutboundQueueBudget. When the connection is reset, the
// messages none of whose last byte reached the kernel are sent again,
// once, on a new connection: each arrives once and in order, and the
// bytes are given back.
func TestOutboundQueueBytesBounded(t *testing.T) {
	const big = 16 << 20 // DefaultConfig's MaxMessageSize
	if m := kernelSendMax(); m+1<<20 >= big {
		t.Skipf("a socket may buffer %d bytes: a %d-byte message could be written whole", m, big)
	}
	rt := startRuntime(t, func(c *Config) {
		c.WriteTimeout = time.Hour       // only the reset ends the blocked write
		c.OutboundQueueBudget = 24 << 20 // a's 17 MiB and no second big message
	})
	sender := NewProcess("sender")
	if _, err := rt.Spawn(sender); err != nil {
		t.Fatal(err)
	}
	a, b := newSinkPeer(t, "a"), newSinkPeer(t, "b")

	perPeer := int64(rt.Snapshot()["libprocess/outbound_queue_bytes_limit"])
	if perPeer != 17<<20 {
		t.Fatalf("outbound_queue_bytes_limit %d, want the default 17 MiB", perPeer)
	}
	bigBody := bytes.Repeat([]byte{'B'}, big)
	if err := sender.Send(a.to, "big", bigBody); err != nil {
		t.Fatalf("sending a maximal message: %v", err)
	}
	// Accepted and never read, but for one byte: proof that the writer
	// is connected and inside the big message's write, which cannot end
	// while the peer does not read.
	conn := a.accept(t)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn.Conn, make([]byte, 1)); err != nil {
		t.Fatalf("waiting for the first byte: %v", err)
	}
	small := func(i int) []byte {
		b := make([]byte, 100<<10)
		binary.BigEndian.PutUint64(b, uint64(i))
		return b
	}
	cost := func(name string, body []byte) int64 {
		return int64(len(body)+len(name)+len("a")) + outMsgOverhead
	}
	queued := cost("big", bigBody)
	fits := int((perPeer - queued) / cost("small", small(0)))
	for i := 0; i < fits; i++ {
		if err := sender.Send(a.to, "small", small(i)); err != nil {
			t.Fatalf("small message %d of %d that fit: %v", i, fits, err)
		}
		queued += cost("small", small(i))
	}
	snap := rt.Snapshot()
	if got := int64(snap["libprocess/outbound_queued_bytes"]); got != queued {
		t.Fatalf("outbound_queued_bytes %d, want %d", got, queued)
	}
	dropped := snap["libprocess/messages_dropped"]
	for i := 0; i < 3; i++ {
		err := sender.Send(a.to, "small", small(fits+i))
		if !errors.Is(err, ErrQueueBytes) || !strings.Contains(err.Error(), "Config.OutboundQueueBytes") {
			t.Fatalf("send beyond the peer's bound: %v, want ErrQueueBytes naming Config.OutboundQueueBytes", err)
		}
	}
	snap = rt.Snapshot()
	if got := int64(snap["libprocess/outbound_queued_bytes"]); got != queued || got > perPeer {
		t.Errorf("after refusals outbound_queued_bytes %d, want it to stay at %d (bound %d)", got, queued, perPeer)
	}
	if snap["libprocess/outbound_queue_bytes_rejected"] != 3 || snap["libprocess/messages_dropped"] != dropped+3 {
		t.Errorf("outbound_queue_bytes_rejected %v, messages_dropped %v (was %v); want 3 and 3 more",
			snap["libprocess/outbound_queue_bytes_rejected"], snap["libprocess/messages_dropped"], dropped)
	}

	// Another peer has its own bound but shares the runtime's budget:
	// 24 MiB less what a holds leaves no room for a second big message.
	err := sender.Send(b.to, "big", bigBody)
	if !errors.Is(err, ErrQueueBytes) || !strings.Contains(err.Error(), "Config.OutboundQueueBudget") {
		t.Fatalf("send beyond the budget: %v, want ErrQueueBytes naming Config.OutboundQueueBudget", err)
	}
	snap = rt.Snapshot()
	if snap["libprocess/outbound_queue_budget_rejected"] != 1 || int64(snap["libprocess/outbound_queued_bytes"]) != queued {
		t.Errorf("outbound_queue_budget_rejected %v, outbound_queued_bytes %v; want 1 and %d",
			snap["libprocess/outbound_queue_budget_rejected"], snap["libprocess/outbound_queued_bytes"], queued)
	}

	// The peer resets the connection with the big message half written:
	// no message reached it whole, so all are sent again, on a new
	// connection, which this time is read.
	if err := conn.Conn.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	again := a.accept(t)
	_ = again.SetReadDeadline(time.Now().Add(30 * time.Second))
	if path, body := readMessage(t, again.r); path != "/a/big" || !bytes.Equal(body, bigBody) {
		t.Fatalf("first message again: %s with %d bytes, want /a/big with %d", path, len(body), len(bigBody))
	}
	for i := 0; i < fits; i++ {
		path, body := readMessage(t, again.r)
		if path != "/a/small" || len(body) < 8 || binary.BigEndian.Uint64(body) != uint64(i) {
			t.Fatalf("message %d again: %s %x, want /a/small numbered %d", i, path, body[:min(8, len(body))], i)
		}
	}
	waitMetricEq(t, rt, "libprocess/outbound_queued_bytes", 0)
	snap = rt.Snapshot()
	// The messages in the batch being written are queued again; the ones
	// still queued behind it had not been taken.
	if rq := snap["libprocess/outbound_requeued"]; rq < 1 || rq > float64(1+fits) || snap["libprocess/messages_dropped"] != dropped+4 {
		t.Errorf("outbound_requeued %v, messages_dropped %v; want 1 to %d and %v", rq,
			snap["libprocess/messages_dropped"], 1+fits, dropped+4)
	}
	// With the bytes back, a new message is taken and arrives.
	if err := sender.Send(a.to, "small", small(0)); err != nil {
		t.Fatalf("send after the bytes came back: %v", err)
	}
	if path, _ := readMessage(t, again.r); path != "/a/small" {
		t.Fatalf("message after the bytes came back: %s", path)
	}
}

// cutConn accepts the first n bytes written to it, then fails every
// write, as a socket whose peer reset it part-way through.
type cutConn struct {
	net.Conn
	n int
}

func (c *cutConn) Write(b []byte) (int, error) {
	if len(b) <= c.n {
		c.n -= len(b)
		return len(b), nil
	}
	k := c.n
	c.n = 0
	return k, syscall.ECONNRESET
}

func (c *cutConn) SetWriteDeadline(time.Time) error { return nil }

// TestBatchWriterCountsWholeMessages: when a write fails, exactly the
// messages whose last byte was handed to the kernel count as written (they
// may have arrived, so they are never sent again); a message cut anywhere,
// in a buffered segment or in a large body written on its own, is not.
func TestBatchWriterCountsWholeMessages(t *testing.T) {
	p := &peer{o: &outbound{rt: &Runtime{cfg: DefaultConfig()}}, fromText: "s@127.0.0.1:1", addr: "127.0.0.1:2"}
	batch := []outMsg{
		{toID: "r", name: "a", body: bytes.Repeat([]byte{'a'}, 100)},
		{toID: "r", name: "b"},
		{toID: "r", name: "big", body: bytes.Repeat([]byte{'B'}, directBody+1)},
		{toID: "r", name: "c", body: []byte("c")},
	}
	var ends []int
	total := 0
	for _, m := range batch {
		total += len(wire.AppendMessage(nil, p.fromText, m.toID, p.addr, m.name, m.body))
		ends = append(ends, total)
	}
	cuts := []int{0, 1, ends[0] - 1, ends[0], ends[1] - 1, ends[1], ends[1] + 10, ends[2] - 8, ends[2] - 1, ends[2], ends[3] - 1}
	for _, cut := range cuts {
		want := 0
		for _, e := range ends {
			if e <= cut {
				want++
			}
		}
		var w batchWriter
		done, err := w.write(p, &cutConn{n: cut}, batch)
		if err == nil || done != want {
			t.Errorf("cut after %d of %d bytes: %d written whole (%v), want %d and an error", cut, total, done, err, want)
		}
	}
	var w batchWriter
	if done, err := w.write(p, &cutConn{n: total}, batch); err != nil || done != len(batch) {
		t.Errorf("uncut: %d written whole (%v), want %d", done, err, len(batch))
	}
}
