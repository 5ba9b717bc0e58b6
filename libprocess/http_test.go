package libprocess

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func spawnRoutes(t *testing.T, rt *Runtime) *Process {
	t.Helper()
	p := NewProcess("svc")
	p.Route("", Help{TLDR: "root"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "root:"+req.URL.Path))
	})
	p.Route("repository", Help{TLDR: "repo", Description: "Lists packages."}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "repository:"+req.URL.Path))
	})
	p.Route("a/b", Help{TLDR: "nested"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "a/b:"+req.URL.Path))
	})
	p.Route("big.json", Help{TLDR: "big"}, func(req *Request, respond Responder) {
		respond(JSONResponse(200, map[string]string{"data": strings.Repeat("x", 4000)}))
	})
	p.Route("small.json", Help{TLDR: "small"}, func(req *Request, respond Responder) {
		respond(JSONResponse(200, []int{1, 2}))
	})
	p.Route("later", Help{TLDR: "responds from another goroutine"}, func(req *Request, respond Responder) {
		go func() { respond(TextResponse(200, "later")) }()
	})
	p.Route("stream", Help{TLDR: "streams"}, func(req *Request, respond Responder) {
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < 3; i++ {
				io.WriteString(pw, "line\n")
			}
			pw.Close()
		}()
		respond(Response{Status: 200, Stream: pr})
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHTTPRouting(t *testing.T) {
	rt := startRuntime(t)
	spawnRoutes(t, rt)
	cases := []struct {
		path   string
		status int
		body   string
	}{
		{"/svc", 200, "root:/svc"},
		{"/svc/", 200, "root:/svc/"},
		{"/svc/repository", 200, "repository:/svc/repository"},
		{"/svc/repository/", 200, "repository:/svc/repository/"},
		{"/svc/repository/mesos--0.22.0", 200, "repository:/svc/repository/mesos--0.22.0"},
		{"/svc/a/b/c/d", 200, "a/b:/svc/a/b/c/d"},
		{"/svc//", 200, "root:/svc//"},
		{"/svc/a", 404, "404 Not Found."}, // never the root route (docs/libprocess-wire.md §4.3)
		{"/svc/a/c", 404, "404 Not Found."},
		{"/%73vc/repository", 200, "repository:/svc/repository"},
		{"/svc/../help", 404, "404 Not Found."},
		{"/svc/repository/..", 404, "404 Not Found."},
		{"/nobody/x", 404, "404 Not Found."},
		{"/", 404, "404 Not Found."},
	}
	c := dialRaw(t, rt)
	for _, tc := range cases {
		c.write("GET " + tc.path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		resp := c.read()
		if resp.Status != tc.status || (tc.body != "" && string(resp.Body) != tc.body) {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, resp.Status, resp.Body, tc.status, tc.body)
		}
		if resp.Header.Get("Date") == "" {
			t.Errorf("GET %s: no Date header", tc.path)
		}
		if ct := resp.Header.Get("Content-Type"); tc.status == 404 && ct != "text/plain; charset=utf-8" {
			t.Errorf("GET %s: 404 with Content-Type %q, want C++' text/plain; charset=utf-8 (docs/libprocess-wire.md §4.5)", tc.path, ct)
		}
	}
	// Path without a leading slash.
	c.write("GET svc HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp := c.read(); resp.Status != 400 {
		t.Errorf("GET svc = %d, want 400", resp.Status)
	}
}

func TestHTTPDelegate(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.Delegate = "svc" })
	spawnRoutes(t, rt)
	c := dialRaw(t, rt)
	for path, want := range map[string]string{
		"/":                 "root:/svc",
		"/repository/x":     "repository:/svc/repository/x",
		"/svc/repository/y": "repository:/svc/repository/y",
	} {
		c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp := c.read(); resp.Status != 200 || string(resp.Body) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.Status, resp.Body, want)
		}
	}
	// A delegated path is nested below the delegate's id, so its root
	// route does not take it (docs/libprocess-wire.md §4.3), as in C++.
	c.write("GET /unknown-thing/z/w HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp := c.read(); resp.Status != 404 {
		t.Errorf("GET /unknown-thing/z/w = %d %q, want 404", resp.Status, resp.Body)
	}
}

