package conformance

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
)

// PeerID is the process id of the suite's own libprocess peer.
const PeerID = "conformance"

// Inbound is one request the target sent to the suite's peer.
type Inbound struct {
	// Conn numbers the connection it arrived on, from 1 in accept order.
	Conn int
	// Seq numbers the request within its connection, from 1.
	Seq int
	// Req is the request as read off the wire.
	Req *request
}

// Peer is the suite acting as a libprocess instance with one process,
// PeerID: it accepts connections, reads inbound requests byte-exactly and
// answers each with "202 Accepted" and an empty body (unless told to stay
// silent, as mesos-go does towards libprocess senders).
type Peer struct {
	ln   net.Listener
	upid string

	mu       sync.Mutex
	silent   bool
	conns    map[int]net.Conn
	ended    map[int]bool // connections that have ended, by number
	nextConn int
	inbound  []Inbound
	changed  chan struct{} // closed and replaced whenever inbound or ended grows
	closed   bool
	wg       sync.WaitGroup
	readErrs []error
}

// listenPeer starts a peer listening on addr ("ip:port"; port 0 picks one).
// The peer's UPID is PeerID@<ip>:<port> with the listener's address.
func listenPeer(addr string) (*Peer, error) {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("peer listen on %s: %w", addr, err)
	}
	p := &Peer{
		ln:      ln,
		upid:    PeerID + "@" + ln.Addr().String(),
		conns:   map[int]net.Conn{},
		ended:   map[int]bool{},
		changed: make(chan struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// UPID is the peer's address, as the suite puts it in Libprocess-From.
func (p *Peer) UPID() string { return p.upid }

// Addr is the peer's listening address "ip:port".
func (p *Peer) Addr() string { return p.ln.Addr().String() }

// SetSilent makes the peer stop (true) or resume (false) answering requests.
func (p *Peer) SetSilent(silent bool) {
	p.mu.Lock()
	p.silent = silent
	p.mu.Unlock()
}

// CloseConn closes the numbered connection from the peer's side. A
// connection that has already ended (the target may close a connection as
// soon as its queue drains, docs/libprocess-wire.md §3.2) is not an error.
func (p *Peer) CloseConn(n int) error {
	p.mu.Lock()
	c, ok := p.conns[n]
	ended := p.ended[n]
	p.mu.Unlock()
	if !ok {
		if ended {
			return nil
		}
		return fmt.Errorf("peer connection %d was never opened", n)
	}
	return c.Close()
}

// waitEnded waits until the numbered connection has ended (the target closed
// it, or the peer did), or ctx ends.
func (p *Peer) waitEnded(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		ended, changed := p.ended[n], p.changed
		p.mu.Unlock()
		if ended {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("peer connection %d still open: %w", n, ctx.Err())
		}
	}
}

// notifyLocked wakes every waiter; p.mu is held.
func (p *Peer) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Close stops the listener and closes every connection.
func (p *Peer) Close() error {
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// accept serves connections until the listener closes.
func (p *Peer) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.nextConn++
		n := p.nextConn
		p.conns[n] = c
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(n, c)
	}
}

// serve reads requests off one connection and answers them. When an answer
// cannot be written (the target closed its end), it goes on reading: every
// request already sent is still recorded (docs/libprocess-wire.md §3.2).
func (p *Peer) serve(n int, c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, n)
		p.ended[n] = true
		p.notifyLocked()
		p.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReader(c)
	writable := true
	for seq := 1; ; seq++ {
		req, err := readRequest(br)
		if err != nil {
			if req != nil {
				p.mu.Lock()
				p.readErrs = append(p.readErrs, fmt.Errorf("peer connection %d request %d: %w", n, seq, err))
				p.mu.Unlock()
			}
			return
		}
		p.mu.Lock()
		p.inbound = append(p.inbound, Inbound{Conn: n, Seq: seq, Req: req})
		p.notifyLocked()
		silent := p.silent
		p.mu.Unlock()
		if !silent && writable {
			if _, err := c.Write([]byte("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")); err != nil {
				writable = false
			}
		}
		if v, ok := req.Headers.get("Connection"); ok && strings.EqualFold(v, "close") {
			return
		}
	}
}

// mark returns the number of inbound requests received so far, for wait.
func (p *Peer) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inbound)
}

// wait returns the first inbound request, in arrival order from index from
// (see mark), that match accepts, waiting for it until ctx ends.
func (p *Peer) wait(ctx context.Context, from int, match func(Inbound) bool) (Inbound, error) {
	seen := from
	for {
		p.mu.Lock()
		list := p.inbound[seen:]
		changed := p.changed
		p.mu.Unlock()
		for _, in := range list {
			if match(in) {
				return in, nil
			}
		}
		seen += len(list)
		select {
		case <-changed:
		case <-ctx.Done():
			return Inbound{}, fmt.Errorf("no matching message from the target: %w", ctx.Err())
		}
	}
}

// waitBody waits for a message named name whose decoded body is body,
// received after mark from.
func (p *Peer) waitBody(ctx context.Context, from int, name string, body []byte) (Inbound, error) {
	path := "/" + PeerID + "/" + name
	return p.wait(ctx, from, func(in Inbound) bool {
		return in.Req.Target == path && string(in.Req.Body) == string(body)
	})
}
