package libprocess

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// server owns the listening socket. Every accepted connection is read by
// the libprocess codec (package wire, driven by msgConn): messages are
// served by the codec's loop, which accepts the request shapes every
// generation of peers writes (empty Host, chunked bodies on HTTP/1.0) and
// answers with batched writes. At the first ordinary HTTP request the
// connection is handed to a fasthttp.Server through an in-memory listener;
// fasthttp then reads through httpConn, which gives it one HTTP request at
// a time and lets the codec serve any message between them. Ordinary HTTP
// keeps fasthttp's speed and features.
type server struct {
	rt    *Runtime
	ln    net.Listener
	http  *fasthttp.Server
	handO *handoffListener
	date  dateCache

	tlsServer *tls.Config // nil without TLS

	// baseCtx parents every HTTP request's context; it is cancelled, and
	// hardStop closed, when the shutdown deadline passes.
	baseCtx    context.Context
	baseCancel context.CancelFunc
	hardStop   chan struct{}
	hardOnce   sync.Once

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // message-loop connections
	wg     sync.WaitGroup        // accept loop and message loops
	closed chan struct{}
}

func newServer(rt *Runtime, ln net.Listener) *server {
	s := &server{
		rt:        rt,
		tlsServer: rt.tlsServer,
		ln:        ln,
		conns:     make(map[net.Conn]struct{}),
		closed:    make(chan struct{}),
		hardStop:  make(chan struct{}),
	}
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())
	s.handO = newHandoffListener(ln.Addr())
	s.http = &fasthttp.Server{
		Handler:                       s.serveHTTP,
		Name:                          "",
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: false,
		MaxRequestBodySize:            rt.cfg.BufferedBodyLimit,
		StreamRequestBody:             true,
		ReadTimeout:                   rt.cfg.ReadTimeout,
		WriteTimeout:                  rt.cfg.WriteTimeout,
		IdleTimeout:                   rt.cfg.IdleTimeout,
		DisablePreParseMultipartForm:  true,
		ReduceMemoryUsage:             false,
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{rt},
	}
	return s
}

func (s *server) start() {
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = s.http.Serve(s.handO)
	}()
	go func() {
		defer s.wg.Done()
		s.acceptLoop()
	}()
}

func (s *server) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
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
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if !s.track(c) {
			_ = c.Close()
			return
		}
		s.rt.metrics.connsInbound.Add(1)
		go s.serveConn(c)
	}
}

func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return false
	default:
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// serveConn wraps a connection for TLS when configured, serves its
// messages, and hands it to fasthttp at its first ordinary HTTP request.
func (s *server) serveConn(raw net.Conn) {
	c := s.wrapInbound(raw)
	if c == nil {
		s.untrack(raw)
		s.rt.metrics.connsInbound.Add(-1)
		_ = raw.Close()
		return
	}
	mc := newMsgConn(s, c)
	handoff := mc.serve()
	s.untrack(raw)
	if handoff == nil {
		s.rt.metrics.connsInbound.Add(-1)
		_ = c.Close()
		return
	}
	if !s.handO.push(handoff) {
		s.rt.metrics.connsInbound.Add(-1)
		_ = c.Close()
	}
}

func (s *server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		select {
		case <-ctx.Done():
			s.stopHard()
		case <-stopWatch:
		}
	}()
	// Message connections finish the batch they are reading and stop.
	s.mu.Lock()
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	herr := s.http.ShutdownWithContext(ctx)
	s.handO.Close()
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
	if herr != nil {
		return herr
	}
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

// handoffListener is a net.Listener fed with connections whose next request
// is ordinary HTTP.
type handoffListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closeO sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// Accept returns the next handed-off connection.
func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept.
func (l *handoffListener) Close() error {
	l.closeO.Do(func() { close(l.done) })
	return nil
}

// Addr returns the real listener's address.
func (l *handoffListener) Addr() net.Addr { return l.addr }

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

// Compile-time interface checks.
var (
	_ net.Listener = (*handoffListener)(nil)
	_ net.Conn     = (*httpConn)(nil)
)
