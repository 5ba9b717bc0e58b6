package libprocess

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/procpanda/procpanda/libprocess/internal/wire"
	"github.com/valyala/fasthttp"
)

// gzipMinSize is the smallest body libprocess compresses (spec 5.3).
const gzipMinSize = 1024

// disconnectPoll is how often a pending HTTP request checks whether its
// client has gone away.
const disconnectPoll = 100 * time.Millisecond

// serveHTTP is the fasthttp handler. It only ever sees ordinary HTTP
// requests — the codec serves every message itself — and routes each to
// its process (spec 4).
func (s *server) serveHTTP(ctx *fasthttp.RequestCtx) {
	start := time.Now()
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
	var mc *msgConn
	if hc, ok := ctx.Conn().(*httpConn); ok {
		mc = hc.mc
	}
	deadline := start.Add(s.rt.cfg.RouteTimeout)
	if cl := ctx.Request.Header.ContentLength(); ctx.Request.IsBodyStream() && (cl < 0 || cl > s.rt.cfg.BufferedBodyLimit) {
		// The route reads the body as it needs it, within the route's
		// deadline rather than ReadTimeout.
		req.BodyStream = &limitedBody{r: ctx.RequestBodyStream(), left: s.rt.cfg.MaxRequestBodySize}
		if mc != nil {
			mc.bodyDeadline.Store(deadline.UnixNano())
		}
	} else if cl > 0 {
		body, status := s.readBufferedBody(ctx, mc, cl)
		if status != 0 {
			text := http.StatusText(status)
			if status == http.StatusServiceUnavailable {
				text = errBudget
			}
			ctx.SetConnectionClose()
			writeResponse(ctx, req, TextResponse(status, text))
			return
		}
		req.Body = body
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
	resp, deadline := s.await(ctx, ev, cancel, mc, start, deadline)
	if resp.Stream != nil {
		// fasthttp writes the stream after this handler returns and closes
		// it when done, when the client goes away, or at the route's
		// deadline: the request's context lives until then.
		resp.Stream = newRouteStream(s, resp.Stream, cancel, deadline)
	} else {
		defer cancel()
	}
	writeResponse(ctx, req, resp)
}

// readBufferedBody reads a body of cl bytes (at most BufferedBodyLimit)
// for Request.Body from fasthttp's body stream, growing the buffer as the
// bytes arrive within the inbound body budget, under the request's read
// deadline. It returns the status to answer with instead when it cannot.
func (s *server) readBufferedBody(ctx *fasthttp.RequestCtx, mc *msgConn, cl int) ([]byte, int) {
	r := ctx.RequestBodyStream()
	if r == nil {
		// fasthttp read the whole body itself (no stream to warn about).
		return append([]byte(nil), ctx.Request.Body()...), 0
	}
	deadline := time.Now().Add(s.rt.cfg.ReadTimeout)
	if mc != nil && !mc.reqDeadline.IsZero() {
		deadline = mc.reqDeadline
	}
	var body []byte
	var held int64
	defer func() { s.budget.release(held) }()
	for len(body) < cl {
		if len(body) == cap(body) {
			newCap := min(cl, max(2*cap(body), minBodyAlloc))
			if !s.takeBudget(int64(newCap)-held, deadline, ctx.RemoteAddr()) {
				return nil, http.StatusServiceUnavailable
			}
			held = int64(newCap)
			nb := make([]byte, len(body), newCap)
			copy(nb, body)
			body = nb
		}
		n, err := r.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err != nil && len(body) < cl {
			if isTimeout(err) {
				return nil, http.StatusRequestTimeout
			}
			return nil, http.StatusBadRequest
		}
	}
	return body, 0
}

// routeStream is a streamed response body: closing it, or the route's
// deadline passing, cancels the request's context; at the deadline the
// stream is also closed, which ends the response.
type routeStream struct {
	io.ReadCloser
	cancel context.CancelFunc

	mu     sync.Mutex
	timer  *time.Timer
	closed bool
}

func newRouteStream(s *server, body io.ReadCloser, cancel context.CancelFunc, deadline time.Time) *routeStream {
	rs := &routeStream{ReadCloser: body, cancel: cancel}
	rs.mu.Lock()
	rs.timer = time.AfterFunc(time.Until(deadline), func() {
		if rs.close() {
			s.rt.metrics.routeTimeouts.Add(1)
			s.rt.log.Warn().Msg("ended a streamed response at its route's deadline")
		}
	})
	rs.mu.Unlock()
	return rs
}

// Close implements io.Closer.
func (rs *routeStream) Close() error {
	if !rs.close() {
		return net.ErrClosed
	}
	return nil
}

// close closes the stream once, reporting whether this call did.
func (rs *routeStream) close() bool {
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		return false
	}
	rs.closed = true
	rs.timer.Stop()
	rs.mu.Unlock()
	rs.cancel()
	_ = rs.ReadCloser.Close()
	return true
}

// await waits for a route's response until the route's deadline (the
// runtime's RouteTimeout, or the route's own once it is routed; counted
// from start), answering 504 and cancelling the request's context when it
// passes. While waiting it watches the client's socket and cancels the
// context when the client resets the connection, and it gives up with 503
// when the runtime's shutdown deadline passes. It returns the deadline in
// force, which a streamed response also ends at.
func (s *server) await(ctx *fasthttp.RequestCtx, ev *httpEvent, cancel context.CancelFunc, mc *msgConn, start, deadline time.Time) (Response, time.Time) {
	select {
	case r := <-ev.response:
		return r, routeDeadline(ev, start, deadline)
	default:
	}
	t := time.NewTicker(disconnectPoll)
	defer t.Stop()
	conn := underlying(ctx.Conn())
	for {
		select {
		case r := <-ev.response:
			return r, routeDeadline(ev, start, deadline)
		case <-s.hardStop:
			return TextResponse(http.StatusServiceUnavailable, "runtime shutting down"), deadline
		case now := <-t.C:
			if d := routeDeadline(ev, start, deadline); !d.Equal(deadline) {
				deadline = d
				if mc != nil && mc.bodyDeadline.Load() != 0 {
					mc.bodyDeadline.Store(d.UnixNano())
				}
			}
			if !now.Before(deadline) {
				if r, ok := ev.abandon(); ok {
					return r, deadline
				}
				cancel()
				s.rt.metrics.routeTimeouts.Add(1)
				s.rt.log.Warn().Str("path", ev.req.URL.Path).Dur("after", now.Sub(start)).Msg("HTTP request answered 504 at its route's deadline")
				return TextResponse(http.StatusGatewayTimeout, "route deadline exceeded"), deadline
			}
			if peerReset(conn) {
				cancel()
			}
		}
	}
}

// routeDeadline is the deadline of a request that arrived at start: the
// route's own timeout once the request has been routed, else def.
func routeDeadline(ev *httpEvent, start, def time.Time) time.Time {
	if d := ev.timeout.Load(); d > 0 {
		return start.Add(time.Duration(d))
	}
	return def
}

// peerReset reports whether the client's connection has failed (reset):
// a non-blocking MSG_PEEK that returns an error other than "no data yet".
// End-of-stream is not a failure: a client that shut down its sending
// side (shutdown(SHUT_WR), as "nc -N" does) still waits for its answer.
// Pipelined bytes waiting on the socket read as "still there".
func peerReset(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	reset := false
	_ = raw.Control(func(fd uintptr) {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		reset = err != nil && err != syscall.EAGAIN && err != syscall.EWOULDBLOCK && err != syscall.EINTR
	})
	return reset
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
