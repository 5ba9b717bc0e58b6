package libprocess

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/procpanda/procpanda/libprocess/wire"
)

const (
	msgConnInitBuf  = 4 << 10  // initial read buffer of a connection
	msgConnBufSize  = 64 << 10 // read buffer a busy connection grows to
	maxInternNames  = 1024     // message names remembered per connection
	maxKeptBodyCap  = 1 << 20  // chunk buffer kept between messages
	maxResponseHold = 64 << 10 // flush queued responses beyond this
)

// msgConn serves one inbound connection with the libprocess codec. It reads
// as much as the socket has, parses every complete request in the buffer,
// delivers messages to mailboxes and queues their answers, and writes all
// queued answers with one write when the buffer runs dry — so a peer that
// pipelines N messages costs about one read and one write syscall per
// batch, not per message.
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

	// Pass-through state while an HTTP request goes to fasthttp.
	headLen     int   // length of the HTTP request head pump stopped at
	passN       int64 // bytes still to hand over verbatim
	passChunked bool  // a chunked body is being handed over
}

func newMsgConn(s *server, c net.Conn) *msgConn {
	mc := &msgConn{s: s, c: c, buf: make([]byte, msgConnInitBuf)}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		mc.peerIP = ta.IP.String()
	}
	return mc
}

// serve runs the message loop until the first ordinary HTTP request. It
// returns the connection to hand to the HTTP server from that request on,
// or nil when the connection is finished (the caller closes it).
func (mc *msgConn) serve() net.Conn {
	if !mc.pump() {
		return nil
	}
	mc.beginPassthrough()
	return &httpConn{Conn: mc.c, mc: mc}
}

