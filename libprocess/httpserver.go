package libprocess

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/procpanda/procpanda/libprocess/internal/wire"
	"github.com/valyala/fasthttp"
)

// gzipMinSize is the smallest body libprocess compresses (docs/libprocess-wire.md §5.3).
const gzipMinSize = 1024

// disconnectPoll is how often a pending HTTP request checks whether its
// client has gone away.
const disconnectPoll = 100 * time.Millisecond

// awaitYields is how many times a request yields the processor, looking
// for its answer, before it parks to wait for it (server.await).
const awaitYields = 2

// routed is one routed request's state, allocated together: the Request
// a route sees with its URL, the event that carries it to the process,
// and its lazily made parts. Routes may keep the Request, so a routed is
// never reused; what only the connection's goroutine uses while the
// request is served lives in the msgConn instead. The head's strings get
// an allocation of their own, sized to them and free of pointers, which
// keeps routed within 512 bytes: the largest objects Go allocates without
// a per-object header (TestRoutedSize).
type routed struct {
	req Request
	url url.URL
	ev  httpEvent
	st  reqState
}

// serveHTTP is the fasthttp handler, where every ordinary HTTP request
// starts and ends; the codec serves every message itself, so only
// ordinary requests get here (docs/libprocess-wire.md §4). It runs on the
// connection's goroutine, in three steps:
//
//   - parseRequest finds the process the path names and makes the
//     Request (path, header, body), or refuses the request;
//   - routeRequest gives the request to the process as one of its
//     events — served on this goroutine when the process is idle
//     (Process.serveInline), queued otherwise — and waits for the answer
//     its Responder gives (await);
//   - answer writes that answer into ctx, which fasthttp then sends.
func (s *server) serveHTTP(ctx *fasthttp.RequestCtx) {
	// fasthttp serves only connections the codec hands it (serveConn).
	mc := ctx.Conn().(*httpConn).mc
	// A route's deadline counts from the request's first byte.
	start := mc.reqStart
	var b *routed
	if s.rt.cfg.AccessLog {
		defer func() { s.logAccess(ctx, b.request(), start) }()
	}
	b, p, refusal := s.parseRequest(ctx, mc, start)
	if p == nil {
		writeResponse(ctx, refusal)
		return
	}
	resp, deadline := s.routeRequest(ctx, mc, p, b, start)
	s.answer(ctx, b, resp, deadline)
}

// parseRequest finds the process a request's path names and makes the
// Request it sees, reading a small body whole. It returns a nil process
// and the answer to give instead when the request goes no further; b is
// then nil too unless the refusal came from reading the body.
func (s *server) parseRequest(ctx *fasthttp.RequestCtx, mc *msgConn, start time.Time) (b *routed, p *Process, refusal Response) {
	// libprocess answers any request whose URL path does not start with
	// '/' this way before routing it; messages get the same rule.
	if uri := ctx.Request.Header.RequestURI(); len(uri) == 0 || uri[0] != '/' {
		// Not the origin form every client sends: an absolute URL's path
		// must start with '/' too.
		if _, _, err := wire.SplitMessagePath(uri); err != nil {
			return nil, nil, TextResponse(http.StatusBadRequest, "Request URL path must start with '/'")
		}
	}
	b = &routed{}
	rawPath := b.strings(ctx, mc)
	if strings.Contains(rawPath, "/..") {
		return nil, nil, notFound()
	}
	p, path := s.receiver(rawPath)
	if p == nil {
		return nil, nil, notFound()
	}
	decoded, err := url.PathUnescape(path)
	if err != nil {
		return nil, nil, Response{Status: http.StatusBadRequest, Body: []byte("Failed to decode URL path: " + err.Error())}
	}
	if s.rt.fw.deniesPath(decoded) {
		s.rt.log.Info().Str("path", decoded).Msg("HTTP request refused: endpoint disabled by the firewall")
		return nil, nil, forbidden(decoded)
	}
	b.url.Path, b.url.RawPath = decoded, path
	req := &b.req
	req.Method = methodString(ctx.Method())
	req.URL = &b.url
	req.RemoteAddr = ctx.RemoteAddr()
	if status := s.requestBody(ctx, mc, req, start.Add(s.rt.cfg.RouteTimeout)); status != 0 {
		text := http.StatusText(status)
		if status == http.StatusServiceUnavailable {
			text = errBudget
		}
		ctx.SetConnectionClose()
		return b, nil, TextResponse(status, text)
	}
	b.st.base = s.baseCtx
	req.st = &b.st
	b.ev.req = req
	b.ev.rest = trimID(decoded, p.id)
	return b, p, Response{}
}

