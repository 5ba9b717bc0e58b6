package conformance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// maxHeadBytes bounds the status/request line plus headers the suite reads.
const maxHeadBytes = 64 << 10

// maxBodyBytes bounds a body the suite reads.
const maxBodyBytes = 16 << 20

// header is one header line as it appeared on the wire.
type header struct {
	Name  string
	Value string
}

// headers is an ordered list of header lines.
type headers []header

// get returns the first value of the named header (case-insensitive).
func (h headers) get(name string) (string, bool) {
	for _, kv := range h {
		if strings.EqualFold(kv.Name, name) {
			return kv.Value, true
		}
	}
	return "", false
}

// has reports whether the named header is present.
func (h headers) has(name string) bool {
	_, ok := h.get(name)
	return ok
}

// response is an HTTP response read off a raw connection.
type response struct {
	StatusLine string
	Proto      string
	Code       int
	Reason     string
	Headers    headers
	Body       []byte // decoded (de-chunked) body
	Chunked    bool
}

// summary describes the response in one short line for reports.
func (r *response) summary() string {
	if r == nil {
		return "no response"
	}
	return fmt.Sprintf("%q, %d body bytes", r.StatusLine, len(r.Body))
}

// rawConn is a client connection on which the suite writes raw bytes and reads
// HTTP responses, every operation bounded by the context deadline.
type rawConn struct {
	conn net.Conn
	br   *bufio.Reader
	ctx  context.Context
}

// dialRaw opens a TCP connection to addr.
func dialRaw(ctx context.Context, addr string) (*rawConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &rawConn{conn: c, br: bufio.NewReader(c), ctx: ctx}, nil
}

// deadline applies the context's deadline to the connection.
func (c *rawConn) deadline() {
	if d, ok := c.ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(d)
	} else {
		_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
}

// Close closes the connection.
func (c *rawConn) Close() error { return c.conn.Close() }

// write writes b in one call.
func (c *rawConn) write(b []byte) error {
	c.deadline()
	if _, err := c.conn.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// readResponse reads one response.
func (c *rawConn) readResponse() (*response, error) {
	c.deadline()
	return readResponse(c.br)
}

// roundTrip writes req and reads one response.
func (c *rawConn) roundTrip(req []byte) (*response, error) {
	if err := c.write(req); err != nil {
		return nil, err
	}
	return c.readResponse()
}

// closeWrite shuts down the sending side of the connection (TCP FIN); the
// target can still answer.
func (c *rawConn) closeWrite() error {
	cw, ok := c.conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("connection cannot shut down only its write side")
	}
	return cw.CloseWrite()
}

// waitClosed reports nil when the peer closes the connection (EOF or reset)
// before the deadline, and an error when data arrives or the deadline passes.
func (c *rawConn) waitClosed() error {
	c.deadline()
	b, err := c.br.ReadByte()
	if err == nil {
		return fmt.Errorf("connection still open: received byte %q", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("connection still open when the case timed out")
	}
	return nil
}

// readHead reads lines up to and including the empty line; it returns the raw
// bytes, the first line, and the header lines. Lines may end in CRLF or a bare
// LF, as C++ libprocess' HTTP parser accepts both.
func readHead(br *bufio.Reader) (raw []byte, first string, hs headers, err error) {
	var buf bytes.Buffer
	lines := 0
	for {
		line, err := br.ReadSlice('\n')
		buf.Write(line)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				if buf.Len() > maxHeadBytes {
					return buf.Bytes(), "", nil, errors.New("head too large")
				}
				continue
			}
			if buf.Len() == 0 && errors.Is(err, io.EOF) {
				return nil, "", nil, io.EOF
			}
			return buf.Bytes(), "", nil, fmt.Errorf("read head: %w", err)
		}
		if buf.Len() > maxHeadBytes {
			return buf.Bytes(), "", nil, errors.New("head too large")
		}
		lines++
		if b := buf.Bytes(); lines == 1 && (len(b) == 1 || len(b) == 2 && b[0] == '\r') ||
			bytes.HasSuffix(b, []byte("\n\n")) || bytes.HasSuffix(b, []byte("\n\r\n")) {
			break
		}
	}
	raw = append([]byte(nil), buf.Bytes()...)
	all := strings.Split(strings.TrimRight(string(raw), "\r\n"), "\n")
	first = strings.TrimSuffix(all[0], "\r")
	for _, l := range all[1:] {
		l = strings.TrimSuffix(l, "\r")
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return raw, first, hs, fmt.Errorf("malformed header line %q", l)
		}
		hs = append(hs, header{Name: name, Value: strings.Trim(value, " \t")})
	}
	return raw, first, hs, nil
}

