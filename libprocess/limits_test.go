package libprocess

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tests of the inbound limits: what each connection may hold and for how
// long. They drive real sockets with the bytes a peer (or an attacker)
// writes.

// waitMetric polls the runtime's snapshot until metric satisfies ok; the
// value is runtime state, so polling with a deadline is the signal.
func waitMetric(t testing.TB, rt *Runtime, metric string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, found := rt.Snapshot()[metric]
		if found && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s = %v (present %v) after 10s", metric, v, found)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func equals(n float64) func(float64) bool { return func(v float64) bool { return v == n } }

// messageHead is a message head declaring a Content-Length body.
func messageHead(target string, cl int) string {
	return "POST " + target + " HTTP/1.1\r\nLibprocess-From: a@127.0.0.1:1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(cl) + "\r\n\r\n"
}

// Defect: a head declaring Content-Length: 16777216 made the codec
// allocate the whole body before any of it arrived. Bodies now grow with
// the bytes that arrive.
func TestInboundBodyGrowsWithArrivingBytes(t *testing.T) {
	rt := startRuntime(t)
	spawnRecorder(t, rt, "target", "m")
	const conns = 24
	// Measured per connection in bytes ever allocated (TotalAlloc), which
	// no collection can hide and which other goroutines barely move: the
	// defect allocated 16 MiB per connection, the fix a few KiB.
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < conns; i++ {
		c := dialRaw(t, rt)
		c.write(messageHead("/target/m", 16<<20) + strings.Repeat("b", 100))
	}
	// Each connection holds the first piece of its body, no more.
	held := waitMetric(t, rt, "libprocess/inbound_body_bytes", equals(conns*minBodyAlloc))
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perConn := (after.TotalAlloc - before.TotalAlloc) / conns
	t.Logf("%d bytes allocated per connection", perConn)
	if perConn > 2<<20 {
		t.Fatalf("%d KiB allocated per connection that sent 100 of 16 MiB body bytes (%v budget bytes held)", perConn>>10, held)
	}
}

// The bytes held for bodies still being read have one budget across all
// connections: a body that needs more waits (its connection is not read)
// until budget frees up, and is answered 503 if none does before its
// deadline.
func TestInboundBodyBudgetBackpressure(t *testing.T) {
	const budget = 64 << 10
	rt := startRuntime(t, func(c *Config) {
		c.MaxMessageSize = budget
		c.BufferedBodyLimit = budget
		c.InboundBodyBudget = budget
		c.ReadTimeout = 3 * time.Second
	})
	rec := spawnRecorder(t, rt, "target", "m")
	rec.Route("len", Help{TLDR: "body length"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, strconv.Itoa(len(req.Body))))
	})

	// A holds nearly the whole budget with an unfinished body.
	a := dialRaw(t, rt)
	a.write(messageHead("/target/m", budget) + strings.Repeat("a", budget-100))
	waitMetric(t, rt, "libprocess/inbound_body_bytes", equals(budget))
	// B's whole message has arrived but it cannot be held: B waits.
	b := dialRaw(t, rt)
	b.write(messageHead("/target/m", 10<<10) + strings.Repeat("b", 10<<10))
	waitMetric(t, rt, "libprocess/inbound_body_budget_waits", equals(1))
	// So does an HTTP request whose body the runtime buffers for its route.
	h := dialRaw(t, rt)
	h.write("POST /target/len HTTP/1.1\r\nHost: x\r\nContent-Length: 10240\r\n\r\n" + strings.Repeat("h", 10<<10))
	waitMetric(t, rt, "libprocess/inbound_body_budget_waits", equals(2))
	select {
	case m := <-rec.got:
		t.Fatalf("a message was delivered while the budget was exhausted: %d bytes", len(m.Body))
	default:
	}
	// A finishes: its message is delivered, its budget freed, and B goes on.
	a.write(strings.Repeat("a", 100))
	if r := a.read(); r.Status != 202 {
		t.Fatalf("A: %q", r.StatusLine)
	}
	if r := b.read(); r.Status != 202 {
		t.Fatalf("B after A finished: %q", r.StatusLine)
	}
	if r := h.read(); r.Status != 200 || string(r.Body) != "10240" {
		t.Fatalf("HTTP request after A finished: %q %q", r.StatusLine, r.Body)
	}
	// Both are delivered; two connections promise no order between them.
	got := []int{len(rec.next(t).Body), len(rec.next(t).Body)}
	slices.Sort(got)
	if got[0] != 10<<10 || got[1] != budget {
		t.Fatalf("delivered bodies of %v bytes, want B's %d and A's %d", got, 10<<10, budget)
	}
	waitMetric(t, rt, "libprocess/inbound_body_bytes", equals(0))

	// Now A stalls for good while B waits. B's request began first (its
	// head took the first piece of its body's budget), so its deadline
	// comes first: B gets 503 at it, then A 408 at its own.
	b2 := dialRaw(t, rt)
	b2.write(messageHead("/target/m", 10<<10))
	waitMetric(t, rt, "libprocess/inbound_body_bytes", equals(minBodyAlloc))
	// Not synchronisation: keeps B's deadline well before A's, so A's
	// budget cannot come back in time for B.
	time.Sleep(500 * time.Millisecond)
	a2 := dialRaw(t, rt)
	a2.write(messageHead("/target/m", budget-minBodyAlloc) + strings.Repeat("a", budget-minBodyAlloc-100))
	waitMetric(t, rt, "libprocess/inbound_body_bytes", equals(budget))
	b2.write(strings.Repeat("b", 10<<10))
	waitMetric(t, rt, "libprocess/inbound_body_budget_waits", equals(3))
	if r := b2.read(); r.Status != 503 || !strings.Contains(string(r.Body), "budget") {
		t.Fatalf("B at its deadline with the budget exhausted: %q %q", r.StatusLine, r.Body)
	}
	b2.expectClosed()
	if v := rt.Snapshot()["libprocess/inbound_body_budget_rejected"]; v != 1 {
		t.Fatalf("inbound_body_budget_rejected = %v, want 1", v)
	}
	// A itself misses its read deadline: 408, and its bytes come back.
	if r := a2.read(); r.Status != 408 {
		t.Fatalf("stalled body at its deadline: %q", r.StatusLine)
	}
	waitMetric(t, rt, "libprocess/inbound_body_bytes", equals(0))
	select {
	case m := <-rec.got:
		t.Fatalf("a message was delivered from the stalled connections: %d bytes", len(m.Body))
	default:
	}
}

