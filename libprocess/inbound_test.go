package libprocess

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// The request bytes each generation of peers writes (docs/libprocess-wire.md §2.5), for a
// message "mesos.internal.Ping" with body "hello" to process "target".
func peerShapes(from, hostport string) []struct{ name, req string } {
	return []struct{ name, req string }{
		{"mesos-0.22-1.11 (empty Host, chunked)", "POST /target/mesos.internal.Ping HTTP/1.1\r\n" +
			"User-Agent: libprocess/" + from + "\r\n" +
			"Libprocess-From: " + from + "\r\n" +
			"Connection: Keep-Alive\r\n" +
			"Host: \r\n" +
			"Transfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n0\r\n\r\n"},
		{"mesos-after-2020 (Host)", "POST /target/mesos.internal.Ping HTTP/1.1\r\n" +
			"User-Agent: libprocess/" + from + "\r\n" +
			"Libprocess-From: " + from + "\r\n" +
			"Connection: Keep-Alive\r\n" +
			"Host: " + hostport + "\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n0\r\n\r\n"},
		{"mesos-before-0.22 (HTTP/1.0 chunked)", "POST /target/mesos.internal.Ping HTTP/1.0\r\n" +
			"User-Agent: libprocess/" + from + "\r\n" +
			"Connection: Keep-Alive\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n0\r\n\r\n"},
		{"mesos-go (Content-Length)", "POST /target/mesos.internal.Ping HTTP/1.1\r\n" +
			"Host: " + hostport + "\r\n" +
			"User-Agent: Go-http-client/1.1\r\n" +
			"Content-Length: 5\r\n" +
			"Content-Type: application/x-protobuf\r\n" +
			"Libprocess-From: " + from + "\r\n" +
			"Accept-Encoding: gzip\r\n\r\n" +
			"hello"},
	}
}

func TestInboundPeerShapes(t *testing.T) {
	rt := startRuntime(t)
	rec := spawnRecorder(t, rt, "target", "mesos.internal.Ping")
	const from = "scheduler-1@10.0.0.7:5050"
	wantFrom := UPID{ID: "scheduler-1", Host: "10.0.0.7", Port: 5050}
	for _, shape := range peerShapes(from, rt.Addr().HostPort()) {
		t.Run(shape.name, func(t *testing.T) {
			c := dialRaw(t, rt)
			// Three messages pipelined in one write.
			c.write(strings.Repeat(shape.req, 3))
			for i := 0; i < 3; i++ {
				resp := c.read()
				if resp.StatusLine != "HTTP/1.1 202 Accepted" {
					t.Fatalf("response %d: status line %q, want %q", i, resp.StatusLine, "HTTP/1.1 202 Accepted")
				}
				if len(resp.Body) != 0 || resp.Header.Get("Content-Length") != "0" {
					t.Fatalf("response %d: body %q Content-Length %q; want empty body, Content-Length 0", i, resp.Body, resp.Header.Get("Content-Length"))
				}
				if resp.Header.Get("Date") == "" {
					t.Fatalf("response %d: no Date header", i)
				}
				m := rec.next(t)
				if m.From != wantFrom || m.Name != "mesos.internal.Ping" || string(m.Body) != "hello" {
					t.Fatalf("message %d: got from=%v name=%q body=%q", i, m.From, m.Name, m.Body)
				}
				if m.To != rec.Self() {
					t.Fatalf("message %d: To = %v, want %v", i, m.To, rec.Self())
				}
			}
		})
	}
}

func TestInboundEmptyBodyAndNestedName(t *testing.T) {
	rt := startRuntime(t)
	rec := spawnRecorder(t, rt, "slave(1)", "a/b/c")
	c := dialRaw(t, rt)
	// Empty body: no body headers at all (docs/libprocess-wire.md §2.5); percent-encoded id.
	c.write("POST /slave%281%29/a/b/c HTTP/1.1\r\nUser-Agent: libprocess/x@1.2.3.4:5\r\nLibprocess-From: x@1.2.3.4:5\r\nConnection: Keep-Alive\r\nHost: \r\n\r\n")
	if resp := c.read(); resp.Status != 202 {
		t.Fatalf("status %q, want 202", resp.StatusLine)
	}
	m := rec.next(t)
	if m.Name != "a/b/c" || len(m.Body) != 0 {
		t.Fatalf("got name %q body %q", m.Name, m.Body)
	}
}

