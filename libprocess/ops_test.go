package libprocess

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/procpanda/procpanda/internal/testlog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// serveUnix adds an HTTP-only unix socket listener to rt.
func serveUnix(t *testing.T, rt *Runtime) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.ServeHTTPOn(ln); err != nil {
		t.Fatal(err)
	}
	return path
}

func dialUnix(t *testing.T, path string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
}

// TestServeHTTPOnUnixSocketRefusesMessages drives the exact bytes a
// reverse proxy and a libprocess peer send over a unix socket: HTTP is
// routed (delegate included), a message is read, answered 403 and not
// delivered, and the same connection goes on serving HTTP.
func TestServeHTTPOnUnixSocketRefusesMessages(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.Delegate = "target" })
	rec := spawnRecorder(t, rt, "target", "m")
	rec.Route("hello", Help{TLDR: "hi"}, func(req *Request, respond Responder) {
		respond(TextResponse(http.StatusOK, "hello "+req.URL.Path))
	})
	path := serveUnix(t, rt)

	c := dialUnix(t, path)
	c.write("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if r := c.read(); r.Status != 200 || string(r.Body) != "hello /target/hello" {
		t.Fatalf("delegated GET over the unix socket: %d %q", r.Status, r.Body)
	}
	c.write("POST /target/m HTTP/1.1\r\nUser-Agent: libprocess/x@1.2.3.4:5\r\nLibprocess-From: x@1.2.3.4:5\r\nHost: \r\nContent-Length: 5\r\n\r\nfirst")
	if r := c.read(); r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "not accepted") {
		t.Fatalf("message over the unix socket: %d %q, want 403", r.Status, r.Body)
	}
	c.write("GET /target/hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if r := c.read(); r.Status != 200 {
		t.Fatalf("HTTP after a refused message on the same connection: %d", r.Status)
	}
	// The same message over TCP is delivered, and is the first the
	// process sees: the refused one never reached its mailbox.
	tc := dialRaw(t, rt)
	tc.write("POST /target/m HTTP/1.1\r\nLibprocess-From: x@1.2.3.4:5\r\nHost: \r\nContent-Length: 6\r\n\r\nsecond")
	if r := tc.read(); r.Status != http.StatusAccepted {
		t.Fatalf("message over TCP: %d", r.Status)
	}
	if m := rec.next(t); string(m.Body) != "second" {
		t.Fatalf("first delivered message %q, want the TCP one", m.Body)
	}
	if got := rt.Snapshot()["libprocess/messages_refused_http_only"]; got != 1 {
		t.Fatalf("libprocess/messages_refused_http_only = %v, want 1", got)
	}
}

// TestServeHTTPOnSharesLimitsAndShutdown checks that unix connections
// count against MaxInboundConnections with TCP ones, and that Shutdown
// closes the extra listener.
func TestServeHTTPOnSharesLimitsAndShutdown(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IP = "127.0.0.1"
	cfg.MaxInboundConnections = 1
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.ServeHTTPOn(nil); err == nil {
		t.Fatal("ServeHTTPOn(nil) succeeded")
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	path := serveUnix(t, rt)
	tc := dialRaw(t, rt)
	tc.write("GET /metrics/snapshot HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := tc.read(); r.Status != 200 {
		t.Fatalf("TCP request: %d", r.Status)
	}
	// The TCP connection holds the only slot: the unix one is closed at
	// accept.
	uc := dialUnix(t, path)
	uc.expectClosed()
	if n := rt.Snapshot()["libprocess/connections_refused"]; n != 1 {
		t.Fatalf("connections_refused = %v, want 1", n)
	}
	tc.Close()
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		t.Fatal("the unix socket still accepts after Shutdown")
	}
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "late.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := rt.ServeHTTPOn(ln); err == nil {
		t.Fatal("ServeHTTPOn after Shutdown succeeded")
	}
}

// accessLines returns the access-log lines written so far.
func accessLines(t *testing.T, s *testlog.Buffer) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if m["message"] == "http request" {
			out = append(out, m)
		}
	}
	return out
}

