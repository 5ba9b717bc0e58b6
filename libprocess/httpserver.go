package libprocess

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/procpanda/procpanda/libprocess/wire"
	"github.com/valyala/fasthttp"
)

// gzipMinSize is the smallest body libprocess compresses (spec 5.3).
const gzipMinSize = 1024

// disconnectPoll is how often a pending HTTP request checks whether its
// client has gone away.
const disconnectPoll = 100 * time.Millisecond

var (
	headerLibprocessFrom = []byte("Libprocess-From")
	headerUserAgent      = []byte("User-Agent")
)

// serveHTTP is the fasthttp handler: it serves messages that arrive on
// HTTP connections, and routes every other request to its process (spec 4).
func (s *server) serveHTTP(ctx *fasthttp.RequestCtx) {
	if s.isMessage(ctx) {
		s.serveMessage(ctx)
		return
	}
	// libprocess answers any request whose URL path does not start with
	// '/' this way before routing it; messages get the same rule.
	if _, _, err := wire.SplitMessagePath(ctx.Request.Header.RequestURI()); err != nil {
		writeResponse(ctx, nil, TextResponse(http.StatusBadRequest, "Request URL path must start with '/'"))
		return
	}
	rawPath := string(ctx.URI().PathOriginal())
	if q := strings.IndexByte(rawPath, '?'); q >= 0 {
		rawPath = rawPath[:q]
	}
	if strings.Contains(rawPath, "/..") {
		writeResponse(ctx, nil, notFound())
		return
	}
	p, path := s.receiver(rawPath)
	if p == nil {
		writeResponse(ctx, nil, notFound())
		return
	}
	decoded, err := url.PathUnescape(path)
	if err != nil {
		ctx.SetStatusCode(http.StatusBadRequest)
		ctx.SetBodyString("Failed to decode URL path: " + err.Error())
		return
	}
	if s.rt.fw.deniesPath(decoded) {
		s.rt.log.Info().Str("path", decoded).Msg("HTTP request refused: endpoint disabled by the firewall")
		writeResponse(ctx, &Request{URL: &url.URL{}}, forbidden(decoded))
		return
	}
	u := &url.URL{Path: decoded, RawPath: path, RawQuery: string(ctx.URI().QueryString())}
	req := &Request{
		Method:     string(ctx.Method()),
		URL:        u,
		Header:     make(http.Header),
		RemoteAddr: ctx.RemoteAddr(),
	}
	for k, v := range ctx.Request.Header.All() {
		req.Header.Add(string(k), string(v))
	}
	if cl := ctx.Request.Header.ContentLength(); ctx.Request.IsBodyStream() && (cl < 0 || cl > s.rt.cfg.BufferedBodyLimit) {
		req.BodyStream = &limitedBody{r: ctx.RequestBodyStream(), left: s.rt.cfg.MaxRequestBodySize}
	} else if body := ctx.PostBody(); len(body) > 0 {
		req.Body = append([]byte(nil), body...)
	}
	rctx, cancel := context.WithCancel(s.baseCtx)
	req.ctx = rctx
	rest := strings.TrimPrefix(decoded, "/"+p.id)
	ev := newHTTPEvent(req, rest, cancel)
	if err := p.enqueue(event{kind: evHTTP, http: ev}); err != nil {
		s.rt.log.Warn().Str("process", p.id).Str("path", decoded).Err(err).Msg("HTTP request refused")
		cancel()
		ctx.Response.Header.Set("Retry-After", "1")
		writeResponse(ctx, req, TextResponse(http.StatusServiceUnavailable, err.Error()))
		return
	}
	resp := s.await(ctx, ev, cancel)
	if resp.Stream != nil {
		// fasthttp writes the stream after this handler returns and closes
		// it when done or when the client goes away: the request's context
		// lives until then.
		resp.Stream = &cancelOnClose{ReadCloser: resp.Stream, cancel: cancel}
	} else {
		defer cancel()
	}
	writeResponse(ctx, req, resp)
}