// drip writes one byte of s every interval until the server closes the
// connection or s is exhausted, then returns.
func drip(c net.Conn, s string, interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; i < len(s); i++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if _, err := c.Write([]byte{s[i]}); err != nil {
			return
		}
	}
}

// Defect: the read deadline was re-armed before every read, so a head (or
// body) dribbled a byte at a time never timed out. The deadline is now
// armed once, at the request's first byte.
func TestInboundSlowDripTimesOut(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.ReadTimeout = 500 * time.Millisecond })
	spawnRecorder(t, rt, "target", "m")
	for _, tc := range []struct{ name, first, rest string }{
		{"head", "POST /target/m HTTP/1.1\r\n", strings.Repeat("X-Drip: 1\r\n", 1000)},
		{"body", messageHead("/target/m", 1000), strings.Repeat("b", 1000)},
		{"http head", "GET /help HTTP/1.1\r\n", strings.Repeat("X-Drip: 1\r\n", 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, rt)
			c.write(tc.first)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { defer close(done); drip(c.Conn, tc.rest, 50*time.Millisecond, stop) }()
			defer func() { close(stop); <-done }()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			r, err := readResponse(c.r)
			if err != nil {
				t.Fatalf("no answer before the connection ended: %v", err)
			}
			if r.Status != 408 {
				t.Fatalf("dripping %s: %q, want 408", tc.name, r.StatusLine)
			}
			c.expectClosed()
		})
	}
	if v := rt.Snapshot()["libprocess/request_read_timeouts"]; v != 3 {
		t.Fatalf("request_read_timeouts = %v, want 3", v)
	}
}

