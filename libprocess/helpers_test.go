package libprocess

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startRuntime starts a runtime on 127.0.0.1 with a free port and shuts it
// down when the test ends.
func startRuntime(t testing.TB, mutate ...func(*Config)) *Runtime {
	t.Helper()
	cfg := DefaultConfig()
	cfg.IP = "127.0.0.1"
	for _, m := range mutate {
		m(&cfg)
	}
	rt, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := rt.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return rt
}

// recorder is a process that forwards every message it handles to a
// channel.
type recorder struct {
	*Process
	got chan Message
}

func spawnRecorder(t testing.TB, rt *Runtime, id string, names ...string) *recorder {
	t.Helper()
	r := &recorder{Process: NewProcess(id), got: make(chan Message, 20000)}
	for _, n := range names {
		r.Install(n, func(m *Message) { r.got <- *m })
	}
	if _, err := rt.Spawn(r.Process); err != nil {
		t.Fatalf("Spawn %s: %v", id, err)
	}
	return r
}

func (r *recorder) next(t testing.TB) Message {
	t.Helper()
	select {
	case m := <-r.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no message within 10s", r.id)
		return Message{}
	}
}

// rawConn is a test client speaking bytes to the runtime's port.
type rawConn struct {
	t testing.TB
	net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, rt *Runtime) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", rt.Addr().HostPort(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// rawResponse is one parsed HTTP response.
type rawResponse struct {
	StatusLine string
	Status     int
	Header     http.Header
	Body       []byte
}

// read reads one response (Content-Length or chunked body).
func (c *rawConn) read() rawResponse {
	c.t.Helper()
	resp, err := readResponse(c.r)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return resp
}

func readResponse(r *bufio.Reader) (rawResponse, error) {
	var resp rawResponse
	line, err := r.ReadString('\n')
	if err != nil {
		return resp, fmt.Errorf("status line: %w", err)
	}
	resp.StatusLine = strings.TrimRight(line, "\r\n")
	parts := strings.SplitN(resp.StatusLine, " ", 3)
	if len(parts) < 2 {
		return resp, fmt.Errorf("malformed status line %q", resp.StatusLine)
	}
	resp.Status, _ = strconv.Atoi(parts[1])
	resp.Header = make(http.Header)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return resp, fmt.Errorf("header: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		resp.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if strings.EqualFold(resp.Header.Get("Transfer-Encoding"), "chunked") {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return resp, err
			}
			n, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
			if err != nil {
				return resp, fmt.Errorf("chunk size %q: %w", line, err)
			}
			if n == 0 {
				_, err = r.ReadString('\n')
				return resp, err
			}
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return resp, err
			}
			resp.Body = append(resp.Body, buf[:n]...)
		}
	}
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		n, _ := strconv.Atoi(cl)
		resp.Body = make([]byte, n)
		if _, err := io.ReadFull(r, resp.Body); err != nil {
			return resp, err
		}
	}
	return resp, nil
}

// expectClosed asserts the server closes the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.r.ReadByte()
	if err == nil {
		c.t.Fatalf("connection still open: read %q", b)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.t.Fatalf("connection not closed within 5s")
	}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