// cancelOnClose cancels a request's context when its streamed response
// body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// await waits for a route's response. While waiting it watches the client's
// socket and cancels the request's context when the client hangs up, and it
// gives up with 503 when the runtime's shutdown deadline passes.
func (s *server) await(ctx *fasthttp.RequestCtx, ev *httpEvent, cancel context.CancelFunc) Response {
	select {
	case r := <-ev.response:
		return r
	default:
	}
	t := time.NewTicker(disconnectPoll)
	defer t.Stop()
	conn := underlying(ctx.Conn())
	for {
		select {
		case r := <-ev.response:
			return r
		case <-s.hardStop:
			return TextResponse(http.StatusServiceUnavailable, "runtime shutting down")
		case <-t.C:
			if peerClosed(conn) {
				cancel()
			}
		}
	}
}

// peerClosed reports whether the client closed its side: a non-blocking
// MSG_PEEK that reads end-of-stream. Pipelined bytes waiting on the socket
// read as "still there".
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = n == 0 && err == nil || (err != nil && err != syscall.EAGAIN && err != syscall.EWOULDBLOCK && err != syscall.EINTR)
	})
	return closed
}

// receiver finds the process for a raw path (spec 4.1, 4.2) and returns
// the path it sees: the path itself, or prefixed with the delegate's id
// when delegated ("/" alone becomes "/<delegate>").
func (s *server) receiver(rawPath string) (*Process, string) {
	trimmed := strings.TrimLeft(rawPath, "/")
	first, _, _ := strings.Cut(trimmed, "/")
	if first != "" {
		if id, err := url.PathUnescape(first); err == nil {
			if p := s.rt.lookup(id); p != nil {
				return p, "/" + trimmed
			}
		}
	}
	if d := s.rt.cfg.Delegate; d != "" {
		if p := s.rt.lookup(d); p != nil {
			if first == "" {
				return p, "/" + d
			}
			return p, "/" + d + "/" + trimmed
		}
	}
	return nil, rawPath
}

func (s *server) isMessage(ctx *fasthttp.RequestCtx) bool {
	if !ctx.IsPost() {
		return false
	}
	if ctx.Request.Header.PeekBytes(headerLibprocessFrom) != nil {
		return true
	}
	return bytes.HasPrefix(ctx.Request.Header.PeekBytes(headerUserAgent), []byte("libprocess/"))
}

// serveMessage accepts a message that reached the HTTP server (a peer whose
// connection began with an ordinary request).
func (s *server) serveMessage(ctx *fasthttp.RequestCtx) {
	from := ctx.Request.Header.PeekBytes(headerLibprocessFrom)
	if from != nil {
		from = bytes.TrimSpace(from)
	} else {
		ua := ctx.Request.Header.PeekBytes(headerUserAgent)
		from = bytes.TrimSpace(ua[len("libprocess/"):])
	}
	var st msgState
	var body []byte
	if ctx.Request.IsBodyStream() {
		b, err := io.ReadAll(&limitedBody{r: ctx.RequestBodyStream(), left: int64(s.rt.cfg.MaxMessageSize)})
		if err != nil {
			ctx.SetStatusCode(http.StatusRequestEntityTooLarge)
			ctx.SetConnectionClose()
			return
		}
		body = b
	} else if b := ctx.PostBody(); len(b) > 0 {
		body = append([]byte(nil), b...)
	}
	peerIP := ctx.RemoteIP().String()
	status, text := s.rt.acceptMessage(&st, ctx.Request.Header.RequestURI(), from, ctx.RemoteAddr(), peerIP, body)
	ctx.SetStatusCode(status)
	if text != "" {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(text)
	}
}

// writeResponse copies a route's response into fasthttp's, applying gzip
// (spec 5.3). jsonp is the route's own choice (JSONPResponse), as in C++.
func writeResponse(ctx *fasthttp.RequestCtx, _ *Request, r Response) {
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	ctx.SetStatusCode(status)
	for k, vs := range r.Header {
		for _, v := range vs {
			ctx.Response.Header.Add(k, v)
		}
	}
	if r.Stream != nil {
		ctx.SetBodyStream(r.Stream, -1)
		return
	}
	body := r.Body
	if len(body) >= gzipMinSize && r.Header.Get("Content-Encoding") == "" &&
		acceptsGzip(string(ctx.Request.Header.Peek("Accept-Encoding"))) {
		body = fasthttp.AppendGzipBytes(nil, body)
		ctx.Response.Header.Set("Content-Encoding", "gzip")
	}
	ctx.SetBody(body)
}

// acceptsGzip implements libprocess' Request::acceptsEncoding("gzip"): gzip
// (or "*") listed with a non-zero quality.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}