// Connections that carried only HTTP are closed after IdleTimeout;
// connections that carried a message, or nothing yet (a C++ peer that
// linked to a process holds one without writing), are kept: closing them
// reads as the linked process exiting.
func TestInboundIdleTimeouts(t *testing.T) {
	if d := DefaultConfig(); d.IdleTimeout <= 0 || d.MessageIdleTimeout != 0 {
		t.Fatalf("defaults: IdleTimeout %v (want > 0), MessageIdleTimeout %v (want 0: kept)", d.IdleTimeout, d.MessageIdleTimeout)
	}
	const idle = 150 * time.Millisecond
	rt := startRuntime(t, func(c *Config) { c.IdleTimeout = idle })
	spawnRecorder(t, rt, "target", "m")
	msg := messageHead("/target/m", 2) + "hi"

	httpOnly := dialRaw(t, rt)
	httpOnly.write("GET /help HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := httpOnly.read(); r.Status != 200 {
		t.Fatalf("GET /help: %q", r.StatusLine)
	}
	messages := dialRaw(t, rt)
	messages.write(msg)
	if r := messages.read(); r.Status != 202 {
		t.Fatalf("message: %q", r.StatusLine)
	}
	linked := dialRaw(t, rt)

	httpOnly.expectClosed()
	waitMetric(t, rt, "libprocess/connections_idle_closed", equals(1))
	// Well past the idle timeout, the others still serve.
	time.Sleep(4 * idle)
	for name, c := range map[string]*rawConn{"message connection": messages, "silent connection": linked} {
		c.write(msg)
		if r := c.read(); r.Status != 202 {
			t.Fatalf("%s after idling: %q", name, r.StatusLine)
		}
	}
}

// At MaxInboundConnections a new connection is closed at once and counted;
// accepting goes on, and a freed slot is used again.
func TestInboundConnectionCap(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.MaxInboundConnections = 2 })
	spawnRecorder(t, rt, "target", "m")
	msg := messageHead("/target/m", 2) + "hi"
	first, second := dialRaw(t, rt), dialRaw(t, rt)
	for _, c := range []*rawConn{first, second} {
		c.write(msg)
		if r := c.read(); r.Status != 202 {
			t.Fatalf("message: %q", r.StatusLine)
		}
	}
	third := dialRaw(t, rt)
	third.expectClosed()
	waitMetric(t, rt, "libprocess/connections_refused", equals(1))
	first.Close()
	waitMetric(t, rt, "libprocess/connections_inbound", equals(1))
	fourth := dialRaw(t, rt)
	fourth.write(msg)
	if r := fourth.read(); r.Status != 202 {
		t.Fatalf("after a slot freed: %q", r.StatusLine)
	}
	if v := rt.Snapshot()["libprocess/connections_inbound_max"]; v != 2 {
		t.Fatalf("connections_inbound_max = %v", v)
	}
}

func TestDefaultMaxConnsLeavesDescriptors(t *testing.T) {
	var rl = defaultMaxConns()
	if rl < 1 {
		t.Fatalf("defaultMaxConns() = %d", rl)
	}
	rt := startRuntime(t)
	if v := rt.Snapshot()["libprocess/connections_inbound_max"]; v != float64(rl) {
		t.Fatalf("connections_inbound_max = %v, want %d", v, rl)
	}
}

// Defect: TLS handshakes had no deadline; a partial ClientHello held its
// connection forever.
func TestTLSHandshakeDeadline(t *testing.T) {
	pki := newTestPKI(t)
	for _, downgrade := range []bool{false, true} {
		t.Run(fmt.Sprintf("downgrade=%v", downgrade), func(t *testing.T) {
			rt := startRuntime(t, pki.config(downgrade, false), func(c *Config) { c.TLSHandshakeTimeout = 1500 * time.Millisecond })
			spawnRecorder(t, rt, "target", "m")
			// A TLS record header announcing a ClientHello, then silence.
			partial := dialRaw(t, rt)
			partial.write("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
			partial.expectClosed()
			silent := dialRaw(t, rt)
			silent.expectClosed()
			waitMetric(t, rt, "libprocess/tls_handshake_failures", equals(2))
			// A real handshake still works.
			if resp, err := sendTLS(t, rt.Addr().HostPort(), &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.clientCert}}); err != nil || resp.Status != 202 {
				t.Fatalf("TLS message: %v %q", err, resp.StatusLine)
			}
		})
	}
}

