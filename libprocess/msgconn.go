package libprocess

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procpanda/procpanda/libprocess/internal/wire"
)

const (
	msgConnInitBuf  = 4 << 10  // initial read buffer of a connection
	msgConnBufSize  = 64 << 10 // read buffer a busy connection grows to
	maxInternNames  = 1024     // message names remembered per connection
	maxKeptBodyCap  = 64 << 10 // chunk scratch kept between messages
	maxResponseHold = 64 << 10 // flush queued responses beyond this
	minBodyAlloc    = 4 << 10  // first allocation of a body read in pieces
)

// msgConn owns one inbound connection's framing, deadlines and hand-off.
// It reads as much as the socket has, parses every complete request in the
// buffer, delivers messages to mailboxes and queues their answers, and
// writes all queued answers with one write when the buffer runs dry — so
// a peer that pipelines N messages costs about one read and one write
// syscall per batch, not per message. An ordinary HTTP request is handed
// to fasthttp through httpConn: its head restated canonically, then its
// body byte for byte up to where the codec says it ends.
//
// Deadlines: a request's read deadline (ReadTimeout) is armed once, when
// its first byte is read, and covers its head and body; between requests
// the connection waits IdleTimeout or MessageIdleTimeout; every write has
// WriteTimeout of its own.
type msgConn struct {
	s      *server
	c      net.Conn
	peerIP string

	buf  []byte // read buffer; live bytes are buf[r:w]
	r, w int
	busy bool   // the last read filled all the free space
	out  []byte // queued responses
	date []byte // Date header scratch

	head    wire.Head
	chunked wire.ChunkedDecoder
	msgState

	target []byte // request target of the message being read
	from   []byte // sender text of the message being read

	reqDeadline   time.Time // read deadline of the request being read; zero between requests
	reqStart      time.Time // when the first byte of the request being read arrived
	readDeadline  time.Time // read deadline last set on the socket
	writeDeadline time.Time // write deadline last set on the socket
	wrote         time.Time // when the last write began, if no read came after it; else zero
	carried       bool      // the connection has carried a libprocess message
	httpSeen      bool      // the connection has carried an ordinary HTTP request
	httpOnly      bool      // accepted by an HTTP-only listener: messages are refused
	writeFailed   bool      // a write failed: deliver the messages the peer sent before it went, answer nothing more
	lastRequest   bool      // the request being handed over ends the connection
	readErr       error     // why the last fill failed
	emptyLines    int       // empty-line bytes skipped since the last request
	held          int64     // InboundBodyBudget bytes this connection holds

	// Hand-over of an HTTP request to fasthttp.
	headLen     int    // length of the HTTP request head pump stopped at
	canon       []byte // canonical head still to hand over: canon[canonOff:]
	canonOff    int
	canonFields int   // where canon's header lines start, after the request line
	passN       int64 // body bytes still to hand over verbatim
	passChunked bool  // a chunked body is being handed over
	// bodyDeadline (Unix ns), when set, bounds reads of a body streamed to
	// a route instead of reqDeadline: the route's deadline. It is set from
	// the request's goroutine while the route reads.
	bodyDeadline atomic.Int64
	// Lent to each HTTP request in turn while it is routed and awaits
	// its route's response (server.routeRequest, server.await): the
	// response channel and the answer slot, empty between requests, the
	// timer that paces the checks for a deadline or a reset, and the
	// request's mailbox event.
	response chan Response
	answer   Response
	poll     *time.Timer
	mail     event
}

func newMsgConn(s *server, c net.Conn) *msgConn {
	mc := &msgConn{s: s, c: c, buf: make([]byte, msgConnInitBuf)}
	if ta, ok := underlying(c).RemoteAddr().(*net.TCPAddr); ok {
		mc.peerIP = ta.IP.String()
	}
	return mc
}