func TestHTTPPipeliningKeepAliveClose(t *testing.T) {
	rt := startRuntime(t)
	spawnRoutes(t, rt)
	c := dialRaw(t, rt)
	// The deferred route is first: its answer must still come first.
	c.write("GET /svc/later HTTP/1.1\r\nHost: x\r\n\r\nGET /svc/repository/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /svc/a/b HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"later", "repository:/svc/repository/1", "a/b:/svc/a/b"} {
		if resp := c.read(); string(resp.Body) != want {
			t.Fatalf("pipelined response %q, want %q", resp.Body, want)
		}
	}
	c.write("GET /svc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp := c.read(); resp.Status != 200 {
		t.Fatalf("status %d", resp.Status)
	}
	c.expectClosed()
	// HTTP/1.0 without keep-alive closes too.
	c2 := dialRaw(t, rt)
	c2.write("GET /svc HTTP/1.0\r\n\r\n")
	if resp := c2.read(); resp.Status != 200 {
		t.Fatalf("HTTP/1.0 status %d", resp.Status)
	}
	c2.expectClosed()
}

func TestHTTPStreamGzipJSONP(t *testing.T) {
	rt := startRuntime(t)
	spawnRoutes(t, rt)
	c := dialRaw(t, rt)

	c.write("GET /svc/stream HTTP/1.1\r\nHost: x\r\n\r\n")
	resp := c.read()
	if resp.Header.Get("Transfer-Encoding") != "chunked" || string(resp.Body) != "line\nline\nline\n" {
		t.Fatalf("stream: TE %q body %q", resp.Header.Get("Transfer-Encoding"), resp.Body)
	}

	c.write("GET /svc/big.json HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, deflate\r\n\r\n")
	resp = c.read()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("big body not gzipped: headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	var v map[string]string
	if err := json.Unmarshal(plain, &v); err != nil || len(v["data"]) != 4000 {
		t.Fatalf("gunzipped body: %v %d", err, len(v["data"]))
	}

	for _, ae := range []string{"gzip;q=0", "identity", ""} {
		c.write("GET /svc/big.json HTTP/1.1\r\nHost: x\r\nAccept-Encoding: " + ae + "\r\n\r\n")
		if resp := c.read(); resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("Accept-Encoding %q: got Content-Encoding %q", ae, resp.Header.Get("Content-Encoding"))
		}
	}

	c.write("GET /svc/small.json HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
	resp = c.read()
	if resp.Header.Get("Content-Encoding") != "" || string(resp.Body) != "[1,2]" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("small json: %v %q", resp.Header, resp.Body)
	}

	// jsonp is the route's choice (docs/libprocess-wire.md §5.4): JSONResponse ignores it.
	c.write("GET /svc/small.json?jsonp=cb HTTP/1.1\r\nHost: x\r\n\r\n")
	resp = c.read()
	if string(resp.Body) != "[1,2]" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("jsonp on a route that does not opt in: %q %q", resp.Body, resp.Header.Get("Content-Type"))
	}
}

