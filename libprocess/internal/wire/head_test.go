package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func headStatus(err error) int {
	var he *HeadError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

func TestParseHeadErrors(t *testing.T) {
	long := strings.Repeat("a", MaxHeadSize)
	manyHeaders := "POST / HTTP/1.1\r\n" + strings.Repeat("X-A: b\r\n", MaxHeaders+1) + "\r\n"
	cases := []struct {
		name, raw string
		status    int
	}{
		{"HTTP/2.0", "POST / HTTP/2.0\r\n\r\n", 505},
		{"HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", 505},
		{"HTTP/0.9 style", "GET /\r\n\r\n", 400},
		{"lower-case protocol", "GET / http/1.1\r\n\r\n", 400},
		{"no target", "GET HTTP/1.1\r\n\r\n", 400},
		{"empty method", " / HTTP/1.1\r\n\r\n", 400},
		{"method with separator", "PO(ST / HTTP/1.1\r\n\r\n", 400},
		{"space in target", "POST /a b HTTP/1.1\r\n\r\n", 400},
		{"control char in target", "POST /a\x01b HTTP/1.1\r\n\r\n", 400},
		{"DEL in target", "POST /a\x7fb HTTP/1.1\r\n\r\n", 400},
		{"header without colon", "POST / HTTP/1.1\r\nUser-Agent libprocess/a@b:1\r\n\r\n", 400},
		{"header with empty name", "POST / HTTP/1.1\r\n: value\r\n\r\n", 400},
		{"space before colon", "POST / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
		{"obsolete folding (space)", "POST / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", 400},
		{"obsolete folding (tab)", "POST / HTTP/1.1\r\nX-A: b\r\n\tc\r\n\r\n", 400},
		{"folding as first header", "POST / HTTP/1.1\r\n Host: x\r\n\r\n", 400},
		{"Content-Length not a number", "POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n", 400},
		{"Content-Length negative", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
		{"Content-Length empty", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400},
		{"Content-Length plus sign", "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400},
		{"Content-Length list", "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400},
		{"Content-Length 19 digits", "POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n", 400},
		{"Content-Length 25 digits", "POST / HTTP/1.1\r\nContent-Length: 1000000000000000000000000\r\n\r\n", 400},
		{"conflicting Content-Length", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
		{"duplicate Host", "POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"Transfer-Encoding gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"Transfer-Encoding identity", "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501},
		{"Transfer-Encoding empty", "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", 501},
		{"Transfer-Encoding chunked, gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501},
		// We would hand the still-gzipped bytes on as the message body.
		{"Transfer-Encoding gzip, chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"second Transfer-Encoding header gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"too many headers", manyHeaders, 431},
		{"request line too long", "GET /" + long + " HTTP/1.1\r\n\r\n", 431},
		{"request line too long, incomplete", "GET /" + long, 431},
		{"header too long", "POST / HTTP/1.1\r\nX-A: " + long + "\r\n\r\n", 431},
		{"header too long, incomplete", "POST / HTTP/1.1\r\nX-A: " + long, 431},
		{"endless empty lines", strings.Repeat("\r\n", MaxHeadSize/2), 431},
		{"endless bare LFs", strings.Repeat("\n", MaxHeadSize+1), 431},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h Head
			n, err := ParseHead([]byte(c.raw), &h)
			if got := headStatus(err); got != c.status {
				t.Fatalf("ParseHead = %d, %v (status %d); want status %d", n, err, got, c.status)
			}
			if n != 0 {
				t.Errorf("n = %d on error", n)
			}
			if !strings.HasPrefix(err.Error(), "wire: bad request head: ") {
				t.Errorf("error text %q", err)
			}
		})
	}
}

// TestParseHeadSizeLimitExact pins the limit: a head of exactly
// MaxHeadSize bytes parses, one byte more is 431, and no prefix of the
// longer one is accepted or rejected differently from the whole.
func TestParseHeadSizeLimitExact(t *testing.T) {
	mk := func(size int) []byte {
		prefix := "POST / HTTP/1.1\r\nX-Pad: "
		suffix := "\r\n\r\n"
		return []byte(prefix + strings.Repeat("p", size-len(prefix)-len(suffix)) + suffix)
	}
	var h Head
	ok := mk(MaxHeadSize)
	n, err := ParseHead(ok, &h)
	if err != nil || n != MaxHeadSize {
		t.Fatalf("head of MaxHeadSize: %d, %v", n, err)
	}
	for k := 0; k < len(ok); k += 997 {
		if _, err := ParseHead(ok[:k], &h); err != ErrIncomplete {
			t.Fatalf("prefix %d of an acceptable head: %v", k, err)
		}
	}
	if _, err := ParseHead(ok[:len(ok)-1], &h); err != ErrIncomplete {
		t.Fatalf("head missing its last byte: %v", err)
	}
	tooBig := mk(MaxHeadSize + 1)
	if _, err := ParseHead(tooBig, &h); headStatus(err) != 431 {
		t.Fatalf("head of MaxHeadSize+1: %v", err)
	}
	// Leading empty lines count: the same head behind one CRLF is too big.
	if _, err := ParseHead(append([]byte("\r\n"), ok...), &h); headStatus(err) != 431 {
		t.Fatalf("CRLF + head of MaxHeadSize: %v", err)
	}
	// Followed by more bytes (a pipelined request) the verdict is the same.
	more := append(append([]byte(nil), ok...), "GET / HTTP/1.1\r\n\r\n"...)
	if n, err := ParseHead(more, &h); err != nil || n != MaxHeadSize {
		t.Fatalf("head of MaxHeadSize followed by more: %d, %v", n, err)
	}
}

func TestParseHeadMaxHeadersExact(t *testing.T) {
	raw := "POST / HTTP/1.1\r\n" + strings.Repeat("X-A: b\r\n", MaxHeaders) + "\r\n"
	var h Head
	n, err := ParseHead([]byte(raw), &h)
	if err != nil || n != len(raw) || len(h.Headers) != MaxHeaders {
		t.Fatalf("MaxHeaders headers: n=%d err=%v headers=%d", n, err, len(h.Headers))
	}
}

func TestParseHeadDerived(t *testing.T) {
	raw := "\r\n\n" + // empty lines before the request line are skipped
		"PUT /a/b?c=d HTTP/1.0\n" + // bare LF line ends
		"user-agent:\tcurl/8.0 \r\n" +
		"HOST: example.com:80\r\n" +
		"content-length: 007\r\n" +
		"Content-Length: 7\r\n" + // repeated, same value: fine
		"connection: foo , KEEP-ALIVE,bar\r\n" +
		"X-Empty:\r\n" +
		"X-Colon: a:b: c \r\n" +
		"\r\n" +
		"rest"
	var h Head
	n, err := ParseHead([]byte(raw), &h)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(raw)-len("rest") {
		t.Errorf("n = %d, want %d", n, len(raw)-4)
	}
	if string(h.Method) != "PUT" || string(h.Target) != "/a/b?c=d" || h.Minor != 0 {
		t.Errorf("request line = %q %q %d", h.Method, h.Target, h.Minor)
	}
	if string(h.UserAgent) != "curl/8.0" || !h.HasHost || string(h.Host) != "example.com:80" {
		t.Errorf("UserAgent %q Host %v %q", h.UserAgent, h.HasHost, h.Host)
	}
	if h.ContentLength != 7 || h.Chunked || h.HasFrom || h.LibprocessFrom != nil {
		t.Errorf("ContentLength %d Chunked %v HasFrom %v", h.ContentLength, h.Chunked, h.HasFrom)
	}
	if !h.ConnKeepAlive || h.ConnClose || !h.KeepAlive() {
		t.Errorf("ConnKeepAlive %v ConnClose %v KeepAlive %v", h.ConnKeepAlive, h.ConnClose, h.KeepAlive())
	}
	if len(h.Headers) != 7 {
		t.Fatalf("%d headers", len(h.Headers))
	}
	if v, ok := h.Get("x-colon"); !ok || string(v) != "a:b: c" {
		t.Errorf("Get(x-colon) = %q %v", v, ok)
	}
	if v, ok := h.Get("X-EMPTY"); !ok || len(v) != 0 {
		t.Errorf("Get(X-EMPTY) = %q %v", v, ok)
	}
	if _, ok := h.Get("X-Missing"); ok {
		t.Errorf("Get(X-Missing) found")
	}
	if v, _ := h.Get("Content-Length"); string(v) != "007" {
		t.Errorf("Get returns %q, want the first header's value", v)
	}
	if m := IsMessage(&h); m {
		t.Errorf("PUT is a message")
	}

	// Reuse: a second parse into the same Head forgets everything.
	n, err = ParseHead([]byte("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), &h)
	if err != nil || n != 37 {
		t.Fatalf("reparse: %d %v", n, err)
	}
	if h.HasHost || h.Host != nil || h.UserAgent != nil || h.ContentLength != -1 || h.ConnKeepAlive || !h.ConnClose || h.KeepAlive() || len(h.Headers) != 1 {
		t.Errorf("stale fields after reuse: %+v", h)
	}
}

func TestParseHeadChunkedWinsOverContentLength(t *testing.T) {
	for _, raw := range []string{
		"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nContent-Length: 5\r\n\r\n",
	} {
		var h Head
		if _, err := ParseHead([]byte(raw), &h); err != nil {
			t.Fatal(err)
		}
		if !h.Chunked || h.ContentLength != -1 {
			t.Errorf("%q: Chunked %v ContentLength %d", raw, h.Chunked, h.ContentLength)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	cases := []struct {
		raw  string
		want bool
	}{
		{"GET / HTTP/1.1\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nConnection: Keep-Alive, Close\r\n\r\n", false},
		{"GET / HTTP/1.0\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: ,,keep-alive,\r\n\r\n", true},
	}
	for _, c := range cases {
		var h Head
		if _, err := ParseHead([]byte(c.raw), &h); err != nil {
			t.Fatal(err)
		}
		if h.KeepAlive() != c.want {
			t.Errorf("%q: KeepAlive = %v", c.raw, h.KeepAlive())
		}
	}
}

func TestParseHeadIncomplete(t *testing.T) {
	for _, raw := range []string{
		"", "\r", "\r\n", "\n\n\r", "P", "POST / HTTP/1.1", "POST / HTTP/1.1\r",
		"POST / HTTP/1.1\r\n", "POST / HTTP/1.1\r\nHost: x\r\n", "POST / HTTP/1.1\r\nHost: x\r\n\r",
	} {
		var h Head
		if n, err := ParseHead([]byte(raw), &h); err != ErrIncomplete || n != 0 {
			t.Errorf("%q: %d %v, want ErrIncomplete", raw, n, err)
		}
	}
}

func TestParseHeadZeroAllocs(t *testing.T) {
	raw := []byte(peerCases[0].raw)
	var h Head
	if _, err := ParseHead(raw, &h); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseHead(raw, &h); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseHead allocates %v times per head", allocs)
	}
}

func TestHeadAliasesBuffer(t *testing.T) {
	raw := []byte("POST /x/y HTTP/1.1\r\nLibprocess-From: a@1.2.3.4:5\r\n\r\n")
	var h Head
	if _, err := ParseHead(raw, &h); err != nil {
		t.Fatal(err)
	}
	copy(raw[6:], "Z")
	if !bytes.Equal(h.Target, []byte("/Z/y")) {
		t.Errorf("Target %q does not alias the buffer", h.Target)
	}
}

// TestIsTchar checks the token bit sets against RFC 9110's definition of
// tchar, byte by byte.
func TestIsTchar(t *testing.T) {
	const extra = "!#$%&'*+-.^_`|~"
	for c := 0; c < 256; c++ {
		want := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			(c < 128 && strings.IndexByte(extra, byte(c)) >= 0)
		if got := isTchar(byte(c)); got != want {
			t.Errorf("isTchar(%#02x) = %v, want %v", c, got, want)
		}
	}
}
