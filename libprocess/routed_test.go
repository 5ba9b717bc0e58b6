package libprocess

import (
	"strings"
	"testing"
)

// A request's path, query and header reach the route intact whether they
// fit in the room routed keeps for them or not.
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
	for _, n := range []int{0, 10, routedText, routedText + 1, 4 * routedText} {
		v := strings.Repeat("v", n)
		c.write("GET /svc/echo?q=" + v + " HTTP/1.1\r\nHost: x\r\nX-A: " + v + "\r\nUser-Agent: ua\r\n\r\n")
		want := "/svc/echo?q=" + v + "|" + v + "|ua"
		if r := c.read(); r.Status != 200 || string(r.Body) != want {
			t.Fatalf("value of %d bytes: %q %q", n, r.StatusLine, r.Body)
		}
	}
}