// pump serves messages until an ordinary HTTP request's head is parsed at
// buf[r:] (true; its length is in headLen and queued answers are written)
// or the connection is finished (false).
func (mc *msgConn) pump() bool {
	log := mc.s.rt.log
	for {
		// A request boundary: a deadline is armed only while bytes of
		// the next request are at hand.
		mc.skipEmptyLines()
		if mc.r < mc.w {
			mc.startRequest()
		} else {
			mc.reqDeadline = time.Time{}
		}
		n, err := 0, wire.ErrIncomplete // nothing to parse yet
		if mc.r < mc.w {
			n, err = wire.ParseHeadLimit(mc.buf[mc.r:mc.w], &mc.head, mc.s.rt.cfg.MaxHeaderBytes)
		}
		if err == wire.ErrIncomplete {
			// A failed write marks the connection but ends nothing:
			// reading goes on so every message the peer sent before it
			// went is delivered (docs/libprocess-wire.md §3.2).
			mc.flush()
			if !mc.fill(mc.r == mc.w) {
				if mc.timedOut() {
					mc.requestTimeout()
				}
				return false
			}
			continue
		}
		if err != nil {
			var he *wire.HeadError
			status := 400
			if errors.As(err, &he) {
				status = he.Status
			}
			mc.protocolError(status, err)
			return false
		}
		if !wire.IsMessage(&mc.head) {
			if mc.writeFailed {
				// The peer is gone: its messages read before this
				// request have been served; nothing can answer it.
				return false
			}
			// Ordinary HTTP: answer what is queued first, so responses
			// stay in request order.
			mc.httpSeen = true
			mc.headLen = n
			return mc.flush()
		}
		mc.carried = !mc.httpOnly
		mc.r += n
		// The head aliases the read buffer, which reading the body may
		// compact: keep what delivery needs first.
		mc.target = append(mc.target[:0], mc.head.Target...)
		mc.from = append(mc.from[:0], wire.Sender(&mc.head)...)
		keep := mc.head.KeepAlive()
		body, ok := mc.readBody()
		if !ok {
			return false
		}
		mc.endRequest()
		// The body keeps its share of the body budget until its receiver
		// has handled it (or it is dropped), so messages waiting in
		// mailboxes are bounded in bytes too; the rest (growth it no
		// longer uses) comes back now.
		held := min(mc.held, int64(cap(body)))
		mc.held -= held
		mc.releaseBody()
		var status int
		var text string
		if mc.httpOnly {
			mc.s.budget.release(held)
			status, text = mc.s.rt.refuseHTTPOnlyMessage(mc.target)
		} else {
			status, text = mc.s.rt.acceptMessage(&mc.msgState, mc.target, mc.from, mc.c.RemoteAddr(), mc.peerIP, body, held)
		}
		mc.respond(status, text, !keep)
		if log.Debug().Enabled() {
			log.Debug().Str("peer", mc.c.RemoteAddr().String()).Bytes("target", mc.target).Int("status", status).Int("bytes", len(body)).Msg("message received")
		}
		if !keep {
			mc.flush()
			return false
		}
		if len(mc.out) >= maxResponseHold {
			// A failed write marks the connection; the requests already
			// in the buffer are still delivered (docs/libprocess-wire.md §3.2).
			mc.flush()
		}
	}
}

// skipEmptyLines drops the empty lines (CRLF or LF) some clients send
// between requests, as ParseHead would skip them: they start no request,
// so they arm no request deadline. Past MaxHeaderBytes of them in a row
// they are left to ParseHead, which refuses them as an oversized head.
func (mc *msgConn) skipEmptyLines() {
	for mc.r < mc.w && mc.emptyLines < mc.s.rt.cfg.MaxHeaderBytes {
		switch {
		case mc.buf[mc.r] == '\n':
			mc.r++
			mc.emptyLines++
		case mc.buf[mc.r] == '\r' && mc.r+1 < mc.w && mc.buf[mc.r+1] == '\n':
			mc.r += 2
			mc.emptyLines += 2
		default:
			return
		}
	}
}

// startRequest arms the read deadline of a request whose first byte has
// been read; it is not re-armed until the request ends.
func (mc *msgConn) startRequest() {
	if mc.reqDeadline.IsZero() {
		mc.reqStart = time.Now()
		mc.reqDeadline = mc.reqStart.Add(mc.s.rt.cfg.ReadTimeout)
	}
}

// endRequest disarms the request deadline once a request has been read.
func (mc *msgConn) endRequest() {
	mc.reqDeadline = time.Time{}
	mc.emptyLines = 0
	mc.bodyDeadline.Store(0)
}