// LIBPROCESS_SSL_REQUIRE_CERT with LIBPROCESS_SSL_SUPPORT_DOWNGRADE would
// let plaintext peers past the certificate requirement: refused.
func TestTLSRequireCertWithDowngradeRefused(t *testing.T) {
	cfg := DefaultConfig()
	err := cfg.ApplyEnv(fakeEnv(map[string]string{
		"LIBPROCESS_SSL_ENABLED": "true", "LIBPROCESS_SSL_REQUIRE_CERT": "true", "LIBPROCESS_SSL_SUPPORT_DOWNGRADE": "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.validate()
	if err == nil || !strings.Contains(err.Error(), "LIBPROCESS_SSL_REQUIRE_CERT") || !strings.Contains(err.Error(), "LIBPROCESS_SSL_SUPPORT_DOWNGRADE") {
		t.Fatalf("Validate: %v; want an error naming both variables", err)
	}
	if _, err := New(cfg); err == nil {
		t.Fatal("New accepted the combination")
	}
}

// Defect: the codec accepted a bare-LF head and handed it to fasthttp,
// which waited for CRLFCRLF: the GET was never answered and a message
// pipelined behind it was answered first.
func TestInboundBareLFHeadAnsweredInOrder(t *testing.T) {
	rt := startRuntime(t)
	rec := spawnRecorder(t, rt, "target", "m")
	rec.Route("hello", Help{TLDR: "says hello"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "hello "+req.Header().Get("X-Who")))
	})
	c := dialRaw(t, rt)
	c.write("GET /target/hello HTTP/1.1\nHost: x\nX-Who: lf\n\n" +
		"POST /target/m HTTP/1.1\nLibprocess-From: a@1.2.3.4:5\nContent-Length: 2\n\nhi" +
		"POST /target/hello HTTP/1.1\nHost: x\nX-Who: body\nContent-Length: 3\n\nabc" +
		"GET /target/hello HTTP/1.1\r\nHost: x\r\nX-Who: crlf\r\n\r\n")
	for i, want := range []string{"200 hello lf", "202 ", "200 hello body", "200 hello crlf"} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		r := c.read()
		if got := strconv.Itoa(r.Status) + " " + string(r.Body); got != want {
			t.Fatalf("response %d: %q, want %q", i, got, want)
		}
	}
	if m := rec.next(t); string(m.Body) != "hi" {
		t.Fatalf("message body %q", m.Body)
	}
}

// Defect: heads over 4 KiB got 431 from fasthttp, refusing a 6.3 KB JWT.
// MaxHeaderBytes bounds codec and fasthttp alike.
func TestInboundLargeHeadersWithinMaxHeaderBytes(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	p.Route("whoami", Help{TLDR: "token length"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, strconv.Itoa(len(req.Header().Get("Authorization")))))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	token := "Bearer " + strings.Repeat("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9", 180) // 6.5 KB
	c := dialRaw(t, rt)
	c.write("GET /svc/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: " + token + "\r\n\r\n")
	if r := c.read(); r.Status != 200 || string(r.Body) != strconv.Itoa(len(token)) {
		t.Fatalf("6.5 KB token: %q %q", r.StatusLine, r.Body)
	}
	// Just under the limit passes through fasthttp too; over it is 431.
	max := DefaultConfig().MaxHeaderBytes
	line := "GET /svc/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: "
	fill := max - len(line) - len("\r\n\r\n")
	c.write(line + strings.Repeat("a", fill) + "\r\n\r\n")
	if r := c.read(); r.Status != 200 || string(r.Body) != strconv.Itoa(fill) {
		t.Fatalf("head of exactly MaxHeaderBytes: %q %q", r.StatusLine, r.Body)
	}
	c2 := dialRaw(t, rt)
	c2.write(line + strings.Repeat("a", fill+1) + "\r\n\r\n")
	if r := c2.read(); r.Status != 431 {
		t.Fatalf("head over MaxHeaderBytes: %q", r.StatusLine)
	}
}