// requestBody gives req its body: read whole into Body when it is small
// (returning the status to answer instead when that fails), or left on the
// socket as BodyStream for the route to read by deadline, the route's.
func (s *server) requestBody(ctx *fasthttp.RequestCtx, mc *msgConn, req *Request, deadline time.Time) (status int) {
	cl := ctx.Request.Header.ContentLength()
	if ctx.Request.IsBodyStream() && (cl < 0 || cl > s.rt.cfg.BufferedBodyLimit) {
		// The route reads the body as it needs it, within the route's
		// deadline rather than ReadTimeout.
		req.BodyStream = &limitedBody{r: ctx.RequestBodyStream(), left: s.rt.cfg.MaxRequestBodySize}
		mc.bodyDeadline.Store(deadline.UnixNano())
		return 0
	}
	if cl > 0 {
		req.Body, status = s.readBufferedBody(ctx, mc, cl)
	}
	return status
}

// request is the routed request for the access log, nil if the request
// was refused before it had one.
func (b *routed) request() *Request {
	if b == nil || b.req.URL == nil {
		return nil
	}
	return &b.req
}

// routeRequest hands a parsed request to its process p and waits for its
// answer until the route's deadline (see await), which it returns too: a
// streamed answer ends at it. A request finding the process idle is served
// on this goroutine (Process.serveInline); any other waits in the mailbox,
// and one the mailbox refuses is answered 503 at once.
func (s *server) routeRequest(ctx *fasthttp.RequestCtx, mc *msgConn, p *Process, b *routed, start time.Time) (Response, time.Time) {
	ev := &b.ev
	// The connection serves one request at a time and every request
	// leaves these as it found them (await), so it lends each the same
	// response channel, answer slot, and event: an HTTP event is done
	// with when serveInline returns (nothing keeps its address) and
	// copied when queued.
	if mc.response == nil {
		mc.response = make(chan Response, 1)
	}
	ev.response, ev.slot = mc.response, &mc.answer
	mail := &mc.mail
	deadline := start.Add(s.rt.cfg.RouteTimeout)
	mail.kind, mail.http = evHTTP, ev // its other fields stay zero
	served := p.serveInline(mail)
	var err error
	if !served {
		err = p.enqueue(*mail)
	}
	mail.http = nil
	if err != nil {
		s.rt.log.Warn().Str("process", p.id).Str("path", b.url.Path).Err(err).Msg("HTTP request refused")
		b.st.cancel()
		resp := TextResponse(http.StatusServiceUnavailable, err.Error())
		resp.SetHeader("Retry-After", "1")
		return resp, deadline
	}
	// Served inline, the answer is in the slot unless the route answers
	// later; queued, it comes when the process serves it.
	return s.await(ctx, ev, mc, start, deadline)
}

// answer writes a route's answer into ctx. The request's context ends
// once it is written; with a streamed body, when the stream ends (fasthttp
// writes it after serveHTTP returns and closes it when done, when the
// client goes away, or at deadline).
func (s *server) answer(ctx *fasthttp.RequestCtx, b *routed, resp Response, deadline time.Time) {
	if resp.Stream != nil {
		resp.Stream = newRouteStream(s, resp.Stream, &b.st, deadline)
	} else {
		defer b.st.cancel()
	}
	writeResponse(ctx, resp)
}

// strings copies the request's raw path, query and header fields into one
// string, sets the URL's RawQuery and what the header is made from, and
// returns the raw path (without its query). The header fields are the
// lines the codec restated for this request (msgConn.headerLines), copied
// as they are; the header map is parsed from them only if the route asks.
func (b *routed) strings(ctx *fasthttp.RequestCtx, mc *msgConn) string {
	rawPath := ctx.URI().PathOriginal()
	if q := bytes.IndexByte(rawPath, '?'); q >= 0 {
		rawPath = rawPath[:q]
	}
	query := ctx.URI().QueryString()
	lines := mc.headerLines()
	buf := make([]byte, 0, len(rawPath)+len(query)+len(lines))
	buf = append(append(append(buf, rawPath...), query...), lines...)
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	path, all := all[:len(rawPath)], all[len(rawPath):]
	b.url.RawQuery = all[:len(query)]
	b.st.raw = all[len(query):]
	return path
}

// methodString returns the request method as a string, without
// allocating for the methods HTTP defines.
func methodString(m []byte) string {
	switch string(m) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodOptions:
		return http.MethodOptions
	}
	return string(m)
}

