package conformance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFlaws makes the fake target break specific rules, so tests can check
// that the matching cases FAIL.
type fakeFlaws struct {
	serveDotDot bool // answer paths containing /.. instead of 404
	noDate      bool // omit the Date header
	// sendMode is how the fake sends its messages: "" over one persistent
	// connection per address; "burst" over a fresh connection per message,
	// closed once written (C++ libprocess to a peer it is not linked to,
	// docs/libprocess-wire.md §3.2); "leak" over a fresh connection per message that is never
	// closed (a flaw).
	sendMode string
	// closeOnEOF reads requests until the peer's EOF and then closes the
	// connection, having answered and delivered none of them: C++
	// libprocess' behaviour at EOF (closing and dropping queued answers)
	// in its most visible form.
	closeOnEOF bool
}

// fakeTarget is a minimal libprocess endpoint over raw TCP, good enough for
// the suite's cases: one process, "echo", answering conformance.Ping with
// conformance.Pong and mesos.internal.SmallMessage with itself.
type fakeTarget struct {
	ln    net.Listener
	flaws fakeFlaws

	mu     sync.Mutex
	out    map[string]net.Conn // persistent outbound connections by address
	leaked []net.Conn          // sendMode "leak": connections left open
	wg     sync.WaitGroup
}

// startFake starts a fake target on loopback, closed when the test ends.
func startFake(t *testing.T, flaws fakeFlaws) *fakeTarget {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTarget{ln: ln, flaws: flaws, out: map[string]net.Conn{}}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *fakeTarget) addr() string { return f.ln.Addr().String() }

func (f *fakeTarget) close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for _, c := range f.out {
		_ = c.Close()
	}
	for _, c := range f.leaked {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeTarget) accept() {
	defer f.wg.Done()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		conns = append(conns, c)
		f.wg.Add(1)
		go f.serve(c)
	}
}

// serve answers requests on one connection in order.
func (f *fakeTarget) serve(c net.Conn) {
	defer f.wg.Done()
	defer c.Close()
	br := bufio.NewReader(c)
	if f.flaws.closeOnEOF {
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
		}
	}
	for {
		req, err := readRequest(br)
		code, ctype, body := 0, "", ""
		badBody := err != nil && req != nil && req.Method != ""
		switch {
		case badBody:
			// The head parsed but the body did not: libprocess answers
			// 500 (docs/libprocess-wire.md §2.4) and the connection ends.
			code, ctype, body = 500, "text/plain", "unreadable body"
		case err != nil:
			return
		default:
			code, ctype, body = f.handle(req)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, reason(code))
		if !f.flaws.noDate {
			fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123))
		}
		if ctype != "" {
			fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
		if badBody {
			_, _ = c.Write([]byte(b.String()))
			return
		}
		// Requests already read are served even when the peer has gone
		// and answers cannot be written (docs/libprocess-wire.md §3.2).
		_, _ = c.Write([]byte(b.String()))
		if v, _ := req.Headers.get("Connection"); strings.EqualFold(v, "close") || req.Proto == "HTTP/1.0" {
			return
		}
	}
}

func reason(code int) string {
	return map[int]string{200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}[code]
}

