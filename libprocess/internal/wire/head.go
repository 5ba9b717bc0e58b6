package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// ErrIncomplete reports that the buffer does not yet hold a whole request
// head (or body); the caller reads more bytes and calls again with the
// grown buffer.
var ErrIncomplete = errors.New("wire: incomplete input")

// Header is one request header line; Name and Value alias the parsed buffer.
type Header struct {
	Name, Value []byte
}

// Head is a parsed HTTP/1.x request head. Its byte slices alias the buffer
// passed to ParseHead and stay valid only until that buffer is reused. A
// Head is meant to be reused across requests (ParseHead resets it), so
// parsing allocates nothing once Headers has grown to its working size.
type Head struct {
	Method []byte // request method, e.g. "POST"
	Target []byte // raw request-target, e.g. "/master/mesos.internal.Ping"
	Minor  int    // HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1

	Headers []Header // every header line in arrival order

	// Derived from Headers while parsing.
	LibprocessFrom []byte // Libprocess-From value, trimmed; nil if absent
	HasFrom        bool   // a Libprocess-From header was present
	UserAgent      []byte // User-Agent value; nil if absent
	Host           []byte // Host value; nil if absent
	HasHost        bool   // a Host header was present (possibly empty)
	ContentLength  int64  // Content-Length, or -1 when absent
	Chunked        bool   // Transfer-Encoding ends in "chunked"
	ConnClose      bool   // Connection: close
	ConnKeepAlive  bool   // Connection: keep-alive (any case)
}

// Limits bound what ParseHead accepts, so a peer cannot make the parser
// hold unbounded state.
const (
	// MaxHeadSize is the largest request head (request line and headers)
	// ParseHead accepts; ParseHeadLimit may lower it.
	MaxHeadSize = 64 << 10
	// MaxHeaders is the most header lines one request may carry.
	MaxHeaders = 128
)

// HeadError is a request head the parser rejects; the connection cannot be
// resynchronised after it and is answered with Status and closed.
type HeadError struct {
	Status int    // HTTP status to answer with (400, 413, 431, 505)
	Reason string // what was wrong
}

// Error implements error.
func (e *HeadError) Error() string { return fmt.Sprintf("wire: bad request head: %s", e.Reason) }

func headErr(status int, format string, args ...any) error {
	return &HeadError{Status: status, Reason: fmt.Sprintf(format, args...)}
}

// Reset clears h for reuse, keeping the Headers backing array.
func (h *Head) Reset() {
	hs := h.Headers[:0]
	*h = Head{Headers: hs, ContentLength: -1}
}

// ParseHead parses the request head at the start of buf into h. It returns
// the number of bytes the head occupies (including the blank line), or
// ErrIncomplete when buf does not hold a whole head yet, or a *HeadError.
// Leading empty lines before the request line are skipped as RFC 9112
// allows. Lines may end in CRLF or a bare LF.
func ParseHead(buf []byte, h *Head) (int, error) {
	return ParseHeadLimit(buf, h, MaxHeadSize)
}

// ParseHeadLimit is ParseHead for heads of at most max bytes (clamped to
// MaxHeadSize); a longer head is a 431 *HeadError.
func ParseHeadLimit(buf []byte, h *Head, max int) (int, error) {
	if max <= 0 || max > MaxHeadSize {
		max = MaxHeadSize
	}
	h.Reset()
	off := 0
	// Skip empty lines some clients send between pipelined requests.
	for {
		if off < len(buf) && buf[off] == '\n' {
			off++
			continue
		}
		if off+1 < len(buf) && buf[off] == '\r' && buf[off+1] == '\n' {
			off += 2
			continue
		}
		break
	}
	// The head, counting skipped empty lines, is at most max
	// bytes. An incomplete head already that long can only complete
	// longer, so it is rejected as early as a complete one would be, and
	// the verdict does not depend on how the bytes were split.
	line, next, ok := nextLine(buf, off)
	if !ok {
		if len(buf) >= max {
			return 0, headErr(431, "request line longer than %d bytes", max)
		}
		return 0, ErrIncomplete
	}
	if next > max {
		return 0, headErr(431, "request head larger than %d bytes", max)
	}
	if err := parseRequestLine(line, h); err != nil {
		return 0, err
	}
	off = next
	for {
		line, next, ok = nextLine(buf, off)
		if !ok {
			if len(buf) >= max {
				return 0, headErr(431, "request head larger than %d bytes", max)
			}
			return 0, ErrIncomplete
		}
		if next > max {
			return 0, headErr(431, "request head larger than %d bytes", max)
		}
		off = next
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return 0, headErr(400, "obsolete header line folding")
		}
		if len(h.Headers) >= MaxHeaders {
			return 0, headErr(431, "more than %d header lines", MaxHeaders)
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, headErr(400, "header line without a name: %q", truncate(line))
		}
		name := line[:colon]
		if !validToken(name) {
			return 0, headErr(400, "invalid header name %q", truncate(name))
		}
		value := trimOWS(line[colon+1:])
		if !validFieldValue(value) {
			return 0, headErr(400, "control character in the value of header %q", truncate(name))
		}
		h.Headers = append(h.Headers, Header{Name: name, Value: value})
		if err := h.derive(name, value); err != nil {
			return 0, err
		}
	}
	if h.Chunked {
		// RFC 9112 6.3: chunked wins over Content-Length; drop the latter.
		h.ContentLength = -1
	}
	return off, nil
}