// Defect: every HTTP request with a small body logged a fasthttp warning
// (Request.Body on a body stream) and counted a connection error.
func TestHTTPSmallBodiesCountNoConnectionErrors(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	p.Route("echo", Help{TLDR: "echoes"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, string(req.Body)))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	for i, body := range []string{"x", "hello", strings.Repeat("z", 9000), strings.Repeat("y", 100000)} {
		c.write("POST /svc/echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
		if r := c.read(); r.Status != 200 || string(r.Body) != body {
			t.Fatalf("request %d: %q, %d bytes back", i, r.StatusLine, len(r.Body))
		}
	}
	c.write("GET /svc/echo HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); r.Status != 200 {
		t.Fatalf("GET: %q", r.StatusLine)
	}
	if v := rt.Snapshot()["libprocess/connection_errors"]; v != 0 {
		t.Fatalf("connection_errors = %v after normal requests, want 0", v)
	}
	if v := rt.Snapshot()["libprocess/inbound_body_bytes"]; v != 0 {
		t.Fatalf("inbound_body_bytes = %v after the bodies were read", v)
	}
}

// Defect: fasthttp's WriteTimeout covered a whole streamed response, so
// output after it was lost. Each write now has its own deadline.
func TestHTTPStreamOutlivesWriteTimeout(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	rt := startRuntime(t, func(c *Config) { c.WriteTimeout = writeTimeout })
	p := NewProcess("svc")
	const lines = 8
	p.Route("check", Help{TLDR: "slow output"}, func(req *Request, respond Responder) {
		pr, pw := io.Pipe()
		respond(Response{Status: 200, Stream: pr})
		go func() {
			tick := time.NewTicker(writeTimeout / 2)
			defer tick.Stop()
			for i := 0; i < lines; i++ {
				<-tick.C
				if _, err := fmt.Fprintf(pw, "line %d\n", i); err != nil {
					return
				}
			}
			pw.Close()
		}()
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	c.write("GET /svc/check HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read()
	if r.Status != 200 || strings.Count(string(r.Body), "\n") != lines {
		t.Fatalf("stream over %v with WriteTimeout %v: %q, body %q", lines*writeTimeout/2, writeTimeout, r.StatusLine, r.Body)
	}
}

// Routes have a deadline: RouteTimeout by default, or the route's own.
// At it the client gets 504 and the request's context is cancelled; a
// streamed response ends.
func TestHTTPRouteDeadline(t *testing.T) {
	const def = 300 * time.Millisecond
	rt := startRuntime(t, func(c *Config) { c.RouteTimeout = def })
	p := NewProcess("svc")
	cancelled := make(chan error, 2)
	p.Route("never", Help{TLDR: "never answers"}, func(req *Request, respond Responder) {
		go func() {
			<-req.Context().Done()
			cancelled <- req.Context().Err()
			respond(TextResponse(200, "too late"))
		}()
	})
	p.Route("long", Help{TLDR: "answers after the default deadline"}, func(req *Request, respond Responder) {
		go func() {
			select {
			case <-time.After(3 * def):
				respond(TextResponse(200, "done"))
			case <-req.Context().Done():
				respond(TextResponse(503, "cancelled"))
			}
		}()
	})
	p.Route("tail", Help{TLDR: "streams forever"}, func(req *Request, respond Responder) {
		pr, pw := io.Pipe()
		respond(Response{Status: 200, Stream: pr})
		go func() {
			for {
				if _, err := io.WriteString(pw, "x\n"); err != nil {
					cancelled <- req.Context().Err()
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	})
	if err := p.SetRouteTimeout("long", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := p.SetRouteTimeout("missing", time.Minute); err == nil {
		t.Fatal("SetRouteTimeout on a missing route succeeded")
	}
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	c.write("GET /svc/never HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); r.Status != 504 {
		t.Fatalf("route that never answers: %q", r.StatusLine)
	}
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("context at the deadline: %v", err)
	}
	// The connection goes on.
	c.write("GET /svc/long HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); r.Status != 200 || string(r.Body) != "done" {
		t.Fatalf("route with its own longer deadline: %q %q", r.StatusLine, r.Body)
	}
	c.write("GET /svc/tail HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := readResponse(c.r); err == nil {
		t.Fatal("an endless stream completed")
	}
	if err := <-cancelled; err == nil {
		t.Fatal("stream ended at its deadline without its context cancelled")
	}
	if v := rt.Snapshot()["libprocess/route_timeouts"]; v != 2 {
		t.Fatalf("route_timeouts = %v, want 2", v)
	}
}

// Defect: a client that shut down its sending side (nc -N) had its
// request cancelled: end-of-stream was taken for a disconnect. Only a
// reset is (TestClientDisconnectCancelsRequestContext).
func TestHTTPHalfClosedClientGetsAnswer(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	release := make(chan struct{})
	entered := make(chan struct{})
	p.Route("slow", Help{TLDR: "answers when released"}, func(req *Request, respond Responder) {
		close(entered)
		go func() {
			<-release
			if req.Context().Err() != nil {
				respond(TextResponse(503, "cancelled"))
				return
			}
			respond(TextResponse(200, "done"))
		}()
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	c.write("GET /svc/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// Give the server several disconnect polls to see the end-of-stream.
	time.Sleep(5 * disconnectPoll)
	close(release)
	if r := c.read(); r.Status != 200 || string(r.Body) != "done" {
		t.Fatalf("half-closed client: %q %q", r.StatusLine, r.Body)
	}
}

// peerReset tells a reset connection from one whose peer only shut down
// its sending side, over real sockets.
func TestPeerResetNotEndOfStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func() (client *net.TCPConn, server net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c.(*net.TCPConn), s
	}
	c, s := pair()
	if peerReset(s) {
		t.Fatal("open connection reported reset")
	}
	c.CloseWrite()
	// The end-of-stream has arrived once a blocking read returns it.
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	peek := bufio.NewReader(s)
	if _, err := peek.Peek(1); err != io.EOF {
		t.Fatalf("after CloseWrite: %v, want EOF", err)
	}
	if peerReset(s) {
		t.Fatal("half-closed connection reported reset")
	}
	c2, s2 := pair()
	c2.SetLinger(0)
	c2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !peerReset(s2) {
		if time.Now().After(deadline) {
			t.Fatal("reset connection not reported within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// resettingConn is the server's side of a real socket whose peer resets
// at the first large batch of answers: that write and every later one
// fail. It counts the bytes the server read.
type resettingConn struct {
	net.Conn
	read  int
	reset bool
}

func (c *resettingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read += n
	return n, err
}

func (c *resettingConn) Write(p []byte) (int, error) {
	if c.reset || len(p) >= maxResponseHold {
		c.reset = true
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: errors.New("connection reset by peer")}
	}
	return c.Conn.Write(p)
}

// As a receiver, every message request already read from a connection is
// served even when writing the answers fails because the peer went away
// (docs/libprocess-wire.md §3.2): a failed write mid-batch must not drop the rest of the
// batch.
func TestInboundServesReadBatchAfterWriteFails(t *testing.T) {
	rt := startRuntime(t)
	spawnRecorder(t, rt, "t", "m")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	const msg = "POST /t/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:5\r\n\r\n"
	const count = 8000
	wrote := make(chan error, 1)
	go func() {
		_, err := io.WriteString(client, strings.Repeat(msg, count))
		if err == nil {
			err = client.(*net.TCPConn).CloseWrite()
		}
		wrote <- err
	}()
	conn := &resettingConn{Conn: raw}
	before := rt.Snapshot()["libprocess/messages_received"]
	mc := newMsgConn(rt.server, conn)
	mc.pump()
	if !conn.reset {
		t.Fatal("no batch of answers reached the reset")
	}
	complete := conn.read / len(msg)
	got := int(rt.Snapshot()["libprocess/messages_received"] - before)
	if got != complete {
		t.Fatalf("%d messages delivered of the %d complete ones read before the connection ended", got, complete)
	}
	raw.Close()
	<-wrote
}

// A body streamed to a route is read within the route's deadline, not
// ReadTimeout: a slow upload the route is consuming is not cut.
func TestHTTPStreamedUploadOutlivesReadTimeout(t *testing.T) {
	const readTimeout = 200 * time.Millisecond
	rt := startRuntime(t, func(c *Config) { c.ReadTimeout = readTimeout; c.BufferedBodyLimit = 1024 })
	p := NewProcess("up")
	p.Route("load", Help{TLDR: "counts body bytes"}, func(req *Request, respond Responder) {
		go func() {
			n, err := io.Copy(io.Discard, req.BodyStream)
			if err != nil {
				respond(TextResponse(500, err.Error()))
				return
			}
			respond(TextResponse(200, strconv.FormatInt(n, 10)))
		}()
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	const pieces, size = 8, 2000
	c.write("POST /up/load HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(pieces*size) + "\r\n\r\n")
	tick := time.NewTicker(readTimeout / 2)
	defer tick.Stop()
	for i := 0; i < pieces; i++ {
		<-tick.C
		c.write(strings.Repeat("u", size))
	}
	if r := c.read(); r.Status != 200 || string(r.Body) != strconv.Itoa(pieces*size) {
		t.Fatalf("upload over %v with ReadTimeout %v: %q %q", pieces*readTimeout/2, readTimeout, r.StatusLine, r.Body)
	}
}

// A request that reached its deadline while waiting in a busy process'
// mailbox is answered 504 and its handler never runs.
func TestHTTPRouteDeadlineWhileQueued(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.RouteTimeout = 200 * time.Millisecond })
	p := NewProcess("svc")
	release := make(chan struct{})
	entered := make(chan struct{})
	var ran int
	p.Route("count", Help{TLDR: "counts runs"}, func(req *Request, respond Responder) {
		ran++
		respond(TextResponse(200, "ran"))
	})
	p.Route("ping", Help{TLDR: "pong"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, strconv.Itoa(ran)))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	// Something else keeps the process busy: the request must queue.
	if err := p.Dispatch(func() { close(entered); <-release }); err != nil {
		t.Fatal(err)
	}
	<-entered
	queued := dialRaw(t, rt)
	queued.write("GET /svc/count HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := queued.read(); r.Status != 504 {
		t.Fatalf("queued request at its deadline: %q", r.StatusLine)
	}
	close(release)
	// The process serves its mailbox in order: once ping answers, the
	// queued request has been taken out.
	c := dialRaw(t, rt)
	c.write("GET /svc/ping HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); r.Status != 200 || string(r.Body) != "0" {
		t.Fatalf("ping: %q; the abandoned request's handler ran %q times", r.StatusLine, r.Body)
	}
}

func TestConfigInboundLimits(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"MaxHeaderBytes too small":       func(c *Config) { c.MaxHeaderBytes = 100 },
		"MaxHeaderBytes over 64 KiB":     func(c *Config) { c.MaxHeaderBytes = 65<<10 + 1 },
		"negative MaxInboundConnections": func(c *Config) { c.MaxInboundConnections = -1 },
		"zero InboundBodyBudget":         func(c *Config) { c.InboundBodyBudget = 0 },
		"negative MessageIdleTimeout":    func(c *Config) { c.MessageIdleTimeout = -time.Second },
		"zero TLSHandshakeTimeout":       func(c *Config) { c.TLSHandshakeTimeout = 0 },
		"zero RouteTimeout":              func(c *Config) { c.RouteTimeout = 0 },
	} {
		cfg := DefaultConfig()
		mutate(&cfg)
		if err := cfg.validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
	// A message limit above the budget raises the budget rather than
	// failing: one message of the largest size can always be read.
	rt := startRuntime(t, func(c *Config) { c.MaxMessageSize = 512 << 20 })
	if v := rt.Snapshot()["libprocess/inbound_body_budget"]; v != 512<<20 {
		t.Fatalf("inbound_body_budget = %v, want MaxMessageSize", v)
	}
}

// Empty lines some clients send after a request start no request: the
// connection then waits as idle, not under a request deadline, and the
// next request gets a deadline of its own.
func TestInboundEmptyLinesBetweenRequestsAreIdle(t *testing.T) {
	const readTimeout = 500 * time.Millisecond
	rt := startRuntime(t, func(c *Config) { c.ReadTimeout = readTimeout })
	rec := spawnRecorder(t, rt, "target", "m")
	rec.Route("hello", Help{TLDR: "says hello"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "hello"))
	})
	c := dialRaw(t, rt)
	c.write("POST /target/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	if r := c.read(); r.Status != 200 {
		t.Fatalf("first request: %q", r.StatusLine)
	}
	c.write("\r\n")
	time.Sleep(3 * readTimeout)
	// The next head in two pieces, so it needs a read under its deadline.
	c.write("GET /target/hello HTTP/1.1\r\n")
	time.Sleep(readTimeout / 10)
	c.write("Host: x\r\n\r\n")
	if r := c.read(); r.Status != 200 {
		t.Fatalf("request after an idle wait that followed an empty line: %q", r.StatusLine)
	}
}

// slowReader reads at most 64 KiB at a time, pausing before each read: a
// client on a slow link.
type slowReader struct {
	r     io.Reader
	pause time.Duration
}

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.pause)
	return s.r.Read(p[:min(len(p), 64<<10)])
}

// WriteTimeout bounds each piece of a response, not a whole large body: a
// client that keeps taking bytes gets all of it.
func TestHTTPLargeBodyToSlowClient(t *testing.T) {
	// The kernel wakes a blocked writer only once much of its send buffer
	// (up to 4 MiB) has drained: a piece may wait a few hundred ms.
	const writeTimeout = 1500 * time.Millisecond
	rt := startRuntime(t, func(c *Config) { c.WriteTimeout = writeTimeout })
	p := NewProcess("svc")
	body := []byte(strings.Repeat("0123456789abcdef", 12<<20/16))
	p.Route("big", Help{TLDR: "12 MiB"}, func(req *Request, respond Responder) {
		respond(Response{Status: 200, Header: map[string][]string{"Content-Type": {"application/octet-stream"}}, Body: body})
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
	}}
	c, err := d.Dial("tcp", rt.Addr().HostPort())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, "GET /svc/big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := readResponse(bufio.NewReaderSize(slowReader{r: c, pause: 5 * time.Millisecond}, 64<<10))
	t.Logf("12 MiB read in %v", time.Since(start))
	if err != nil || r.Status != 200 || len(r.Body) != len(body) {
		t.Fatalf("12 MiB to a slow client with WriteTimeout %v: %v %q, %d bytes", writeTimeout, err, r.StatusLine, len(r.Body))
	}
}

// Empty lines between requests are bounded like a head: an endless run of
// them is refused, not read forever.
func TestInboundEndlessEmptyLinesRefused(t *testing.T) {
	rt := startRuntime(t)
	c := dialRaw(t, rt)
	line := strings.Repeat("\r\n", 1024)
	for i := 0; i < 2*DefaultConfig().MaxHeaderBytes/len(line)+1; i++ {
		if _, err := io.WriteString(c.Conn, line); err != nil {
			break // refused and closed already
		}
	}
	if r, err := readResponse(c.r); err != nil || r.Status != 431 {
		t.Fatalf("endless empty lines: %v %q, want 431", err, r.StatusLine)
	}
}

// A message's body keeps its share of the body budget while it waits in
// its receiver's mailbox, until the handler returns: a process that does
// not keep up makes its senders' connections wait (TCP pushes back)
// instead of piling bodies up in memory.
func TestInboundBodyBudgetHeldUntilHandled(t *testing.T) {
	const budget = 64 << 10
	rt := startRuntime(t, func(c *Config) {
		c.MaxMessageSize = budget
		c.BufferedBodyLimit = budget
		c.InboundBodyBudget = budget
	})
	gate := make(chan struct{})
	handled := make(chan int, 4)
	p := NewProcess("slow")
	p.Install("m", func(m *Message) {
		<-gate
		handled <- len(m.Body)
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	const size = 40 << 10
	c := dialRaw(t, rt)
	c.write(messageHead("/slow/m", size) + strings.Repeat("a", size))
	if r := c.read(); r.Status != 202 {
		t.Fatalf("first message: %q", r.StatusLine)
	}
	// Delivered and in the handler, which waits: its body still holds its
	// budget, so the second body cannot be held and its connection waits.
	waitMetric(t, rt, "libprocess/inbound_body_bytes", equals(size))
	c.write(messageHead("/slow/m", size) + strings.Repeat("b", size))
	waitMetric(t, rt, "libprocess/inbound_body_budget_waits", equals(1))
	close(gate)
	if r := c.read(); r.Status != 202 {
		t.Fatalf("second message once the first was handled: %q", r.StatusLine)
	}
	for i := 0; i < 2; i++ {
		if n := <-handled; n != size {
			t.Fatalf("handled a body of %d bytes, want %d", n, size)
		}
	}
	waitMetric(t, rt, "libprocess/inbound_body_bytes", equals(0))
}