// beginPassthrough prepares to hand the HTTP request whose head pump just
// parsed to the HTTP server: the head restated canonically (so fasthttp
// frames it exactly as the codec did), then a fixed-length body, or a
// chunked body tracked by the decoder to find its end.
func (mc *msgConn) beginPassthrough() {
	mc.canon = mc.head.AppendCanonical(mc.canon[:0])
	mc.canonFields = bytes.Index(mc.canon, []byte("\r\n")) + 2
	mc.canonOff = 0
	mc.r += mc.headLen
	mc.passN = 0
	mc.passChunked = false
	switch {
	case mc.head.Chunked:
		mc.passChunked = true
		mc.chunked.Reset(int64(mc.s.rt.cfg.MaxMessageSize))
	case mc.head.ContentLength > 0:
		mc.passN = mc.head.ContentLength
	}
}

// headerLines returns the header lines of the HTTP request being served
// as the codec restated them for fasthttp ("Name: value", CRLF after
// each). They stay intact until the request is done: fasthttp reads the
// next request only after answering this one.
func (mc *msgConn) headerLines() []byte {
	if mc.canonFields < 2 || len(mc.canon) < mc.canonFields+2 {
		return nil
	}
	return mc.canon[mc.canonFields : len(mc.canon)-2]
}

// httpConn is the connection as fasthttp sees it. Reads return the bytes
// of ordinary HTTP requests only, one request at a time; at each request
// boundary the codec runs first and serves any messages itself, in any
// shape a peer writes (docs/libprocess-wire.md §2.5), after fasthttp has flushed its earlier
// responses (it flushes whenever its read buffer is empty, and it only
// reads at a boundary when it is). Deadlines are the codec's: fasthttp's
// calls to set them are ignored, and every write gets WriteTimeout.
type httpConn struct {
	net.Conn
	mc     *msgConn
	closed sync.Once
}

// Read implements net.Conn for fasthttp.
func (h *httpConn) Read(b []byte) (int, error) {
	mc := h.mc
	for {
		if mc.canonOff < len(mc.canon) {
			n := copy(b, mc.canon[mc.canonOff:])
			mc.canonOff += n
			return n, nil
		}
		if mc.passN > 0 {
			if mc.r == mc.w && !mc.fill(false) {
				return 0, mc.passError()
			}
			n := copy(b, mc.buf[mc.r:mc.w])
			if int64(n) > mc.passN {
				n = int(mc.passN)
			}
			mc.r += n
			mc.passN -= int64(n)
			return n, nil
		}
		if mc.passChunked {
			if mc.chunked.Done() {
				mc.passChunked = false
				continue
			}
			if mc.r == mc.w && !mc.fill(false) {
				return 0, mc.passError()
			}
			avail := mc.buf[mc.r:mc.w]
			if len(avail) > len(b) {
				avail = avail[:len(b)]
			}
			used, err := mc.chunked.Feed(avail)
			mc.chunked.Body = mc.chunked.Body[:0] // only the framing matters here
			if err != nil && err != wire.ErrIncomplete {
				// Framing the codec cannot follow: hand over what was
				// framed, then end the connection; no byte after it is
				// read as a request.
				mc.passChunked = false
				mc.lastRequest = true
				if used == 0 {
					return 0, io.ErrUnexpectedEOF
				}
			}
			if used == 0 {
				// A size line split across reads: make room and read on.
				if !mc.fill(false) {
					return 0, mc.passError()
				}
				continue
			}
			copy(b, avail[:used])
			mc.r += used
			return used, nil
		}
		mc.canon = mc.canon[:0]
		mc.canonOff = 0
		mc.endRequest()
		if mc.lastRequest || !mc.pump() {
			return 0, io.EOF
		}
		mc.beginPassthrough()
	}
}

// passError is what fasthttp sees when a body cannot be read on: the
// deadline's timeout error (fasthttp answers it 408) or an unexpected EOF.
func (mc *msgConn) passError() error {
	if mc.timedOut() {
		mc.s.rt.metrics.requestTimeouts.Add(1)
		return mc.readErr
	}
	return io.ErrUnexpectedEOF
}

// writePiece is the most one write deadline covers: a large body is
// written in pieces, each of which the client must take within
// WriteTimeout.
const writePiece = 64 << 10