func TestBuiltinEndpoints(t *testing.T) {
	rt := startRuntime(t)
	spawnRoutes(t, rt)
	c := dialRaw(t, rt)

	c.write("GET /help/svc HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\n\r\n")
	resp := c.read()
	if resp.Status != 200 || resp.Header.Get("Content-Type") != "text/x-markdown" || !strings.Contains(string(resp.Body), "/svc/repository") {
		t.Fatalf("/help/svc: %d %q %q", resp.Status, resp.Header.Get("Content-Type"), resp.Body)
	}
	c.write("GET /help/svc/repository HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\n\r\n")
	resp = c.read()
	for _, want := range []string{"### TL;DR; ###\nrepo", "### USAGE ###", "### DESCRIPTION ###\nLists packages."} {
		if !strings.Contains(string(resp.Body), want) {
			t.Fatalf("/help/svc/repository lacks %q: %q", want, resp.Body)
		}
	}
	c.write("GET /help/svc HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0\r\n\r\n")
	if resp = c.read(); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("browser help content type %q", resp.Header.Get("Content-Type"))
	}
	c.write("GET /help/nobody HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp = c.read(); resp.Status != 404 || string(resp.Body) != "404 Not Found." {
		t.Fatalf("/help/nobody: %d %q, want 404 (no help route for it, docs/libprocess-wire.md §6.1)", resp.Status, resp.Body)
	}
	c.write("GET /help/svc/nothing HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp = c.read(); resp.Status != 400 || string(resp.Body) != "No help available for '/svc/nothing'.\n" {
		t.Fatalf("/help/svc/nothing: %d %q", resp.Status, resp.Body)
	}
	c.write("GET /help?format=json HTTP/1.1\r\nHost: x\r\n\r\n")
	resp = c.read()
	var idx struct {
		Processes []struct {
			ID        string `json:"id"`
			Endpoints []struct {
				Name string `json:"name"`
				Text string `json:"text"`
			} `json:"endpoints"`
		} `json:"processes"`
	}
	if err := json.Unmarshal(resp.Body, &idx); err != nil {
		t.Fatalf("/help?format=json: %v %q", err, resp.Body)
	}
	found := false
	for _, p := range idx.Processes {
		if p.ID == "svc" {
			for _, e := range p.Endpoints {
				found = found || (e.Name == "/repository" && strings.Contains(e.Text, "repo"))
			}
		}
	}
	if !found {
		t.Fatalf("help index lacks svc /repository: %s", resp.Body)
	}

	c.write("GET /__processes__ HTTP/1.1\r\nHost: x\r\n\r\n")
	resp = c.read()
	var procs []struct {
		ID     string           `json:"id"`
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(resp.Body, &procs); err != nil {
		t.Fatalf("/__processes__: %v %q", err, resp.Body)
	}
	ids := map[string]bool{}
	for _, p := range procs {
		ids[p.ID] = true
		if p.Events == nil {
			t.Fatalf("process %s has null events", p.ID)
		}
	}
	for _, id := range []string{"svc", "help", "metrics", "__processes__"} {
		if !ids[id] {
			t.Fatalf("/__processes__ lacks %s: %s", id, resp.Body)
		}
	}

	c.write("GET /metrics/snapshot?timeout=5secs HTTP/1.1\r\nHost: x\r\n\r\n")
	resp = c.read()
	var snap map[string]float64
	if err := json.Unmarshal(resp.Body, &snap); err != nil {
		t.Fatalf("/metrics/snapshot is not a flat object of numbers: %v %q", err, resp.Body)
	}
	for _, k := range []string{"libprocess/messages_received", "libprocess/messages_sent", "libprocess/messages_dropped", "libprocess/connections_inbound", "libprocess/mailbox_depth/svc"} {
		if _, ok := snap[k]; !ok {
			t.Fatalf("snapshot lacks %s", k)
		}
	}
	if snap["libprocess/connections_inbound"] < 1 {
		t.Fatalf("connections_inbound = %v with a connection open", snap["libprocess/connections_inbound"])
	}
	c.write("GET /metrics/snapshot?timeout=soon HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp = c.read(); resp.Status != 400 {
		t.Fatalf("bad timeout: %d", resp.Status)
	}
}

