//go:build !race

package libprocess

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
)

// maxRouteAllocs bounds the allocations of one routed request whose route
// answers TextResponse (1 of them, the body, is TextResponse's own).
const maxRouteAllocs = 5

// A routed request allocates only a few objects: its Request with what
// travels with it (routed), the strings of its head (apart, pointer-free,
// so that routed needs no per-object header), the Responder, and what the
// route itself allocates. The client here writes and reads raw bytes with
// reused buffers, so it allocates nothing per request.
func TestRouteAllocations(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	p.Route("ping", Help{TLDR: "pong"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "pong"))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", rt.Addr().HostPort())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /svc/ping HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\n\r\n")
	r := bufio.NewReader(c)
	var line []byte
	get := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		// Head up to the empty line, then the 4-byte body.
		for {
			l, err := r.ReadSlice('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line = append(line[:0], l...); bytes.Equal(line, []byte("\r\n")) {
				break
			}
		}
		var body [4]byte
		if _, err := io.ReadFull(r, body[:]); err != nil || string(body[:]) != "pong" {
			t.Fatalf("body %q: %v", body, err)
		}
	}
	get()
	n := testing.AllocsPerRun(200, get)
	t.Logf("%v allocations per routed request", n)
	if n > maxRouteAllocs {
		t.Fatalf("%v allocations per routed request, want at most %d", n, maxRouteAllocs)
	}
}
