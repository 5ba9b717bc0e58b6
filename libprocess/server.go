package libprocess

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/procpanda/procpanda/libprocess/internal/wire"
	"github.com/valyala/fasthttp"
)

// server owns the listening socket and every inbound connection. Each
// accepted connection has one owner, one goroutine from accept to close
// (as net/http's conn.serve): it runs the TLS handshake under its
// deadline, then the libprocess codec (package wire, driven by msgConn),
// which decides where every request — head and body — ends, serves
// messages itself in any shape peers write (empty Host, chunked bodies on
// HTTP/1.0), and arms every read and write deadline. At the first ordinary
// HTTP request the same goroutine runs fasthttp's ServeConn over httpConn,
// which hands fasthttp the canonical bytes of exactly one request at a
// time and lets the codec serve any message between them; fasthttp's own
// timeouts are off and its deadline calls are ignored.
type server struct {
	rt   *Runtime
	ln   net.Listener
	http *fasthttp.Server
	date dateCache

	tlsServer *tls.Config // nil without TLS

	maxConns int         // MaxInboundConnections in effect
	budget   *byteBudget // InboundBodyBudget

	// baseCtx parents every HTTP request's context; it is cancelled, and
	// hardStop closed, when the shutdown deadline passes.
	baseCtx    context.Context
	baseCancel context.CancelFunc
	hardStop   chan struct{}
	hardOnce   sync.Once

	refusedLog logLimiter // the accept loop's "connection refused" lines

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // every open inbound socket
	extra  []net.Listener        // HTTP-only listeners added by ServeHTTPOn
	wg     sync.WaitGroup        // accept loop and connections
	closed chan struct{}
}

// The share of RLIMIT_NOFILE (1/fdReserveDiv, at least fdReserveMin) a
// default MaxInboundConnections leaves for everything but inbound
// connections: the listener, outbound peers, files, subprocess pipes.
const (
	fdReserveDiv = 4
	fdReserveMin = 64
)

// defaultMaxConns sizes MaxInboundConnections from RLIMIT_NOFILE.
func defaultMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024 - fdReserveMin
	}
	n := rl.Cur
	if n > 1<<20 {
		n = 1 << 20
	}
	keep := max(n/fdReserveDiv, fdReserveMin)
	if n <= keep {
		return 1
	}
	return int(n - keep)
}

// effectiveBodyBudget is InboundBodyBudget raised, if need be, so that one
// request of the largest size allowed can always be read.
func effectiveBodyBudget(c *Config) int64 {
	return max(c.InboundBodyBudget, int64(c.MaxMessageSize), int64(c.BufferedBodyLimit))
}

func newServer(rt *Runtime, ln net.Listener) *server {
	s := &server{
		rt:        rt,
		tlsServer: rt.tlsServer,
		ln:        ln,
		conns:     make(map[net.Conn]struct{}),
		closed:    make(chan struct{}),
		hardStop:  make(chan struct{}),
		maxConns:  rt.cfg.MaxInboundConnections,
		budget:    newByteBudget(effectiveBodyBudget(&rt.cfg), &rt.metrics.bodyBytes, &rt.metrics.bodyBudgetWaits),
	}
	if s.maxConns == 0 {
		s.maxConns = defaultMaxConns()
	}
	rt.metrics.maxConnsInbound.Store(int64(s.maxConns))
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())
	s.http = &fasthttp.Server{
		Handler:               s.serveHTTP,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		// Bodies up to BufferedBodyLimit reach routes in memory, larger
		// ones stream; serveHTTP reads both from the body stream.
		MaxRequestBodySize: rt.cfg.BufferedBodyLimit,
		StreamRequestBody:  true,
		// fasthttp must fit any head the codec accepts, as the codec
		// restates it (AppendCanonical).
		ReadBufferSize:               rt.cfg.MaxHeaderBytes + wire.CanonicalOverhead,
		Concurrency:                  s.maxConns,
		DisablePreParseMultipartForm: true,
		// A route's clock is the codec's (the request's first byte,
		// msgConn.reqStart); fasthttp's own reading of it is unused.
		LazyRequestTime: true,
		// Deadlines belong to the connection owner (msgConn): fasthttp's
		// timeouts stay zero.
		Logger: fasthttpLogger{rt},
	}
	return s
}

func (s *server) start() {
	if s.ln == nil { // Config.NoListener: only ServeHTTPOn's listeners
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.acceptLoop(s.ln, false)
	}()
}