// trimID returns the decoded path after "/<id>", or the path itself if it
// does not start so.
func trimID(decoded, id string) string {
	if len(decoded) > len(id) && decoded[0] == '/' && decoded[1:1+len(id)] == id {
		return decoded[1+len(id):]
	}
	return decoded
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
	if !mc.reqDeadline.IsZero() {
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
	rc *reqState

	mu     sync.Mutex
	timer  *time.Timer
	closed bool
}

func newRouteStream(s *server, body io.ReadCloser, rc *reqState, deadline time.Time) *routeStream {
	rs := &routeStream{ReadCloser: body, rc: rc}
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
	rs.rc.cancel()
	_ = rs.ReadCloser.Close()
	return true
}

// await waits for a route's response until the route's deadline (the
// runtime's RouteTimeout, or the route's own once it is routed; counted
// from start), answering 504 and cancelling the request's context when it
// passes. While waiting it watches the client's socket and cancels the
// context when the client resets the connection, and it gives up with 503
// when the runtime's shutdown deadline passes. It returns the deadline in
// force, which a streamed response also ends at. On return the event is
// done and its response channel empty.
func (s *server) await(ctx *fasthttp.RequestCtx, ev *httpEvent, mc *msgConn, start, deadline time.Time) (Response, time.Time) {
	// Most routes answer at once, before this goroutine waits: their
	// answer is collected from the slot, without a channel. Yielding lets
	// the process' goroutine, just woken by the enqueue and next to run
	// on this P, serve a queued request while this goroutine stays
	// runnable: the answer is then collected without parking and waking
	// this goroutine (and, with it, another thread), which costs more
	// than the route itself.
	for i := 0; ; i++ {
		if r, ok := ev.collect(i == awaitYields); ok {
			return r, routeDeadline(ev, start, deadline)
		}
		if i == awaitYields {
			break
		}
		runtime.Gosched()
	}
	if mc.poll == nil {
		mc.poll = time.NewTimer(disconnectPoll)
	} else {
		mc.poll.Reset(disconnectPoll)
	}
	t := mc.poll
	defer t.Stop()
	conn := underlying(ctx.Conn())
	for {
		select {
		case r := <-ev.response:
			return r, routeDeadline(ev, start, deadline)
		case <-s.hardStop:
			if r, ok := ev.abandon(); ok {
				return r, deadline
			}
			return TextResponse(http.StatusServiceUnavailable, "runtime shutting down"), deadline
		case now := <-t.C:
			t.Reset(disconnectPoll)
			if d := routeDeadline(ev, start, deadline); !d.Equal(deadline) {
				deadline = d
				if mc.bodyDeadline.Load() != 0 {
					mc.bodyDeadline.Store(d.UnixNano())
				}
			}
			if !now.Before(deadline) {
				if r, ok := ev.abandon(); ok {
					return r, deadline
				}
				ev.req.st.cancel()
				s.rt.metrics.routeTimeouts.Add(1)
				s.rt.log.Warn().Str("path", ev.req.URL.Path).Dur("after", now.Sub(start)).Msg("HTTP request answered 504 at its route's deadline")
				return expiredResponse(), deadline
			}
			if peerReset(conn) {
				ev.req.st.cancel()
			}
		}
	}
}

// expiredResponse is the answer to a request given up at its deadline.
func expiredResponse() Response {
	return TextResponse(http.StatusGatewayTimeout, "route deadline exceeded")
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

// receiver finds the process for a raw path (docs/libprocess-wire.md §4.1, §4.2) and returns
// the path it sees: the path itself, or prefixed with the delegate's id
// when delegated ("/" alone becomes "/<delegate>").
func (s *server) receiver(rawPath string) (*Process, string) {
	trimmed := strings.TrimLeft(rawPath, "/")
	first, _, _ := strings.Cut(trimmed, "/")
	if first != "" {
		if id, err := url.PathUnescape(first); err == nil {
			if p := s.rt.lookup(id); p != nil {
				if len(rawPath) == len(trimmed)+1 {
					return p, rawPath // already "/" + trimmed
				}
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
// (docs/libprocess-wire.md §5.3). jsonp is the route's own choice (JSONPResponse), as in C++.
func writeResponse(ctx *fasthttp.RequestCtx, r Response) {
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
	if r.ContentType != "" && len(ctx.Response.Header.ContentType()) == 0 {
		ctx.Response.Header.SetContentType(r.ContentType)
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