// handle computes the answer to one request.
func (f *fakeTarget) handle(req *request) (int, string, string) {
	from, hasFrom := req.Headers.get("Libprocess-From")
	ua, _ := req.Headers.get("User-Agent")
	if req.Method == "POST" && (hasFrom || strings.HasPrefix(ua, "libprocess/")) {
		if !hasFrom {
			from = strings.TrimPrefix(ua, "libprocess/")
		}
		path := req.Target
		if u, err := url.Parse(path); err == nil && u.Scheme != "" && u.Host != "" {
			path = u.Path
		}
		if !strings.HasPrefix(path, "/") {
			return 400, "text/plain; charset=utf-8", "Request URL path must start with '/'"
		}
		id, name, _ := strings.Cut(path[1:], "/")
		if d, err := url.PathUnescape(id); err == nil {
			id = d
		}
		if id != "echo" {
			return 404, "", ""
		}
		switch name {
		case "conformance.Ping":
			f.send(from, "conformance.Pong", req.Body)
		case mesosGoName:
			f.send(from, mesosGoName, req.Body)
		}
		return 202, "", ""
	}
	u, err := url.Parse(req.Target)
	if err != nil {
		return 400, "", ""
	}
	const notFound, textPlain = "404 Not Found.", "text/plain; charset=utf-8"
	if strings.Contains(u.Path, "/..") && !f.flaws.serveDotDot {
		return 404, textPlain, notFound
	}
	var segs []string
	for _, s := range strings.Split(u.Path, "/") {
		if s != "" && s != ".." {
			segs = append(segs, s)
		}
	}
	if len(segs) > 0 {
		if d, err := url.PathUnescape(segs[0]); err == nil {
			segs[0] = d
		}
	}
	asJSON := func(v any, jsonp bool) (int, string, string) {
		b, _ := json.Marshal(v)
		if cb := u.Query().Get("jsonp"); cb != "" && jsonp {
			return 200, "text/javascript", cb + "(" + string(b) + ")"
		}
		return 200, "application/json", string(b)
	}
	help := "### TL;DR; ###\nStatus.\n\n### USAGE ###\n/echo/status\n\n### DESCRIPTION ###\nStatus.\n"
	switch {
	case len(segs) == 1 && segs[0] == "help" && u.Query().Get("format") == "json":
		return asJSON(map[string]any{"processes": []any{map[string]any{"id": "echo", "endpoints": []any{map[string]any{"name": "/status", "text": help}}}}}, false)
	case len(segs) == 1 && segs[0] == "help":
		return 200, "text/x-markdown", help
	case len(segs) >= 2 && segs[0] == "help" && segs[1] == "echo":
		// The help process has a route per documented process only.
		rest := "/" + strings.Join(segs[1:], "/")
		switch {
		case len(segs) == 2:
			return 200, "text/x-markdown", help
		case rest == "/echo/status":
			if strings.HasPrefix(ua, "curl/") {
				return 200, "text/x-markdown", help
			}
			return 200, "text/html", "<html>" + help + "</html>"
		}
		return 400, "", fmt.Sprintf("No help available for '%s'.\n", rest)
	case len(segs) == 1 && segs[0] == "__processes__":
		return asJSON([]any{map[string]any{"id": "echo", "events": []any{}}}, false)
	case len(segs) == 2 && segs[0] == "metrics" && segs[1] == "snapshot":
		if t := u.Query().Get("timeout"); t != "" && !regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(ns|us|ms|secs|mins|hrs|days|weeks)$`).MatchString(t) {
			return 400, textPlain, "Invalid timeout '" + t + "': invalid duration.\n"
		}
		return asJSON(map[string]float64{"system/up": 1}, true)
	case len(segs) == 2 && segs[0] == "echo" && segs[1] == "status":
		return 200, "text/plain", "ok"
	}
	return 404, textPlain, notFound
}

// send writes a message in the docs/libprocess-wire.md §3.1 format on the persistent connection to
// the sender's address, opening one if needed; answers are read and dropped.
func (f *fakeTarget) send(to, name string, body []byte) {
	id, addr, ok := strings.Cut(strings.TrimSpace(to), "@")
	host, port, ok2 := strings.Cut(addr, ":")
	if !ok || !ok2 {
		return
	}
	// The port is the leading digits (docs/libprocess-wire.md §1.2).
	n := 0
	for n < len(port) && port[n] >= '0' && port[n] <= '9' {
		n++
	}
	addr = host + ":" + port[:n]
	from := "echo@" + f.addr()
	msg := []byte(fmt.Sprintf("POST /%s/%s HTTP/1.1\r\nUser-Agent: libprocess/%s\r\nLibprocess-From: %s\r\nConnection: Keep-Alive\r\nHost: %s\r\n%s",
		id, name, from, from, addr, chunkedOne(body)))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flaws.sendMode != "" {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		_, _ = c.Write(msg)
		if f.flaws.sendMode == "leak" {
			f.leaked = append(f.leaked, c)
		} else {
			_ = c.Close()
		}
		return
	}
	c := f.out[addr]
	if c == nil {
		var err error
		if c, err = net.Dial("tcp", addr); err != nil {
			return
		}
		f.out[addr] = c
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					f.mu.Lock()
					if f.out[addr] == c {
						delete(f.out, addr)
					}
					f.mu.Unlock()
					_ = c.Close()
					return
				}
			}
		}()
	}
	_, _ = c.Write(msg)
}
