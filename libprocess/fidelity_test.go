package libprocess

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Tests of the answers C++ libprocess (apache/mesos 3rdparty/libprocess,
// 2024) gives where a peer could tell the difference, each over a real
// socket with the exact bytes a peer writes.

// cppMessage is a message head as Mesos 0.22-1.11 writes it, with target
// in place of the path.
func cppMessage(target, body string) string {
	head := "POST " + target + " HTTP/1.1\r\nUser-Agent: libprocess/a@127.0.0.1:1\r\nLibprocess-From: a@127.0.0.1:1\r\nConnection: Keep-Alive\r\nHost: \r\n"
	if body == "" {
		return head + "\r\n"
	}
	return head + "Transfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n\r\n"
}

// A message whose target has no path starting with '/' is answered 400 with
// C++' text, and the connection goes on (docs/libprocess-wire.md §2.4; ProcessManager::handle
// checks this first since Mesos 1.4).
func TestMessageTargetWithoutPath(t *testing.T) {
	rt := startRuntime(t)
	rec := spawnRecorder(t, rt, "target", "m")
	c := dialRaw(t, rt)
	for _, target := range []string{"*", "http://" + rt.Addr().HostPort(), "http://" + rt.Addr().HostPort() + "?x=/target/m", "target/m"} {
		c.write(cppMessage(target, "body"))
		r := c.read()
		if r.StatusLine != "HTTP/1.1 400 Bad Request" || string(r.Body) != "Request URL path must start with '/'" ||
			r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("POST %s: %q %q %v", target, r.StatusLine, r.Body, r.Header)
		}
	}
	// Still the same connection.
	c.write(cppMessage("/target/m", "after"))
	if r := c.read(); r.Status != 202 {
		t.Fatalf("message after the 400s: %q", r.StatusLine)
	}
	if m := rec.next(t); string(m.Body) != "after" {
		t.Fatalf("delivered %q, want only the message after the 400s", m.Body)
	}
}