// Stock fasthttp rejects two of the request shapes real peers send (docs/libprocess-wire.md
// §2.5) before any handler runs. This documents why the runtime sniffs
// message connections with its own codec; if fasthttp ever accepts them,
// this test says so.
func TestStockFasthttpRejectsPeerShapes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	called := make(chan struct{}, 10)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		called <- struct{}{}
		ctx.SetStatusCode(202)
	}}
	go srv.Serve(ln)
	defer srv.Shutdown()
	shapes := peerShapes("a@1.2.3.4:5", ln.Addr().String())
	for _, i := range []int{0, 2} { // empty Host; chunked HTTP/1.0
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, shapes[i].req)
		resp, err := readResponse(newReader(c))
		c.Close()
		if err != nil {
			// A timeout or reset says nothing about what fasthttp did.
			t.Fatalf("%s: reading stock fasthttp's answer: %v", shapes[i].name, err)
		}
		if resp.Status != 400 {
			t.Fatalf("%s: stock fasthttp answered %q; if it accepts these shapes now, the codec in front of it may be unnecessary", shapes[i].name, resp.StatusLine)
		}
	}
	if len(called) != 0 {
		t.Fatalf("handler ran %d times; expected fasthttp to reject before the handler", len(called))
	}
}

func TestHTTPLargeBodyStreams(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.BufferedBodyLimit = 1024; c.MaxRequestBodySize = 100000 })
	p := NewProcess("up")
	p.Route("load", Help{TLDR: "counts body bytes"}, func(req *Request, respond Responder) {
		if req.BodyStream == nil {
			respond(TextResponse(200, "buffered "+strconv.Itoa(len(req.Body))))
			return
		}
		go func() {
			n, err := io.Copy(io.Discard, req.BodyStream)
			if errors.Is(err, ErrBodyTooLarge) {
				respond(TextResponse(413, "too large"))
				return
			}
			respond(TextResponse(200, "streamed "+strconv.FormatInt(n, 10)))
		}()
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	for _, tc := range []struct {
		size int
		want string
	}{{10, "buffered 10"}, {50000, "streamed 50000"}, {100000, "streamed 100000"}, {100001, "too large"}} {
		c.write("POST /up/load HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(tc.size) + "\r\n\r\n" + strings.Repeat("z", tc.size))
		if r := c.read(); string(r.Body) != tc.want {
			t.Fatalf("%d bytes: %q, want %q", tc.size, r.Body, tc.want)
		}
		if tc.want == "too large" {
			break
		}
	}
	// Chunked uploads stream too.
	c2 := dialRaw(t, rt)
	chunk := strings.Repeat("y", 4000)
	c2.write("POST /up/load HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("fa0\r\n"+chunk+"\r\n", 5) + "0\r\n\r\n")
	if r := c2.read(); string(r.Body) != "streamed 20000" && string(r.Body) != "buffered 20000" {
		t.Fatalf("chunked: %q", r.Body)
	}
}

// A streamed response keeps its request context alive while it streams,
// and a client that goes away mid-stream cancels it.
func TestHTTPStreamContextLifetime(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	ctxErr := make(chan error, 1)
	p.Route("tail", Help{TLDR: "streams until the client leaves"}, func(req *Request, respond Responder) {
		pr, pw := io.Pipe()
		respond(Response{Status: 200, Stream: pr})
		go func() {
			defer pw.Close()
			for i := 0; ; i++ {
				if req.Context().Err() != nil {
					ctxErr <- req.Context().Err()
					return
				}
				if _, err := io.WriteString(pw, strings.Repeat("x", 1000)+"\n"); err != nil {
					<-req.Context().Done()
					ctxErr <- req.Context().Err()
					return
				}
			}
		}()
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	c.write("GET /svc/tail HTTP/1.1\r\nHost: x\r\n\r\n")
	// Read the status line and a good part of the stream: the context must
	// not be cancelled while the client reads.
	line, err := c.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("status %q %v", line, err)
	}
	buf := make([]byte, 200000)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ctxErr:
		t.Fatalf("context ended while streaming: %v", err)
	default:
	}
	c.Close()
	select {
	case err := <-ctxErr:
		if err == nil {
			t.Fatal("stream ended without its context being cancelled")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client left but the stream's context was never cancelled")
	}
}