func TestInboundStatuses(t *testing.T) {
	rt := startRuntime(t)
	rec := spawnRecorder(t, rt, "target", "m")
	cases := []struct {
		name       string
		req        string
		wantStatus string
		closes     bool
	}{
		{"unknown process", "POST /nobody/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 404 Not Found", false},
		{"existing process, unhandled name", "POST /target/unknown.Name HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 202 Accepted", false},
		// C++ libprocess cannot parse this target and drops the
		// connection; the request is framed, so it is answered as C++
		// answers "*" (docs/libprocess-wire.md §2.4) and the connection goes on.
		{"message path without leading slash", "POST target/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 400 Bad Request", false},
		// C++ delivers with the empty UPID as sender and answers 202.
		{"malformed Libprocess-From", "POST /target/m HTTP/1.1\r\nLibprocess-From: not-a-upid\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 202 Accepted", false},
		{"empty Libprocess-From", "POST /target/m HTTP/1.1\r\nLibprocess-From: \r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 202 Accepted", false},
		// A body that cannot be read is answered 500 (docs/libprocess-wire.md §2.4).
		{"bad chunk size", "POST /target/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:1\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "HTTP/1.1 500 Internal Server Error", true},
		{"chunk without CRLF", "POST /target/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:1\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", "HTTP/1.1 500 Internal Server Error", true},
		{"oversized Content-Length", fmt.Sprintf("POST /target/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 1<<30), "HTTP/1.1 413 Request Entity Too Large", true},
		{"oversized chunk", "POST /target/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:1\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\n", "HTTP/1.1 413 Request Entity Too Large", true},
		{"garbage request line", "HELLO\r\n\r\n", "HTTP/1.1 400 Bad Request", true},
		{"HTTP/2.0 message", "POST /target/m HTTP/2.0\r\nLibprocess-From: a@1.2.3.4:1\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, rt)
			c.write(tc.req)
			resp := c.read()
			if resp.StatusLine != tc.wantStatus {
				t.Fatalf("status line %q, want %q (body %q)", resp.StatusLine, tc.wantStatus, resp.Body)
			}
			if tc.closes {
				c.expectClosed()
			} else {
				// The connection stays usable.
				c.write("POST /target/m HTTP/1.1\r\nLibprocess-From: ok@1.2.3.4:1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
				if r := c.read(); r.Status != 202 {
					t.Fatalf("follow-up message: %q", r.StatusLine)
				}
			}
		})
	}
	// Read what the recorder got up to a last message, queued after every
	// message above was answered (so handled after them, the mailbox
	// being in order): the malformed senders arrive with the empty UPID,
	// as in C++.
	last := dialRaw(t, rt)
	last.write("POST /target/m HTTP/1.1\r\nLibprocess-From: last@1.2.3.4:1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if r := last.read(); r.Status != 202 {
		t.Fatalf("last message: %q", r.StatusLine)
	}
	sawEmpty := 0
	for {
		m := rec.next(t)
		if m.From.ID == "last" {
			break
		}
		if m.From.IsZero() {
			sawEmpty++
		}
	}
	if sawEmpty != 2 {
		t.Fatalf("messages with the empty sender: %d, want 2", sawEmpty)
	}
	// And the server still serves new connections.
	c := dialRaw(t, rt)
	c.write("GET /help/target HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); r.Status != 404 {
		t.Fatalf("/help/target (no routes) = %q, want 404", r.StatusLine)
	}
	if got := rt.Snapshot()["libprocess/messages_bad_sender"]; got != 2 {
		t.Fatalf("libprocess/messages_bad_sender = %v, want 2", got)
	}
}

func TestInboundPeerIPMatch(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.RequirePeerAddressIPMatch = true })
	rec := spawnRecorder(t, rt, "target", "m")
	c := dialRaw(t, rt)
	c.write("POST /target/m HTTP/1.1\r\nLibprocess-From: a@10.9.9.9:1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	resp := c.read()
	if resp.Status != 400 || !strings.Contains(string(resp.Body), "a@10.9.9.9:1") || !strings.Contains(string(resp.Body), "127.0.0.1") {
		t.Fatalf("mismatched IP: %q %q, want 400 naming both", resp.StatusLine, resp.Body)
	}
	c.write("POST /target/m HTTP/1.1\r\nLibprocess-From: a@127.0.0.1:1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if resp := c.read(); resp.Status != 202 {
		t.Fatalf("matching IP: %q, want 202", resp.StatusLine)
	}
	if m := rec.next(t); m.From.Host != "127.0.0.1" {
		t.Fatalf("delivered from %v", m.From)
	}
}

// A connection that starts with messages and then sends ordinary HTTP is
// handed to the HTTP server without losing or reordering anything.
func TestInboundMessageThenHTTP(t *testing.T) {
	rt := startRuntime(t)
	rec := spawnRecorder(t, rt, "target", "m")
	rec.Route("hello", Help{TLDR: "says hello"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "hello "+req.URL.Query().Get("who")))
	})
	c := dialRaw(t, rt)
	msg := "POST /target/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:1\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
	get := "GET /target/hello?who=peer HTTP/1.1\r\nHost: x\r\n\r\n"
	c.write(msg + msg + get + get)
	for i, want := range []int{202, 202, 200, 200} {
		resp := c.read()
		if resp.Status != want {
			t.Fatalf("response %d: %q, want %d", i, resp.StatusLine, want)
		}
		if want == 200 && string(resp.Body) != "hello peer" {
			t.Fatalf("response %d body %q", i, resp.Body)
		}
	}
	rec.next(t)
	rec.next(t)
}

