package libprocess

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// routed stays within the largest size class Go allocates without a
// per-object header.
func TestRoutedSize(t *testing.T) {
	if n := unsafe.Sizeof(routed{}); n > 512 {
		t.Fatalf("routed is %d bytes, more than 512", n)
	}
}

// A request's path, query and header reach the route intact, whatever
// their size.
func TestRoutedStringsAnySize(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	p.Route("echo", Help{TLDR: "echoes"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, req.URL.Path+"?"+req.URL.RawQuery+"|"+req.Header().Get("X-A")+"|"+req.Header().Get("User-Agent")))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	for _, n := range []int{0, 10, 192, 4096} {
		v := strings.Repeat("v", n)
		c.write("GET /svc/echo?q=" + v + " HTTP/1.1\r\nHost: x\r\nX-A: " + v + "\r\nUser-Agent: ua\r\n\r\n")
		want := "/svc/echo?q=" + v + "|" + v + "|ua"
		if r := c.read(); r.Status != 200 || string(r.Body) != want {
			t.Fatalf("value of %d bytes: %q %q", n, r.StatusLine, r.Body)
		}
	}
}

// A response's ContentType is sent as Content-Type unless its Header has
// one; SetHeader works on the helpers' responses, whose Header is nil.
func TestResponseContentType(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	p.Route("plain", Help{TLDR: "text"}, func(req *Request, respond Responder) {
		r := TextResponse(200, "x")
		r.SetHeader("X-Extra", "1")
		respond(r)
	})
	p.Route("override", Help{TLDR: "header wins"}, func(req *Request, respond Responder) {
		r := TextResponse(200, "x")
		r.SetHeader("Content-Type", "text/csv")
		respond(r)
	})
	p.Route("none", Help{TLDR: "no type"}, func(req *Request, respond Responder) {
		respond(Response{Status: 200, Body: []byte("x")})
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	for path, want := range map[string][2]string{
		"plain":    {"text/plain; charset=utf-8", "1"},
		"override": {"text/csv", ""},
		"none":     {"", ""},
	} {
		c.write("GET /svc/" + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		r := c.read()
		if r.Status != 200 || r.Header.Get("Content-Type") != want[0] || r.Header.Get("X-Extra") != want[1] || len(r.Header["Content-Type"]) > 1 {
			t.Errorf("%s: %q Content-Type %q X-Extra %q", path, r.StatusLine, r.Header["Content-Type"], r.Header.Get("X-Extra"))
		}
	}
}

// On one connection, answers given at once (left in the connection's
// slot), answers given later from another goroutine (sent on its
// channel) and a stale Responder called again during a later request
// each reach only their own request.
func TestResponderSlotAndLateAnswers(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	var first Responder
	release := make(chan struct{})
	p.Route("now", Help{TLDR: "answers at once"}, func(req *Request, respond Responder) {
		if first == nil {
			first = respond
		}
		respond(TextResponse(200, "now"))
	})
	p.Route("later", Help{TLDR: "answers from a goroutine"}, func(req *Request, respond Responder) {
		go func() {
			<-release
			respond(TextResponse(200, "later"))
		}()
	})
	p.Route("stale", Help{TLDR: "calls the first request's Responder again"}, func(req *Request, respond Responder) {
		first(TextResponse(200, "stale"))
		respond(TextResponse(200, "fresh"))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	for i, step := range []struct{ path, want string }{
		{"now", "now"}, {"later", "later"}, {"now", "now"}, {"stale", "fresh"}, {"later", "later"}, {"stale", "fresh"},
	} {
		c.write("GET /svc/" + step.path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if step.path == "later" {
			release <- struct{}{}
		}
		if r := c.read(); r.Status != 200 || string(r.Body) != step.want {
			t.Fatalf("request %d (%s): %q %q, want %q", i, step.path, r.StatusLine, r.Body, step.want)
		}
	}
}

// Request.Header gives every field as received, in order, keyed
// canonically: repeated names, empty values, colons and spaces inside a
// value, and the framing the codec restates.
func TestRequestHeaderFields(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	got := make(chan http.Header, 1)
	p.Route("h", Help{TLDR: "records the header"}, func(req *Request, respond Responder) {
		got <- req.Header()
		respond(TextResponse(200, "ok"))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	c.write("POST /svc/h HTTP/1.1\r\nHost: x\r\nx-multi: one\r\nX-Empty:\r\nX-Colon: a: b:c \r\nX-MULTI: two, three\r\n" +
		"Content-Length: 2\r\n\r\nhi")
	if r := c.read(); r.Status != 200 {
		t.Fatalf("answer %q", r.StatusLine)
	}
	h := <-got
	want := http.Header{
		"Host":           {"x"},
		"X-Multi":        {"one", "two, three"},
		"X-Empty":        {""},
		"X-Colon":        {"a: b:c"},
		"Content-Length": {"2"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("header %q, want %q", h, want)
	}
}