func TestAccessLogOneLinePerRequest(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("AccessLog=%v", on), func(t *testing.T) {
			logs := &testlog.Buffer{}
			rt := startRuntime(t, func(c *Config) {
				c.AccessLog = on
				c.Logger = zerolog.New(logs)
			})
			p := NewProcess("svc")
			p.Route("who", Help{}, func(req *Request, respond Responder) {
				req.SetPrincipal("ops")
				respond(TextResponse(http.StatusCreated, "12345"))
			})
			if _, err := rt.Spawn(p); err != nil {
				t.Fatal(err)
			}
			c := dialRaw(t, rt)
			for _, s := range []string{
				"GET /svc/who?token=secret HTTP/1.1\r\nHost: x\r\n\r\n",
				"GET /nobody/here HTTP/1.1\r\nHost: x\r\n\r\n",
				"DELETE /svc/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
			} {
				c.write(s)
				c.read()
			}
			// A message is no HTTP request: no line.
			c.write("POST /svc/m HTTP/1.1\r\nLibprocess-From: x@1.2.3.4:5\r\nHost: \r\nContent-Length: 0\r\n\r\n")
			c.read()
			got := accessLines(t, logs)
			if !on {
				if len(got) != 0 {
					t.Fatalf("access log off, yet %d lines: %v", len(got), got)
				}
				return
			}
			want := []struct {
				method, path, principal string
				status, bytes           float64
			}{
				{"GET", "/svc/who", "ops", 201, 5},
				{"GET", "/nobody/here", "", 404, float64(len(notFoundBody))},
				{"DELETE", "/svc/%zz", "", 400, -2},
			}
			if len(got) != len(want) {
				t.Fatalf("%d access lines, want %d: %v", len(got), len(want), got)
			}
			for i, w := range want {
				g := got[i]
				if g["level"] != "info" || g["method"] != w.method || g["path"] != w.path || g["principal"] != w.principal || g["status"] != w.status {
					t.Errorf("line %d = %v, want %+v", i, g, w)
				}
				if w.bytes >= 0 && g["bytes"] != w.bytes {
					t.Errorf("line %d bytes = %v, want %v", i, g["bytes"], w.bytes)
				}
				if d, ok := g["duration_ms"].(float64); !ok || d < 0 {
					t.Errorf("line %d duration_ms = %v", i, g["duration_ms"])
				}
			}
		})
	}
}

func TestTimerStatisticsAndWindow(t *testing.T) {
	m := newMetrics()
	tm := m.Timer("svc/op/duration")
	out := map[string]float64{}
	m.snapshotInto(out)
	if len(out) != 0 {
		t.Fatalf("empty timer shows %v", out)
	}
	tm.Record(7 * time.Millisecond)
	out = map[string]float64{}
	m.snapshotInto(out)
	// One value: the value, no statistics (libprocess needs two).
	if len(out) != 1 || out["svc/op/duration_ms"] != 7 {
		t.Fatalf("one value: %v", out)
	}
	m = newMetrics()
	tm = m.Timer("svc/op/duration")
	for i := 1; i <= 100; i++ {
		tm.Record(time.Duration(i) * time.Millisecond)
	}
	out = map[string]float64{}
	m.snapshotInto(out)
	want := map[string]float64{
		"svc/op/duration_ms": 100, "svc/op/duration_ms/count": 100,
		"svc/op/duration_ms/min": 1, "svc/op/duration_ms/max": 100,
		"svc/op/duration_ms/p50": 50.5, "svc/op/duration_ms/p90": 90.1,
		"svc/op/duration_ms/p95": 95.05, "svc/op/duration_ms/p99": 99.01,
		"svc/op/duration_ms/p999": 99.901, "svc/op/duration_ms/p9999": 99.9901,
	}
	for k, v := range want {
		if math.Abs(out[k]-v) > 1e-9 {
			t.Errorf("%s = %v, want %v", k, out[k], v)
		}
	}
	if len(out) != len(want) {
		t.Errorf("keys %v, want %v", sortedKeys(out), sortedKeys(want))
	}
	// The window keeps the last timerWindow values only.
	for i := 1; i <= timerWindow+500; i++ {
		tm.Record(time.Duration(1000+i) * time.Millisecond)
	}
	out = map[string]float64{}
	m.snapshotInto(out)
	if out["svc/op/duration_ms/count"] != timerWindow || out["svc/op/duration_ms/min"] != 1501 || out["svc/op/duration_ms/max"] != 2500 {
		t.Fatalf("after the window turned: count %v min %v max %v", out["svc/op/duration_ms/count"], out["svc/op/duration_ms/min"], out["svc/op/duration_ms/max"])
	}
}

func TestPromName(t *testing.T) {
	for in, want := range map[string]string{
		"pkgpanda/activate/duration_ms/p99": "pkgpanda_activate_duration_ms_p99",
		"9lives/x.y-z":                      "_9lives_x_y_z",
		"":                                  "_",
		"a:b_C":                             "a:b_C",
	} {
		if got := promName(in); got != want {
			t.Errorf("promName(%q) = %q, want %q", in, got, want)
		}
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// FuzzPromName checks that any metric path becomes a valid Prometheus
// name, and that valid names stay as they are.
func FuzzPromName(f *testing.F) {
	f.Add("pkgpanda/activate/duration_ms/p99")
	f.Add("9/x")
	f.Add("")
	f.Fuzz(func(t *testing.T, name string) {
		got := promName(name)
		if !regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`).MatchString(got) {
			t.Fatalf("promName(%q) = %q is not a valid name", name, got)
		}
		if regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`).MatchString(name) && got != name {
			t.Fatalf("promName(%q) = %q changed a valid name", name, got)
		}
	})
}