// After ordinary HTTP, messages in every peer shape are still served on
// the same connection, pipelined with HTTP requests, answers in order.
func TestInboundHTTPThenLegacyMessages(t *testing.T) {
	rt := startRuntime(t)
	rec := spawnRecorder(t, rt, "target", "mesos.internal.Ping")
	rec.Route("hello", Help{TLDR: "says hello"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "hello"))
	})
	shapes := peerShapes("a@1.2.3.4:5", rt.Addr().HostPort())
	get := "GET /target/hello HTTP/1.1\r\nHost: x\r\n\r\n"
	post := "POST /target/hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	c := dialRaw(t, rt)
	var req strings.Builder
	var want []int
	for _, s := range shapes {
		req.WriteString(get + s.req + post)
		want = append(want, 200, 202, 200)
	}
	c.write(req.String())
	for i, w := range want {
		resp := c.read()
		if resp.Status != w {
			t.Fatalf("response %d: %q, want %d", i, resp.StatusLine, w)
		}
	}
	for range shapes {
		if m := rec.next(t); string(m.Body) != "hello" {
			t.Fatalf("body %q", m.Body)
		}
	}
}

// Hundreds of 1 KiB messages pipelined in one write span many buffer
// refills and compactions; each must arrive whole and in order.
func TestInboundLargePipelinedBatch(t *testing.T) {
	rt := startRuntime(t)
	rec := spawnRecorder(t, rt, "target", "bulk")
	const n = 300
	var req strings.Builder
	for i := 0; i < n; i++ {
		body := strings.Repeat(fmt.Sprintf("%04d", i), 250)
		fmt.Fprintf(&req, "POST /target/bulk HTTP/1.1\r\nUser-Agent: libprocess/a@1.2.3.4:5\r\nLibprocess-From: a@1.2.3.4:5\r\nConnection: Keep-Alive\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
		if i%2 == 1 { // and some with Content-Length
			fmt.Fprintf(&req, "POST /target/bulk HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:5\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	}
	c := dialRaw(t, rt)
	// The batch is larger than the socket buffers, so it is written while
	// the answers are read; the writer reports to the test's goroutine
	// (t.Fatalf must not be called from any other).
	wrote := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c.Conn, req.String())
		wrote <- err
	}()
	total := n + n/2
	for i := 0; i < total; i++ {
		if r := c.read(); r.Status != 202 {
			t.Fatalf("response %d: %q %q", i, r.StatusLine, r.Body)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("writing the batch: %v", err)
	}
	for i := 0; i < n; i++ {
		want := strings.Repeat(fmt.Sprintf("%04d", i), 250)
		copies := 1 + i%2
		for k := 0; k < copies; k++ {
			m := rec.next(t)
			if string(m.Body) != want || m.From.String() != "a@1.2.3.4:5" {
				t.Fatalf("message %d.%d: from %v body %.20q…", i, k, m.From, m.Body)
			}
		}
	}
}

// Idle connections hold small buffers: a server with many keep-alive
// clients must not pay a busy peer's 64 KiB read buffer for each.
func TestIdleConnectionMemory(t *testing.T) {
	rt := startRuntime(t)
	spawnRecorder(t, rt, "target", "m")
	const n = 300
	// Signed, so a heap that shrank (garbage of earlier tests collected)
	// reads as no growth rather than wrapping around; divided by n, so
	// unrelated allocations elsewhere in the binary are a rounding error.
	measure := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapInuse + ms.StackInuse)
	}
	open := func(i int) {
		c := dialRaw(t, rt)
		// Half stay message connections, half become HTTP ones.
		if i%2 == 0 {
			c.write("POST /target/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:5\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		} else {
			c.write("GET /help HTTP/1.1\r\nHost: x\r\n\r\n")
		}
		c.read()
	}
	// Warm up first: the first connections pay one-time costs (pools,
	// the HTTP server's state, the race detector's) that are not per
	// connection and made the measure swing tenfold between runs.
	for i := 0; i < 20; i++ {
		open(i)
	}
	before := measure()
	for i := 0; i < n; i++ {
		open(i)
	}
	perConn := (measure() - before) / n
	t.Logf("%d bytes per idle connection (both sides of the loopback)", perConn)
	if perConn > 48<<10 {
		t.Fatalf("%d bytes per idle connection; want well under a 64 KiB read buffer", perConn)
	}
}