// readChunked reads a chunked body; it returns the raw bytes as they were on
// the wire and the decoded body.
func readChunked(br *bufio.Reader) (raw, body []byte, err error) {
	var rawBuf, bodyBuf bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		rawBuf.WriteString(line)
		if err != nil {
			return rawBuf.Bytes(), bodyBuf.Bytes(), fmt.Errorf("read chunk size: %w", err)
		}
		sizeText, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		size, err := strconv.ParseUint(strings.TrimSpace(sizeText), 16, 32)
		if err != nil {
			return rawBuf.Bytes(), bodyBuf.Bytes(), fmt.Errorf("bad chunk size line %q: %w", line, err)
		}
		if bodyBuf.Len()+int(size) > maxBodyBytes {
			return rawBuf.Bytes(), bodyBuf.Bytes(), errors.New("chunked body too large")
		}
		if size == 0 {
			// Trailers, then the empty line.
			for {
				t, err := br.ReadString('\n')
				rawBuf.WriteString(t)
				if err != nil {
					return rawBuf.Bytes(), bodyBuf.Bytes(), fmt.Errorf("read trailer: %w", err)
				}
				if t == "\r\n" || t == "\n" {
					return rawBuf.Bytes(), bodyBuf.Bytes(), nil
				}
			}
		}
		chunk := make([]byte, size+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			rawBuf.Write(chunk)
			return rawBuf.Bytes(), bodyBuf.Bytes(), fmt.Errorf("read chunk: %w", err)
		}
		rawBuf.Write(chunk)
		if !bytes.HasSuffix(chunk, []byte("\r\n")) {
			return rawBuf.Bytes(), bodyBuf.Bytes(), errors.New("chunk not followed by CRLF")
		}
		bodyBuf.Write(chunk[:size])
	}
}

// readBody reads a body delimited by Content-Length or chunked coding; with
// neither it reads nothing unless untilEOF is set.
func readBody(br *bufio.Reader, hs headers, untilEOF bool) (raw, body []byte, chunked bool, err error) {
	if te, ok := hs.get("Transfer-Encoding"); ok && strings.EqualFold(strings.TrimSpace(te), "chunked") {
		raw, body, err = readChunked(br)
		return raw, body, true, err
	}
	if cl, ok := hs.get("Content-Length"); ok {
		n, perr := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
		if perr != nil || n < 0 || n > maxBodyBytes {
			return nil, nil, false, fmt.Errorf("bad Content-Length %q", cl)
		}
		body = make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return body, body, false, fmt.Errorf("read body: %w", err)
		}
		return body, body, false, nil
	}
	if untilEOF {
		body, err = io.ReadAll(io.LimitReader(br, maxBodyBytes))
		if err != nil {
			return body, body, false, fmt.Errorf("read body to EOF: %w", err)
		}
		return body, body, false, nil
	}
	return nil, nil, false, nil
}

// errClosedBeforeResponse is a connection that ended before a response
// began.
var errClosedBeforeResponse = errors.New("connection closed before a response")

// readResponse reads one HTTP response.
func readResponse(br *bufio.Reader) (*response, error) {
	_, first, hs, err := readHead(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errClosedBeforeResponse
		}
		return nil, err
	}
	r := &response{StatusLine: first, Headers: hs}
	proto, rest, _ := strings.Cut(first, " ")
	codeText, reason, _ := strings.Cut(rest, " ")
	r.Proto, r.Reason = proto, reason
	r.Code, err = strconv.Atoi(codeText)
	if err != nil || !strings.HasPrefix(proto, "HTTP/") {
		return r, fmt.Errorf("malformed status line %q", first)
	}
	if r.Code/100 == 1 || r.Code == 204 || r.Code == 304 {
		return r, nil
	}
	_, r.Body, r.Chunked, err = readBody(br, hs, true)
	return r, err
}

// request is an HTTP request read off a raw connection (the suite's peer reads
// these when the target sends it messages).
type request struct {
	Raw         []byte // request line, headers and body exactly as received
	Head        []byte // request line and headers including the empty line
	RawBody     []byte // body bytes as on the wire (chunk framing included)
	RequestLine string
	Method      string
	Target      string
	Proto       string
	Headers     headers
	Body        []byte // decoded body
}

// readRequest reads one HTTP request.
func readRequest(br *bufio.Reader) (*request, error) {
	head, first, hs, err := readHead(br)
	if err != nil {
		return nil, err
	}
	r := &request{Head: head, RequestLine: first, Headers: hs}
	parts := strings.SplitN(first, " ", 3)
	if len(parts) != 3 {
		return r, fmt.Errorf("malformed request line %q", first)
	}
	r.Method, r.Target, r.Proto = parts[0], parts[1], parts[2]
	r.RawBody, r.Body, _, err = readBody(br, hs, false)
	r.Raw = append(append([]byte(nil), head...), r.RawBody...)
	return r, err
}
