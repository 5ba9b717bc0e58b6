package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// headFramingSeeds are the heads where HTTP parsers are known to part
// ways: bare LF line ends, obsolete folding, heads near the size limit,
// empty Host, chunked bodies on HTTP/1.0, repeated and conflicting framing
// headers, lone CR and NUL in values, leading empty lines.
func headFramingSeeds() map[string]string {
	jwt := "Bearer " + strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 320)
	return map[string]string{
		"bare-lf":             "GET /svc/repository HTTP/1.1\nHost: x\n\nPOST /t/m HTTP/1.1\nLibprocess-From: a@1.2.3.4:5\n\n",
		"bare-lf-then-crlf":   "GET /svc/a HTTP/1.1\nHost: x\n\nGET /svc/b HTTP/1.1\r\nHost: x\r\n\r\n",
		"bare-lf-body":        "POST /svc/up HTTP/1.1\nHost: x\nContent-Length: 3\n\nabcGET / HTTP/1.1\r\n\r\n",
		"mixed-line-ends":     "GET / HTTP/1.1\r\nHost: x\nAccept: */*\r\n\n",
		"obs-fold":            "GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n",
		"huge-header":         "GET /svc/x HTTP/1.1\r\nHost: x\r\nAuthorization: " + jwt + "\r\n\r\n",
		"empty-host":          "GET / HTTP/1.1\r\nHost: \r\n\r\n",
		"no-host-http10":      "GET / HTTP/1.0\r\n\r\n",
		"http10-chunked":      "POST /svc/up HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"chunked-and-cl":      "POST /svc/up HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"duplicate-same-cl":   "POST /svc/up HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
		"cl-no-space":         "POST /svc/up HTTP/1.1\r\nHost: x\r\nContent-Length:3\r\n\r\nabc",
		"cl-leading-zeros":    "POST /svc/up HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\n\r\nabc",
		"lone-cr-in-value":    "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 5\r\n\r\n",
		"nul-in-value":        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
		"leading-empty-lines": "\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"absolute-target":     "GET http://x/svc/a HTTP/1.1\r\nHost: x\r\n\r\n",
		"post-no-length":      "POST /svc/up HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"expect-continue":     "POST /svc/up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
		"tab-in-value":        "GET / HTTP/1.1\r\nHost: x\r\nX-A:\ta\tb\t\r\n\r\n",
		"obs-text":            "GET / HTTP/1.1\r\nHost: x\r\nX-A: \xe9t\xe9\r\n\r\n",
	}
}

// countingReader counts the bytes taken from its reader.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzHeadFraming feeds the same bytes to the codec's head parser and,
// for every head the runtime hands to fasthttp (an ordinary HTTP request
// the codec accepted), the canonical restatement the runtime hands over
// to fasthttp's request-head parser, followed by whatever came after the
// head. Either fasthttp refuses the head (it answers an error and closes
// the connection, so nothing after it is read as a request) or both agree
// on where the head ends, on the method and target, and on how the body
// is framed.
func FuzzHeadFraming(f *testing.F) {
	for _, s := range headFramingSeeds() {
		f.Add([]byte(s))
	}
	for _, s := range headSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var h Head
		n, err := ParseHead(raw, &h)
		if err != nil || IsMessage(&h) {
			return // answered by the codec itself; fasthttp never sees it
		}
		canon := h.AppendCanonical(nil)
		if len(canon) > n+CanonicalOverhead {
			t.Fatalf("canonical head %d bytes, original %d: over CanonicalOverhead", len(canon), n)
		}
		// The codec reads its own restatement the same way.
		var h2 Head
		n2, err := ParseHead(canon, &h2)
		if err != nil || n2 != len(canon) || h2.Chunked != h.Chunked || h2.ContentLength != h.ContentLength ||
			!bytes.Equal(h2.Method, h.Method) || !bytes.Equal(h2.Target, h.Target) || h2.Minor != h.Minor {
			t.Fatalf("canonical head %q reparsed as n=%d err=%v", canon, n2, err)
		}

		input := append(append([]byte(nil), canon...), raw[n:]...)
		cr := &countingReader{r: bytes.NewReader(input)}
		br := bufio.NewReaderSize(cr, MaxHeadSize+CanonicalOverhead)
		var fh fasthttp.RequestHeader
		if err := fh.Read(br); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				// fasthttp would wait for more bytes on a live
				// connection: the request is never answered.
				t.Fatalf("codec: head ends after %d bytes; fasthttp waits for more of %q: %v", len(canon), input, err)
			}
			return // refused: fasthttp answers and closes the connection
		}
		consumed := cr.n - br.Buffered()
		if consumed != len(canon) {
			t.Fatalf("head end: codec %d bytes, fasthttp %d bytes of %q", len(canon), consumed, input)
		}
		if !bytes.Equal(fh.Method(), h.Method) {
			t.Fatalf("method: codec %q, fasthttp %q", h.Method, fh.Method())
		}
		if !bytes.Equal(fh.RequestURI(), h.Target) {
			t.Fatalf("target: codec %q, fasthttp %q", h.Target, fh.RequestURI())
		}
		cl := fh.ContentLength()
		switch {
		case h.Chunked:
			if cl != -1 {
				t.Fatalf("codec: chunked body; fasthttp Content-Length %d", cl)
			}
		case h.ContentLength >= 0:
			if int64(cl) != h.ContentLength {
				t.Fatalf("codec: %d-byte body; fasthttp Content-Length %d", h.ContentLength, cl)
			}
		default:
			// No framing header: no body for the codec; fasthttp's -2
			// (identity) is read as no body for requests.
			if cl != 0 && cl != -2 {
				t.Fatalf("codec: no body; fasthttp Content-Length %d", cl)
			}
		}
	})
}

// TestWriteHeadFramingSeeds writes FuzzHeadFraming's committed seed corpus.
// It runs only with WIRE_WRITE_FUZZ_SEEDS=1.
func TestWriteHeadFramingSeeds(t *testing.T) {
	if os.Getenv("WIRE_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set WIRE_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHeadFraming")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range headFramingSeeds() {
		data := "go test fuzz v1\n[]byte(" + strconv.Quote(s) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
