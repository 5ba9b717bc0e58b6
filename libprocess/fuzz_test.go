package libprocess

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"
)

// FuzzInbound feeds arbitrary bytes to a live runtime's listener, as a peer
// would, and checks that whatever comes back is well-formed HTTP/1.1
// responses, that the runtime never hangs on them, and that the server
// still serves a normal message afterwards.
func FuzzInbound(f *testing.F) {
	for _, s := range peerShapes("a@1.2.3.4:5", "127.0.0.1:1") {
		f.Add([]byte(s.req))
		f.Add([]byte(s.req + "GET /target/r HTTP/1.1\r\nHost: x\r\n\r\n"))
	}
	f.Add([]byte("POST /target/m HTTP/1.1\r\nLibprocess-From: junk\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
	f.Add([]byte("GET /target/../x HTTP/1.1\r\nHost: x\r\n\r\nGET /help?format=json HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST target HTTP/1.0\r\nUser-Agent: libprocess/\r\n\r\n"))

	rt := startRuntime(f, func(c *Config) { c.ReadTimeout = 200 * time.Millisecond; c.MaxMessageSize = 1 << 16 })
	p := NewProcess("target")
	p.Install("m", func(*Message) {})
	p.Route("r", Help{TLDR: "r"}, func(req *Request, respond Responder) { respond(TextResponse(200, "ok")) })
	if _, err := rt.Spawn(p); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", rt.Addr().HostPort())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			c.Write(data)
			c.(*net.TCPConn).CloseWrite()
		}()
		r := bufio.NewReader(c)
		for {
			if _, err := r.Peek(1); err != nil {
				break // the server closed: fine
			}
			resp, err := readResponse(r)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("runtime hung on input %q", data)
				}
				break
			}
			if !bytes.HasPrefix([]byte(resp.StatusLine), []byte("HTTP/1.1 ")) || resp.Status < 100 || resp.Status > 599 {
				t.Fatalf("malformed status line %q for input %q", resp.StatusLine, data)
			}
		}
		// The server survives.
		c2, err := net.Dial("tcp", rt.Addr().HostPort())
		if err != nil {
			t.Fatalf("server stopped accepting after %q: %v", data, err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(5 * time.Second))
		c2.Write([]byte("POST /target/m HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:5\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
		resp, err := readResponse(bufio.NewReader(c2))
		if err != nil || resp.Status != 202 {
			t.Fatalf("follow-up message after %q: %v %q", data, err, resp.StatusLine)
		}
	})
}