// Write implements net.Conn with a deadline per write (per writePiece of
// a large one), so a streamed response lives as long as its route allows
// while each piece of it must be taken by the client within WriteTimeout.
func (h *httpConn) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		p := b[:min(len(b), writePiece)]
		h.mc.armWrite()
		n, err := h.Conn.Write(p)
		written += n
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// SetDeadline is a no-op: the connection's owner sets deadlines.
func (h *httpConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is a no-op: the connection's owner sets deadlines.
func (h *httpConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is a no-op: each Write sets its own.
func (h *httpConn) SetWriteDeadline(time.Time) error { return nil }

// Close closes the connection once.
func (h *httpConn) Close() error {
	err := net.ErrClosed
	h.closed.Do(func() { err = h.Conn.Close() })
	return err
}

// respond queues an answer. Message answers carry no body except on
// errors: mesos-go drops its connection on any response body (docs/libprocess-wire.md §11.2),
// so 202 and 404 are empty.
func (mc *msgConn) respond(status int, text string, closing bool) {
	mc.date = mc.s.date.appendTo(mc.date[:0], time.Now())
	mc.out = wire.AppendResponse(mc.out, status, mc.date, text, closing)
}

// msgState is what message acceptance remembers across messages on one
// connection, so steady traffic parses its sender once and allocates its
// message name once.
type msgState struct {
	decoded    []byte // percent-decoded receiver id scratch
	lastFrom   []byte // sender text of the previous message
	lastUPID   UPID
	lastFromOK bool
	names      map[string]string // interned message names
}

// acceptMessage turns a parsed message request into a Message for its
// receiver and returns the status to answer with and an error text,
// mirroring ProcessManager::handle in libprocess. held is the body budget
// the body holds: it goes with the message into the mailbox, or back.
func (rt *Runtime) acceptMessage(st *msgState, target, fromText []byte, peer net.Addr, peerIP string, body []byte, held int64) (int, string) {
	queued := false
	defer func() {
		if !queued {
			rt.releaseInbound(held)
		}
	}()
	idRaw, nameRaw, err := wire.SplitMessagePath(target)
	if err != nil {
		// libprocess checks this first and answers 400 (docs/libprocess-wire.md §2.4); the
		// request was framed, so the connection goes on.
		rt.log.Warn().Stringer("peer", peer).Bytes("target", target).Msg("message path does not start with '/'")
		return 400, "Request URL path must start with '/'"
	}
	id := idRaw
	if bytes.IndexByte(idRaw, '%') >= 0 {
		st.decoded, err = wire.PercentDecode(st.decoded[:0], idRaw)
		if err != nil {
			return 500, "Failed to decode URL path: " + err.Error()
		}
		id = st.decoded
	}
	if rt.fw.deniesMessage(id, nameRaw) {
		rt.log.Info().Stringer("peer", peer).Bytes("to", id).Bytes("message", nameRaw).Msg("message refused: endpoint disabled by the firewall")
		return 403, "Endpoint '/" + string(id) + "/" + string(nameRaw) + "' is disabled"
	}
	from := rt.sender(st, fromText, peer)
	if rt.cfg.RequirePeerAddressIPMatch && from.Host != peerIP {
		rt.log.Warn().Str("from", from.String()).Str("peer_ip", peerIP).Msg("rejected message: sender IP does not match peer")
		return 400, "UPID IP address validation failed: Message from " + from.String() + " was sent from IP " + peerIP
	}
	p := rt.lookupBytes(id)
	if p == nil {
		rt.metrics.messagesDropped.Add(1)
		rt.log.Debug().Bytes("to", id).Str("from", from.String()).Msg("message for unknown process")
		return 404, ""
	}
	queued = true // deliverTo gives held back if the message is not queued
	if rt.deliverTo(p, Message{From: from, To: p.self, Name: st.intern(nameRaw), Body: body}, held) {
		return 202, ""
	}
	return 404, ""
}

// sender parses the sender UPID, reusing the previous parse when a peer
// repeats itself (it always does).
func (rt *Runtime) sender(st *msgState, text []byte, peer net.Addr) UPID {
	if st.lastFrom != nil && bytes.Equal(text, st.lastFrom) {
		if !st.lastFromOK {
			rt.metrics.messagesBadFrom.Add(1)
		}
		return st.lastUPID
	}
	st.lastFrom = append(st.lastFrom[:0], text...)
	u, err := parsePeerUPID(string(text))
	st.lastUPID, st.lastFromOK = u, err == nil
	if err != nil {
		// C++ delivers such messages with the empty UPID as sender.
		rt.metrics.messagesBadFrom.Add(1)
		rt.log.Warn().Stringer("peer", peer).Err(err).Msg("message with malformed sender; delivering with empty sender as libprocess does")
	}
	return st.lastUPID
}

func (st *msgState) intern(name []byte) string {
	if s, ok := st.names[string(name)]; ok {
		return s
	}
	s := string(name)
	if st.names == nil {
		st.names = make(map[string]string)
	}
	if len(st.names) < maxInternNames {
		st.names[s] = s
	}
	return s
}

// readBody reads the body of the message whose head was just parsed. The
// returned slice is owned by the message. The body grows as its bytes
// arrive, taking InboundBodyBudget as it grows, never from the declared
// length alone; on success the connection still holds what it took
// (mc.held). On failure it has answered, given the budget back, and the
// connection must close.
func (mc *msgConn) readBody() (_ []byte, ok bool) {
	defer func() {
		if !ok {
			mc.releaseBody()
		}
	}()
	limit := int64(mc.s.rt.cfg.MaxMessageSize)
	switch {
	case mc.head.Chunked:
		mc.chunked.Reset(limit)
		for {
			// Feed appends at most the buffered bytes: make room for them
			// first, within the budget.
			var ok bool
			if mc.chunked.Body, ok = mc.growBody(mc.chunked.Body, int64(mc.w-mc.r), limit); !ok {
				return nil, false
			}
			used, err := mc.chunked.Feed(mc.buf[mc.r:mc.w])
			mc.r += used
			if err == nil {
				break
			}
			if err == wire.ErrIncomplete {
				if !mc.fill(false) {
					mc.bodyReadFailed()
					return nil, false
				}
				continue
			}
			// A message body that cannot be read is answered 500 (docs/libprocess-wire.md
			// §2.4; libprocess fails the message's readAll); a body over
			// the size limit keeps the codec's 413.
			status := http.StatusInternalServerError
			var be *wire.BodyError
			if errors.As(err, &be) && be.Status == http.StatusRequestEntityTooLarge {
				status = be.Status
			}
			mc.protocolError(status, err)
			return nil, false
		}
		var body []byte
		if len(mc.chunked.Body) > 0 {
			body = make([]byte, len(mc.chunked.Body))
			copy(body, mc.chunked.Body)
		}
		if cap(mc.chunked.Body) > maxKeptBodyCap {
			mc.chunked.Body = nil
		}
		return body, true
	case mc.head.ContentLength > 0:
		cl := mc.head.ContentLength
		if cl > limit {
			mc.protocolError(413, errors.New("body larger than the message size limit"))
			return nil, false
		}
		var body []byte
		ok := true
		for int64(len(body)) < cl && ok {
			if mc.r < mc.w {
				take := min(int64(mc.w-mc.r), cl-int64(len(body)))
				if body, ok = mc.growBody(body, take, cl); ok {
					body = append(body, mc.buf[mc.r:mc.r+int(take)]...)
					mc.r += int(take)
				}
				continue
			}
			// Nothing buffered: read straight into the body's spare room,
			// doubling it when full, so what it holds is at most twice
			// what has arrived (plus minBodyAlloc).
			if len(body) == cap(body) {
				if body, ok = mc.growBody(body, max(int64(len(body)), minBodyAlloc), cl); !ok {
					break
				}
			}
			room := min(int64(cap(body)-len(body)), cl-int64(len(body)))
			var n int
			n, ok = mc.read(body[len(body):len(body)+int(room)], false)
			body = body[:len(body)+n]
		}
		if !ok {
			mc.bodyReadFailed()
			return nil, false
		}
		return body, true
	}
	return nil, true
}

// growBody makes room for need more bytes in body, which is at most limit
// bytes long, taking what it adds from the body budget (waiting for it
// under back-pressure). It fails, having answered, when the budget does not
// free up before the request's deadline.
func (mc *msgConn) growBody(body []byte, need, limit int64) ([]byte, bool) {
	if need <= 0 || int64(cap(body)-len(body)) >= need {
		return body, true
	}
	newCap := min(limit, max(int64(2*cap(body)), int64(len(body))+need, minBodyAlloc))
	if newCap <= int64(cap(body)) {
		return body, true
	}
	if extra := newCap - mc.held; extra > 0 && !mc.hold(extra) {
		return nil, false
	}
	nb := make([]byte, len(body), newCap)
	copy(nb, body)
	return nb, true
}

// hold takes n more bytes of the body budget for the request being read.
func (mc *msgConn) hold(n int64) bool {
	mc.startRequest()
	if !mc.s.takeBudget(n, mc.reqDeadline, mc.c.RemoteAddr()) {
		mc.respond(http.StatusServiceUnavailable, errBudget, true)
		mc.flush()
		return false
	}
	mc.held += n
	return true
}

// releaseBody gives back the body budget the connection holds.
func (mc *msgConn) releaseBody() {
	mc.s.budget.release(mc.held)
	mc.held = 0
}

// bodyReadFailed answers a body read that ended without its bytes.
func (mc *msgConn) bodyReadFailed() {
	if mc.timedOut() {
		mc.requestTimeout()
	}
}

// fill reads more bytes into the buffer, compacting or growing it. idle
// means no request is in progress (an idle keep-alive connection).
func (mc *msgConn) fill(idle bool) bool {
	if mc.r == mc.w {
		mc.r, mc.w = 0, 0
	}
	if mc.w == len(mc.buf) {
		// Idle and plain HTTP connections keep a small buffer; one whose
		// reads keep filling it (a peer streaming messages) grows to
		// msgConnBufSize so a batch takes few reads.
		if mc.r > 0 && (len(mc.buf) >= msgConnBufSize || !mc.busy) {
			mc.w = copy(mc.buf, mc.buf[mc.r:mc.w])
			mc.r = 0
		} else {
			if len(mc.buf) >= mc.s.rt.cfg.MaxHeaderBytes+msgConnBufSize {
				mc.protocolError(431, errors.New("request head too large"))
				return false
			}
			nb := make([]byte, 2*len(mc.buf))
			mc.w = copy(nb, mc.buf[mc.r:mc.w])
			mc.r = 0
			mc.buf = nb
		}
	}
	n, ok := mc.read(mc.buf[mc.w:], idle)
	mc.busy = n == len(mc.buf)-mc.w
	mc.w += n
	return ok
}

// read reads once from the socket under the deadline that applies: the
// idle timeout when idle, else the request's (armed at its first byte),
// or the route's for a body streamed to a route. It reports whether the
// connection may go on; readErr keeps the error that ended it.
func (mc *msgConn) read(p []byte, idle bool) (int, bool) {
	// After a failed write the peer is gone, but what it sent before it
	// closed is still in the socket (the kernel keeps received bytes
	// readable after a reset): reading on until the end delivers every
	// message it sent (docs/libprocess-wire.md §3.2), where a C++ receiver drops them.
	mc.armRead(idle)
	mc.wrote = time.Time{}
	n, err := mc.c.Read(p)
	if n > 0 && idle {
		mc.startRequest()
	}
	if err == nil || n > 0 {
		return n, true
	}
	mc.readErr = nil
	select {
	case <-mc.s.closed:
		return 0, false // shutdown
	default:
	}
	if idle {
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		case isTimeout(err):
			mc.s.rt.metrics.idleClosed.Add(1)
			mc.s.rt.log.Debug().Str("peer", mc.c.RemoteAddr().String()).Msg("closing idle connection")
		default:
			mc.connError("reading request", err)
		}
		return 0, false
	}
	mc.readErr = err
	if !isTimeout(err) {
		mc.connError("reading request", err)
	}
	return 0, false
}

// armRead sets the socket's read deadline for the next read, touching the
// socket only when the deadline changes. After shutdown began it forces
// an immediate deadline, so the connection ends after the request at hand.
func (mc *msgConn) armRead(idle bool) {
	var d time.Time
	switch {
	case idle:
		t := mc.s.rt.cfg.MessageIdleTimeout
		if mc.httpSeen && !mc.carried {
			t = mc.s.rt.cfg.IdleTimeout
		}
		if t > 0 {
			// Going idle follows a write: its time is fresh enough.
			now := mc.wrote
			if now.IsZero() {
				now = time.Now()
			}
			d = now.Add(t)
			if keepDeadline(mc.readDeadline, d, t) {
				d = mc.readDeadline
			}
		}
	case mc.bodyDeadline.Load() != 0:
		d = time.Unix(0, mc.bodyDeadline.Load())
	default:
		mc.startRequest()
		d = mc.reqDeadline
	}
	if !d.Equal(mc.readDeadline) {
		_ = mc.c.SetReadDeadline(d)
		mc.readDeadline = d
	}
	select {
	case <-mc.s.closed:
		_ = mc.c.SetReadDeadline(time.Now())
		mc.readDeadline = time.Unix(1, 0)
	default:
	}
}

// armWrite sets the socket's write deadline for a write starting now:
// WriteTimeout from now, or the deadline already armed if that is at
// most deadlineSlack earlier (see keepDeadline).
func (mc *msgConn) armWrite() {
	now := time.Now()
	mc.wrote = now
	t := mc.s.rt.cfg.WriteTimeout
	d := now.Add(t)
	if keepDeadline(mc.writeDeadline, d, t) {
		return
	}
	_ = mc.c.SetWriteDeadline(d)
	mc.writeDeadline = d
}

// keepDeadline reports whether the deadline armed on a socket may stand
// for want, a deadline timeout from now: it is no later than want and at
// most deadlineSlack(timeout) earlier. A busy connection then resets its
// socket timer about once per slack instead of on every request, at the
// price of an idle or write timeout that may end up to the slack (an
// eighth of it, at most a second) early.
func keepDeadline(armed, want time.Time, timeout time.Duration) bool {
	if armed.IsZero() || armed.After(want) {
		return false
	}
	return want.Sub(armed) < deadlineSlack(timeout)
}

// deadlineSlack is how much earlier than asked an armed idle or write
// deadline may fall before it is re-armed (keepDeadline).
func deadlineSlack(timeout time.Duration) time.Duration {
	return min(timeout/8, time.Second)
}

// timedOut reports whether the last read failed on its deadline (and not
// because the runtime is shutting down).
func (mc *msgConn) timedOut() bool {
	select {
	case <-mc.s.closed:
		return false
	default:
	}
	return mc.readErr != nil && isTimeout(mc.readErr)
}

// requestTimeout answers a request whose head or body missed its deadline.
func (mc *msgConn) requestTimeout() {
	mc.s.rt.metrics.requestTimeouts.Add(1)
	mc.s.rt.log.Warn().Str("peer", mc.c.RemoteAddr().String()).Dur("read_timeout", mc.s.rt.cfg.ReadTimeout).Msg("closing connection: request not received within its read deadline")
	mc.respond(http.StatusRequestTimeout, "request not received within its deadline", true)
	mc.flush()
}

// flush writes queued responses. After a failed write it discards them
// and reports false.
func (mc *msgConn) flush() bool {
	if mc.writeFailed {
		mc.out = mc.out[:0]
		return false
	}
	if len(mc.out) == 0 {
		return true
	}
	mc.armWrite()
	_, err := mc.c.Write(mc.out)
	mc.out = mc.out[:0]
	if err != nil {
		mc.writeFailed = true
		mc.connError("writing responses", err)
		return false
	}
	return true
}

// protocolError answers a request the codec cannot continue after and
// logs it; the connection then closes.
func (mc *msgConn) protocolError(status int, err error) {
	mc.s.rt.metrics.connErrors.Add(1)
	mc.s.rt.log.Warn().Str("peer", mc.c.RemoteAddr().String()).Int("status", status).Err(err).Msg("closing connection after malformed request")
	mc.respond(status, err.Error(), true)
	mc.flush()
}

func (mc *msgConn) connError(what string, err error) {
	mc.s.rt.metrics.connErrors.Add(1)
	mc.s.rt.log.Warn().Str("peer", mc.c.RemoteAddr().String()).Err(err).Msg("connection error " + what)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