// validFieldValue reports whether a header value holds no control
// characters but horizontal tab (RFC 9110 5.5): a lone CR or a NUL is
// where HTTP parsers disagree on where a line ends.
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// AppendCanonical appends h as the one canonical spelling of the request
// head the runtime's HTTP server is handed: CRLF line ends, no leading
// empty lines, "Name: value" headers in arrival order, and the body's
// framing stated once from what ParseHead decided — "Transfer-Encoding:
// chunked" for a chunked body, else "Content-Length: N" when a length was
// given — so the server cannot frame the body differently from the codec.
// h must have been filled by ParseHead and its buffer still be intact.
func (h *Head) AppendCanonical(dst []byte) []byte {
	dst = append(dst, h.Method...)
	dst = append(dst, ' ')
	dst = append(dst, h.Target...)
	if h.Minor == 0 {
		dst = append(dst, " HTTP/1.0\r\n"...)
	} else {
		dst = append(dst, " HTTP/1.1\r\n"...)
	}
	for i := range h.Headers {
		hd := &h.Headers[i]
		if equalFold(hd.Name, "Content-Length") || equalFold(hd.Name, "Transfer-Encoding") {
			continue
		}
		dst = append(dst, hd.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, hd.Value...)
		dst = append(dst, "\r\n"...)
	}
	switch {
	case h.Chunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case h.ContentLength >= 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, h.ContentLength, 10)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// CanonicalOverhead bounds how many bytes AppendCanonical may add to a
// head of at most MaxHeaders header lines: a CR and a space per line plus
// the restated framing header.
const CanonicalOverhead = 2*(MaxHeaders+2) + 64

// nextLine returns the line starting at off without its terminator and the
// offset after the terminator.
func nextLine(buf []byte, off int) (line []byte, next int, ok bool) {
	i := bytes.IndexByte(buf[off:], '\n')
	if i < 0 {
		return nil, 0, false
	}
	end := off + i
	line = buf[off:end]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, end + 1, true
}

func parseRequestLine(line []byte, h *Head) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return headErr(400, "malformed request line %q", truncate(line))
	}
	h.Method = line[:sp1]
	if !validToken(h.Method) {
		return headErr(400, "invalid method %q", truncate(h.Method))
	}
	rest := line[sp1+1:]
	sp2 := bytes.LastIndexByte(rest, ' ')
	if sp2 <= 0 {
		return headErr(400, "malformed request line %q", truncate(line))
	}
	h.Target = rest[:sp2]
	for _, c := range h.Target {
		if c <= ' ' || c == 0x7f {
			return headErr(400, "control character or space in request target")
		}
	}
	proto := rest[sp2+1:]
	switch string(proto) {
	case "HTTP/1.1":
		h.Minor = 1
	case "HTTP/1.0":
		h.Minor = 0
	default:
		if bytes.HasPrefix(proto, []byte("HTTP/")) {
			return headErr(505, "unsupported protocol %q", truncate(proto))
		}
		return headErr(400, "malformed protocol %q", truncate(proto))
	}
	return nil
}

func (h *Head) derive(name, value []byte) error {
	switch {
	case equalFold(name, "Libprocess-From"):
		h.LibprocessFrom = value
		h.HasFrom = true
	case equalFold(name, "User-Agent"):
		h.UserAgent = value
	case equalFold(name, "Host"):
		if h.HasHost {
			return headErr(400, "duplicate Host header")
		}
		h.Host = value
		h.HasHost = true
	case equalFold(name, "Content-Length"):
		n, ok := parseDecimal(value)
		if !ok {
			return headErr(400, "invalid Content-Length %q", truncate(value))
		}
		if h.ContentLength >= 0 && h.ContentLength != n {
			return headErr(400, "conflicting Content-Length headers")
		}
		h.ContentLength = n
	case equalFold(name, "Transfer-Encoding"):
		// chunked is the only coding we decode: with another coding in
		// front of it ("gzip, chunked") the decoded body would still be
		// encoded, and without chunked last the length is unknowable.
		if !equalFold(value, "chunked") {
			return headErr(501, "unsupported Transfer-Encoding %q", truncate(value))
		}
		h.Chunked = true
	case equalFold(name, "Connection"):
		for rest := value; len(rest) > 0; {
			tok := rest
			if i := bytes.IndexByte(rest, ','); i >= 0 {
				tok, rest = rest[:i], rest[i+1:]
			} else {
				rest = nil
			}
			tok = trimOWS(tok)
			if equalFold(tok, "close") {
				h.ConnClose = true
			} else if equalFold(tok, "keep-alive") {
				h.ConnKeepAlive = true
			}
		}
	}
	return nil
}

// KeepAlive reports whether the connection stays open after this request:
// HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with keep-alive.
func (h *Head) KeepAlive() bool {
	if h.ConnClose {
		return false
	}
	return h.Minor == 1 || h.ConnKeepAlive
}

// Get returns the value of the first header named name (case-insensitive).
func (h *Head) Get(name string) ([]byte, bool) {
	for i := range h.Headers {
		if equalFold(h.Headers[i].Name, name) {
			return h.Headers[i].Value, true
		}
	}
	return nil, false
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares b with the ASCII string s case-insensitively without
// allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c, d := b[i], s[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// The token characters of RFC 9110 §5.6.2 (visible ASCII but the
// delimiters `"(),/:;<=>?@[\]{}`), as bit sets of the bytes below 64 and
// of those from 64 to 127.
const (
	tcharLow  uint64 = 0x03ff6cfa00000000
	tcharHigh uint64 = 0x57ffffffc7fffffe
)

// isTchar reports whether c is a token character, with one bit test
// instead of a search of the delimiters (every header name passes here).
func isTchar(c byte) bool {
	if c < 64 {
		return tcharLow>>c&1 == 1
	}
	return c < 128 && tcharHigh>>(c-64)&1 == 1
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