// serveExtra runs an accept loop for an HTTP-only listener beside the
// port: its connections share the port's tracking, limits and shutdown.
func (s *server) serveExtra(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return errors.New("runtime is shutting down")
	default:
	}
	s.extra = append(s.extra, ln)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.acceptLoop(ln, true)
	}()
	return nil
}

// acceptLoop accepts connections from ln until it is closed. httpOnly
// marks connections that carry no libprocess messages and no TLS
// (ServeHTTPOn).
func (s *server) acceptLoop(ln net.Listener, httpOnly bool) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				s.rt.log.Error().Err(err).Msg("accept loop stopped")
				return
			}
			// Out of descriptors and similar: back off and retry, as
			// libprocess' accept loop does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.rt.log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		switch s.track(c) {
		case trackClosed:
			_ = c.Close()
			return
		case trackFull:
			// Close at once, so the descriptor is back before the next
			// accept; the loop goes on.
			_ = c.Close()
			s.rt.metrics.connsRefused.Add(1)
			// One line a second at most: a flood of connections must not
			// become a flood of log lines.
			if n := s.refusedLog.allow(time.Now()); n >= 0 {
				s.rt.log.Warn().Str("peer", c.RemoteAddr().String()).Int("max", s.maxConns).Int64("suppressed", n).Msg("inbound connection refused: MaxInboundConnections reached")
			}
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		s.rt.metrics.connsInbound.Add(1)
		go s.serveConn(c, httpOnly)
	}
}

type trackResult int

const (
	tracked trackResult = iota
	trackFull
	trackClosed
)

func (s *server) track(c net.Conn) trackResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return trackClosed
	default:
	}
	if len(s.conns) >= s.maxConns {
		return trackFull
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return tracked
}

func (s *server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.rt.metrics.connsInbound.Add(-1)
	s.wg.Done()
}

// serveConn owns one accepted connection until it is closed: TLS
// handshake, messages, and HTTP requests through fasthttp. A connection
// of an HTTP-only listener has no TLS and has its messages refused.
func (s *server) serveConn(raw net.Conn, httpOnly bool) {
	defer s.untrack(raw)
	defer raw.Close()
	c := raw
	if !httpOnly {
		var err error
		if c, err = s.wrapInbound(raw); err != nil {
			s.rt.metrics.tlsFailures.Add(1)
			s.rt.log.Warn().Str("peer", raw.RemoteAddr().String()).Err(err).Msg("closing inbound connection: TLS handshake failed")
			return
		}
	}
	mc := newMsgConn(s, c)
	mc.httpOnly = httpOnly
	defer mc.releaseBody()
	if !mc.pump() {
		_ = c.Close()
		return
	}
	mc.beginPassthrough()
	// ServeConn returns when httpConn.Read reports the end of the
	// connection, and closes it.
	_ = s.http.ServeConn(&httpConn{Conn: c, mc: mc})
}

func (s *server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	extra := s.extra
	s.mu.Unlock()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for _, ln := range extra {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = cerr
		}
	}
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		select {
		case <-ctx.Done():
			s.stopHard()
		case <-stopWatch:
		}
	}()
	// Every connection finishes the request at hand (its owner forces an
	// immediate read deadline once closed is closed) and stops: idle ones
	// now, busy ones after answering.
	s.mu.Lock()
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		return fmt.Errorf("waiting for connections: %w", ctx.Err())
	}
	s.stopHard()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// stopHard abandons requests still waiting for a response.
func (s *server) stopHard() {
	s.hardOnce.Do(func() {
		close(s.hardStop)
		s.baseCancel()
	})
}

// fasthttpLogger routes fasthttp's own error lines to zerolog.
type fasthttpLogger struct{ rt *Runtime }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.rt.metrics.connErrors.Add(1)
	l.rt.log.Warn().Str("component", "http").Msg(fmt.Sprintf(format, args...))
}

// underlying returns the socket beneath the runtime's wrappers (HTTP
// adapter, TLS, downgrade peek), for peer checks.
func underlying(c net.Conn) net.Conn {
	for {
		switch w := c.(type) {
		case *httpConn:
			c = w.Conn
		case *tls.Conn:
			c = w.NetConn()
		case *peekedConn:
			c = w.Conn
		default:
			return c
		}
	}
}

// Compile-time interface check.
var _ net.Conn = (*httpConn)(nil)

// logLimiter lets one log line through per second and counts the lines it
// held back. It is used from one goroutine.
type logLimiter struct {
	last       time.Time
	suppressed int64
}

// allow reports -1 when a line must be held back, else the number of lines
// held back since the last one let through.
func (l *logLimiter) allow(now time.Time) int64 {
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		return -1
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n
}