// HTTP requests follow the same rule: C++ checks the path before it tells
// messages from HTTP (docs/libprocess-wire.md §2.4, §4.1). (fasthttp itself refuses "*" and
// targets that are not URLs on HTTP requests, with 400, and closes.)
func TestHTTPTargetWithoutPath(t *testing.T) {
	rt := startRuntime(t)
	c := dialRaw(t, rt)
	for _, target := range []string{"http://" + rt.Addr().HostPort(), "http://" + rt.Addr().HostPort() + "?x=/help"} {
		c.write("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
		r := c.read()
		if r.StatusLine != "HTTP/1.1 400 Bad Request" || string(r.Body) != "Request URL path must start with '/'" {
			t.Errorf("GET %s: %q %q", target, r.StatusLine, r.Body)
		}
	}
	for _, target := range []string{"http://" + rt.Addr().HostPort() + "/__processes__", "foo://h/__processes__"} {
		c.write("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read(); r.Status != 200 || !strings.HasPrefix(string(r.Body), "[") {
			t.Errorf("GET %s: %q %q", target, r.StatusLine, r.Body)
		}
	}
}

// An absolute-form target is an ordinary message whose path is the URL's
// (docs/libprocess-wire.md §2.4).
func TestMessageAbsoluteFormTarget(t *testing.T) {
	rt := startRuntime(t)
	rec := spawnRecorder(t, rt, "master", "mesos.internal.X")
	c := dialRaw(t, rt)
	c.write(cppMessage("http://10.0.0.1:5051/master/mesos.internal.X", "abs") +
		cppMessage("http://"+rt.Addr().HostPort()+"/master/mesos.internal.X?q=1", ""))
	for i := 0; i < 2; i++ {
		if r := c.read(); r.StatusLine != "HTTP/1.1 202 Accepted" || len(r.Body) != 0 {
			t.Fatalf("answer %d: %q %q", i+1, r.StatusLine, r.Body)
		}
	}
	m := rec.next(t)
	if m.Name != "mesos.internal.X" || string(m.Body) != "abs" || m.From.String() != "a@127.0.0.1:1" {
		t.Fatalf("delivered %+v", m)
	}
	if m := rec.next(t); m.Name != "mesos.internal.X" || len(m.Body) != 0 {
		t.Fatalf("second delivered %+v", m)
	}
}

// HTTP 404s carry C++' "404 Not Found." text body; a message's 404 stays
// empty for mesos-go (docs/libprocess-wire.md §4.5, §11.2).
func TestNotFoundBodies(t *testing.T) {
	rt := startRuntime(t)
	spawnRecorder(t, rt, "noroutes")
	c := dialRaw(t, rt)
	for _, path := range []string{"/nobody", "/nobody/x", "/noroutes", "/metrics/nosuch", "/help/..", "/", "/help/nobody", "/help/nobody/x", "/__processes__/x"} {
		c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		r := c.read()
		if r.StatusLine != "HTTP/1.1 404 Not Found" || string(r.Body) != "404 Not Found." ||
			r.Header.Get("Content-Type") != "text/plain; charset=utf-8" || r.Header.Get("Content-Length") != "14" {
			t.Errorf("GET %s: %q %q %v", path, r.StatusLine, r.Body, r.Header)
		}
	}
	c.write("POST /nobody/m HTTP/1.1\r\nLibprocess-From: a@127.0.0.1:1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if r := c.read(); r.Status != 404 || len(r.Body) != 0 || r.Header.Get("Content-Length") != "0" {
		t.Errorf("message to an unknown process: %q %q %v", r.StatusLine, r.Body, r.Header)
	}
}

// The root route answers /<id> and /<id>/ only; /help/<id> reaches the help
// process for ids with documented routes, and nothing else does (docs/libprocess-wire.md §4.3,
// §6.1).
func TestRootRouteOnlyAtRoot(t *testing.T) {
	rt := startRuntime(t)
	spawnRoutes(t, rt)
	c := dialRaw(t, rt)
	for path, want := range map[string]int{
		"/help":                        200,
		"/help/":                       200,
		"/help/svc":                    200,
		"/help/svc/":                   200,
		"/help/svc/repository":         200,
		"/help/svc/a/b":                200,
		"/help/svc/nosuch":             400,
		"/help/svc/nosuch/deeper":      400,
		"/help/nosuch":                 404,
		"/help/nosuch/repository":      404,
		"/__processes__":               200,
		"/__processes__/":              200,
		"/__processes__/x":             404,
		"/metrics/snapshot/x":          200, // the snapshot route, by its prefix
		"/help/__processes__":          200,
		"/help/conformance-no-such-id": 404,
	} {
		c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\n\r\n")
		if r := c.read(); r.Status != want {
			t.Errorf("GET %s = %d %q, want %d", path, r.Status, r.Body, want)
		}
	}
}

// jsonp wraps only where the route opts in, as C++ routes do (docs/libprocess-wire.md §5.4,
// §6.2, §6.3).
func TestJSONPPerRoute(t *testing.T) {
	rt := startRuntime(t)
	c := dialRaw(t, rt)
	c.write("GET /metrics/snapshot?jsonp=cb HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read()
	if !strings.HasPrefix(string(r.Body), "cb({") || !strings.HasSuffix(string(r.Body), "})") || r.Header.Get("Content-Type") != "text/javascript" {
		t.Errorf("/metrics/snapshot?jsonp=cb: %q %q", r.Header.Get("Content-Type"), r.Body)
	}
	for _, path := range []string{"/__processes__?jsonp=cb", "/help?format=json&jsonp=cb"} {
		c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		r := c.read()
		if strings.HasPrefix(string(r.Body), "cb(") || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %q %q, want unwrapped JSON", path, r.Header.Get("Content-Type"), r.Body)
		}
	}
	p := NewProcess("opt")
	p.Route("in", Help{TLDR: "wraps"}, func(req *Request, respond Responder) {
		respond(JSONPResponse(http.StatusOK, []int{1}, req.URL.Query().Get("jsonp")))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c.write("GET /opt/in?jsonp=f HTTP/1.1\r\nHost: x\r\n\r\nGET /opt/in HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); string(r.Body) != "f([1])" || r.Header.Get("Content-Type") != "text/javascript" {
		t.Errorf("opted-in route with jsonp: %q %q", r.Header.Get("Content-Type"), r.Body)
	}
	if r := c.read(); string(r.Body) != "[1]" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("opted-in route without jsonp: %q %q", r.Header.Get("Content-Type"), r.Body)
	}
}

// Message answers carry no Connection header, as C++' response encoder
// writes none: not when closing after Connection: close or HTTP/1.0, not
// for HTTP/1.0 keep-alive.
func TestMessageAnswersHaveNoConnectionHeader(t *testing.T) {
	rt := startRuntime(t)
	spawnRecorder(t, rt, "target", "m")
	cases := []struct {
		name   string
		req    string
		closes bool
	}{
		{"pre-0.22 HTTP/1.0", "POST /target/m HTTP/1.0\r\nUser-Agent: libprocess/a@127.0.0.1:1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", true},
		{"Connection: close", "POST /target/m HTTP/1.1\r\nLibprocess-From: a@127.0.0.1:1\r\nConnection: close\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", true},
		{"unknown process, Connection: close", "POST /nobody/m HTTP/1.1\r\nLibprocess-From: a@127.0.0.1:1\r\nConnection: close\r\nHost: x\r\nContent-Length: 0\r\n\r\n", true},
		{"HTTP/1.0 keep-alive", "POST /target/m HTTP/1.0\r\nLibprocess-From: a@127.0.0.1:1\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, rt)
			c.write(tc.req)
			r := c.read()
			if r.Status/100 != 2 && r.Status != 404 {
				t.Fatalf("%q", r.StatusLine)
			}
			if _, ok := r.Header["Connection"]; ok {
				t.Fatalf("answer has Connection: %q", r.Header.Get("Connection"))
			}
			if tc.closes {
				c.expectClosed()
				return
			}
			c.write(tc.req)
			if r := c.read(); r.Status != 202 || r.Header.Get("Connection") != "" {
				t.Fatalf("second message on the kept connection: %q %v", r.StatusLine, r.Header)
			}
		})
	}
}