// pump serves messages until an ordinary HTTP request's head is parsed at
// buf[r:] (true; its length is in headLen and queued answers are written)
// or the connection is finished (false).
func (mc *msgConn) pump() bool {
	log := mc.s.rt.log
	for {
		n, err := wire.ParseHead(mc.buf[mc.r:mc.w], &mc.head)
		if err == wire.ErrIncomplete {
			if !mc.flush() || !mc.fill(mc.r == mc.w) {
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
			// Ordinary HTTP: answer what is queued first, so responses
			// stay in request order.
			mc.headLen = n
			return mc.flush()
		}
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
		status, text := mc.s.rt.acceptMessage(&mc.msgState, mc.target, mc.from, mc.c.RemoteAddr(), mc.peerIP, body)
		mc.respond(status, text, !keep)
		if log.Debug().Enabled() {
			log.Debug().Str("peer", mc.c.RemoteAddr().String()).Bytes("target", mc.target).Int("status", status).Int("bytes", len(body)).Msg("message received")
		}
		if !keep {
			mc.flush()
			return false
		}
		if len(mc.out) >= maxResponseHold && !mc.flush() {
			return false
		}
	}
}

// beginPassthrough prepares to hand the HTTP request whose head pump just
// parsed to the HTTP server, byte for byte: the head, then a fixed-length
// body, or a chunked body tracked by the decoder to find its end.
func (mc *msgConn) beginPassthrough() {
	mc.passN = int64(mc.headLen)
	mc.passChunked = false
	switch {
	case mc.head.Chunked:
		mc.passChunked = true
		mc.chunked.Reset(int64(mc.s.rt.cfg.MaxMessageSize))
	case mc.head.ContentLength > 0:
		mc.passN += mc.head.ContentLength
	}
}

// httpConn is the connection as fasthttp sees it. Reads return the bytes
// of ordinary HTTP requests only, one request at a time; at each request
// boundary the codec runs first and serves any messages itself, in any
// shape a peer writes (spec 2.5), after fasthttp has flushed its earlier
// responses (it flushes whenever its read buffer is empty, and it only
// reads at a boundary when it is).
type httpConn struct {
	net.Conn
	mc     *msgConn
	closed sync.Once
}

// Read implements net.Conn for fasthttp.
func (h *httpConn) Read(b []byte) (int, error) {
	mc := h.mc
	for {
		if mc.passN > 0 {
			if mc.r == mc.w && !mc.fill(false) {
				return 0, io.ErrUnexpectedEOF
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
				return 0, io.ErrUnexpectedEOF
			}
			avail := mc.buf[mc.r:mc.w]
			if len(avail) > len(b) {
				avail = avail[:len(b)]
			}
			used, err := mc.chunked.Feed(avail)
			mc.chunked.Body = mc.chunked.Body[:0] // only the framing matters here
			if err != nil && err != wire.ErrIncomplete {
				// Framing the HTTP server will reject too: pass the rest
				// through untouched and let it answer.
				mc.passChunked = false
				mc.passN = 1 << 62
				continue
			}
			if used == 0 {
				// A size line split across reads: make room and read on.
				if !mc.fill(false) {
					return 0, io.ErrUnexpectedEOF
				}
				continue
			}
			copy(b, avail[:used])
			mc.r += used
			return used, nil
		}
		if !mc.pump() {
			return 0, io.EOF
		}
		mc.beginPassthrough()
	}
}

// Close closes the socket once.
func (h *httpConn) Close() error {
	err := net.ErrClosed
	h.closed.Do(func() {
		h.mc.s.rt.metrics.connsInbound.Add(-1)
		err = h.Conn.Close()
	})
	return err
}

// respond queues an answer. Message answers carry no body except on
// errors: mesos-go drops its connection on any response body (spec 11.2),
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
// mirroring ProcessManager::handle in libprocess.
func (rt *Runtime) acceptMessage(st *msgState, target, fromText []byte, peer net.Addr, peerIP string, body []byte) (int, string) {
	idRaw, nameRaw, err := wire.SplitMessagePath(target)
	if err != nil {
		// libprocess checks this first and answers 400 (spec 2.4); the
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
	if rt.deliverTo(p, Message{From: from, To: p.self, Name: st.intern(nameRaw), Body: body}) {
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
	u, err := ParsePeerUPID(string(text))
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
// returned slice is owned by the message. On failure it has answered and
// the connection must close.
func (mc *msgConn) readBody() ([]byte, bool) {
	max := int64(mc.s.rt.cfg.MaxMessageSize)
	switch {
	case mc.head.Chunked:
		mc.chunked.Reset(max)
		for {
			used, err := mc.chunked.Feed(mc.buf[mc.r:mc.w])
			mc.r += used
			if err == nil {
				break
			}
			if err == wire.ErrIncomplete {
				if !mc.fill(false) {
					return nil, false
				}
				continue
			}
			// A message body that cannot be read is answered 500 (spec
			// 2.4; libprocess fails the message's readAll); a body over
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
		if cl > max {
			mc.protocolError(413, errors.New("body larger than the message size limit"))
			return nil, false
		}
		body := make([]byte, cl)
		got := copy(body, mc.buf[mc.r:mc.w])
		mc.r += got
		if got < len(body) {
			mc.setDeadline(false)
			if _, err := io.ReadFull(mc.c, body[got:]); err != nil {
				mc.connError("reading message body", err)
				return nil, false
			}
		}
		return body, true
	}
	return nil, true
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
			if len(mc.buf) >= wire.MaxHeadSize+msgConnBufSize {
				mc.protocolError(431, errors.New("request head too large"))
				return false
			}
			nb := make([]byte, 2*len(mc.buf))
			mc.w = copy(nb, mc.buf[mc.r:mc.w])
			mc.r = 0
			mc.buf = nb
		}
	}
	mc.setDeadline(idle)
	n, err := mc.c.Read(mc.buf[mc.w:])
	mc.busy = n == len(mc.buf)-mc.w
	mc.w += n
	if err != nil && n == 0 {
		if idle && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)) {
			return false
		}
		if idle && isTimeout(err) {
			return false // idle timeout or shutdown
		}
		mc.connError("reading request", err)
		return false
	}
	return true
}

// setDeadline bounds the next read: ReadTimeout within a request, the idle
// timeout between requests. After shutdown began it forces an immediate
// deadline, so the loop ends after the batch at hand.
func (mc *msgConn) setDeadline(idle bool) {
	var d time.Time
	if !idle {
		d = time.Now().Add(mc.s.rt.cfg.ReadTimeout)
	} else if t := mc.s.rt.cfg.IdleTimeout; t > 0 {
		d = time.Now().Add(t)
	}
	_ = mc.c.SetReadDeadline(d)
	select {
	case <-mc.s.closed:
		_ = mc.c.SetReadDeadline(time.Now())
	default:
	}
}

// flush writes queued responses.
func (mc *msgConn) flush() bool {
	if len(mc.out) == 0 {
		return true
	}
	_ = mc.c.SetWriteDeadline(time.Now().Add(mc.s.rt.cfg.WriteTimeout))
	_, err := mc.c.Write(mc.out)
	mc.out = mc.out[:0]
	if err != nil {
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
