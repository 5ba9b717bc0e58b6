package libprocess

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The header a route sees is made on first use from the head as received:
// canonical keys, repeated fields in order, the same map on every call,
// and safe to ask for from several goroutines at once.
func TestRouteHeaderMadeOnFirstUse(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	p.Route("echo", Help{TLDR: "echoes X-Who"}, func(req *Request, respond Responder) {
		var wg sync.WaitGroup
		maps := make([]http.Header, 4)
		for i := range maps {
			wg.Add(1)
			go func() { defer wg.Done(); maps[i] = req.Header() }()
		}
		wg.Wait()
		h := req.Header()
		for _, m := range maps {
			if m == nil || len(m) != len(h) {
				respond(TextResponse(500, "header differs between calls"))
				return
			}
		}
		respond(TextResponse(200, strings.Join(h["X-Who"], ",")+"|"+h.Get("Host")+"|"+req.Method+"|"+req.URL.RawQuery))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	c.write("GET /svc/echo?a=1&b=2 HTTP/1.1\r\nHost: h.example\r\nx-who: first\r\nX-WHO: second\r\n\r\n")
	if r := c.read(); r.Status != 200 || string(r.Body) != "first,second|h.example|GET|a=1&b=2" {
		t.Fatalf("header as the route sees it: %q %q", r.StatusLine, r.Body)
	}
	// More fields than the request keeps room for inline.
	var b strings.Builder
	b.WriteString("PROPFIND /svc/echo HTTP/1.1\r\nHost: h\r\n")
	for i := 0; i < 20; i++ {
		b.WriteString("X-Who: " + strings.Repeat("v", i+1) + "\r\n")
	}
	b.WriteString("\r\n")
	c.write(b.String())
	r := c.read()
	if vals := strings.Split(strings.Split(string(r.Body), "|")[0], ","); r.Status != 200 || len(vals) != 20 || vals[19] != strings.Repeat("v", 20) {
		t.Fatalf("20 header fields: %q %q", r.StatusLine, r.Body)
	}
	if !strings.Contains(string(r.Body), "|PROPFIND|") {
		t.Fatalf("extension method: %q", r.Body)
	}
}

// A request's context is made only when asked for; asked for after the
// response was sent, it is already cancelled.
func TestRouteContextAskedAfterResponse(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	kept := make(chan *Request, 1)
	p.Route("keep", Help{TLDR: "keeps its request"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "ok"))
		kept <- req
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	c.write("GET /svc/keep HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); r.Status != 200 {
		t.Fatalf("keep: %q", r.StatusLine)
	}
	req := <-kept
	if err := req.Context().Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("context first asked for after the response: %v", err)
	}
	select {
	case <-req.Context().Done():
	default:
		t.Fatal("Done of a cancelled context is open")
	}
}

// A connection lends every request the same response channel: a late
// answer to a request given up at its deadline must not reach the next
// request on the connection.
func TestRouteLateAnswerDoesNotLeakToNextRequest(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.RouteTimeout = 200 * time.Millisecond })
	p := NewProcess("svc")
	late := make(chan Responder, 1)
	p.Route("late", Help{TLDR: "answers after its deadline"}, func(req *Request, respond Responder) {
		late <- respond
	})
	p.Route("ping", Help{TLDR: "pong"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "pong"))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	c.write("GET /svc/late HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); r.Status != 504 {
		t.Fatalf("late: %q", r.StatusLine)
	}
	(<-late)(TextResponse(200, "stale"))
	for i := 0; i < 3; i++ {
		c.write("GET /svc/ping HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read(); r.Status != 200 || string(r.Body) != "pong" {
			t.Fatalf("request %d after a late answer: %q %q", i, r.StatusLine, r.Body)
		}
	}
}

// NewRequest builds a request by hand, for an Authenticator.
func TestNewRequest(t *testing.T) {
	req := NewRequest(http.MethodPost, "/svc", http.Header{"Authorization": {"Basic x"}})
	if req.Method != http.MethodPost || req.URL.Path != "/svc" || req.Header().Get("Authorization") != "Basic x" {
		t.Fatalf("NewRequest: %+v %v", req, req.Header())
	}
	if req.Context() != context.Background() {
		t.Fatal("context of a request built by hand")
	}
	if (&Request{}).Header() != nil {
		t.Fatal("header of a zero Request")
	}
}
