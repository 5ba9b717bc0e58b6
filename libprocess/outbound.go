package libprocess

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procpanda/procpanda/libprocess/internal/wire"
)

// writeSegment is how many encoded bytes one write carries at most, plus
// the message that crosses it.
const writeSegment = 256 << 10

// directBody is the largest body copied into the encode buffer; a larger
// one is written from where it lies, after its head, so a writer never
// holds a second copy of a large message.
const directBody = 64 << 10

// maxKeptWriteBuf bounds the encode buffer a writer keeps (or lends to
// the runtime's pool) between batches; a larger one is dropped.
const maxKeptWriteBuf = 512 << 10

// outMsgOverhead is what a queued message costs beyond its body, name and
// target id (its slot in the queue, rounded up), in the byte bounds.
const outMsgOverhead = 64

// outbound owns connections to remote peers. There is one connection per
// local sending process and remote address (docs/libprocess-wire.md §3.2; one per sender keeps
// mesos-go peers, which attribute a connection's messages to its first
// sender, correct — docs/libprocess-wire.md §11.5). Each has one writer goroutine that drains
// the queue into a buffer and writes it with one syscall, and one reader
// goroutine that reads and discards responses — it never waits for them,
// as mesos-go answers C++-style senders with nothing (docs/libprocess-wire.md §11.3) — and
// notices when the connection breaks.
//
// Outbound connections are bounded, because every peer that sends us a
// message gets its answers on a connection of ours (docs/libprocess-wire.md §3.2): at most
// Config.MaxOutboundPeers peers exist (so at most that many sockets and
// twice that many goroutines); at the bound the least recently used idle,
// unlinked peer is closed to make room. An unlinked peer idle for
// Config.OutboundIdleTimeout is closed too (C++ keeps persistent
// connections only to linked peers; a linked peer's connection stays, as
// its close means "exited"). At most Config.MaxConcurrentDials dials
// (with TLS handshakes) run at once; the rest wait for a slot.
//
// Queued messages are bounded in count per peer
// (Config.OutboundQueueCapacity) and in bytes per peer
// (Config.OutboundQueueBytes) and for all peers together
// (Config.OutboundQueueBudget); a message's bytes are held from Send
// until its write ends.
//
// A write that fails ends the connection. Messages of the batch handed
// whole to the kernel before the failure may have arrived and are not
// sent again (at most once); the rest cannot have been delivered (the
// peer never saw their last byte), so they are queued again, once, for
// the next connection. This is what lets messages sent after a peer
// restarted arrive although their writer still held the old, reset
// connection.
type outbound struct {
	rt     *Runtime
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	peers  map[outKey]*peer
	lru    list.List // of *peer, most recently used first
	closed bool
	wg     sync.WaitGroup

	dialSlots   chan struct{} // one token per dial in progress
	dialWaiting atomic.Int64  // dials waiting for a slot
	budget      *sendBudget   // Config.OutboundQueueBudget, all peers
	bufs        sync.Pool     // encode buffers of writers with nothing queued (*[]byte)
}

type outKey struct {
	from string // local process id
	host string // remote host
	port uint16 // remote port
}

// outMsg is a queued message.
type outMsg struct {
	toID    string
	name    string
	body    []byte
	retried bool // queued again after a failed write; dropped if it fails again
}

// cost is what m counts against the byte bounds.
func (m *outMsg) cost() int64 {
	return int64(len(m.body)+len(m.name)+len(m.toID)) + outMsgOverhead
}

// costOf sums the cost of msgs.
func costOf(msgs []outMsg) int64 {
	var n int64
	for i := range msgs {
		n += msgs[i].cost()
	}
	return n
}

func newOutbound(rt *Runtime) *outbound {
	ctx, cancel := context.WithCancel(context.Background())
	return &outbound{
		rt: rt, ctx: ctx, cancel: cancel, peers: make(map[outKey]*peer),
		dialSlots: make(chan struct{}, rt.cfg.MaxConcurrentDials),
		budget:    &sendBudget{max: effectiveQueueBudget(&rt.cfg), gauge: &rt.metrics.outQueuedBytes},
	}
}

// peer is the connection state for one (local process, remote address).
type peer struct {
	o        *outbound
	key      outKey
	from     *Process
	fromText string // from's UPID text, written in every request
	addr     string

	mu      sync.Mutex
	queue   []outMsg
	pending int           // queued plus being written
	bytes   int64         // queued plus being written, against Config.OutboundQueueBytes (under mu)
	idle    chan struct{} // closed while pending == 0
	connect bool          // a link asked for a connection
	conn    net.Conn      // nil while disconnected
	gen     uint64        // connection generation
	links   map[UPID]struct{}
	stopped bool
	retired bool // removed from the map while idle; callers get a new peer

	elem *list.Element // position in o.lru; guarded by o.mu
	wake chan struct{}
}

func (o *outbound) peerFor(from *Process, to UPID) (*peer, error) {
	key := outKey{from: from.id, host: to.Host, port: to.Port}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil, errors.New("libprocess: runtime is shut down")
	}
	if p := o.peers[key]; p != nil {
		o.lru.MoveToFront(p.elem)
		o.mu.Unlock()
		return p, nil
	}
	var evicted *peer
	if len(o.peers) >= o.rt.cfg.MaxOutboundPeers {
		if evicted = o.evictLocked(); evicted == nil {
			o.mu.Unlock()
			o.rt.metrics.peerLimitRejections.Add(1)
			o.rt.log.Warn().Str("from", from.id).Str("peer", to.HostPort()).Int("max_outbound_peers", o.rt.cfg.MaxOutboundPeers).Msg("refused a new outbound peer: at the limit and none idle")
			return nil, fmt.Errorf("%w: %d peers, none idle (Config.MaxOutboundPeers)", ErrTooManyPeers, o.rt.cfg.MaxOutboundPeers)
		}
	}
	idle := make(chan struct{})
	close(idle)
	p := &peer{
		o: o, key: key, from: from, fromText: from.self.String(), addr: to.HostPort(),
		idle: idle, links: make(map[UPID]struct{}), wake: make(chan struct{}, 1),
	}
	o.peers[key] = p
	p.elem = o.lru.PushFront(p)
	o.wg.Add(1)
	o.mu.Unlock()
	if evicted != nil {
		// Closed before the new peer's writer can dial: never more than
		// MaxOutboundPeers sockets.
		o.rt.metrics.peersEvicted.Add(1)
		o.rt.log.Debug().Str("from", evicted.fromText).Str("peer", evicted.addr).Msg("closed the least recently used idle outbound peer to make room")
		evicted.stop()
	}
	go func() {
		defer o.wg.Done()
		p.writeLoop()
	}()
	return p, nil
}

// evictLocked picks the least recently used idle peer, forgets it and
// marks it stopped; the caller stops it after releasing o.mu. It returns
// nil when every peer is busy or linked.
func (o *outbound) evictLocked() *peer {
	for e := o.lru.Back(); e != nil; e = e.Prev() {
		q := e.Value.(*peer)
		q.mu.Lock()
		if q.idleLocked() {
			q.stopped, q.retired = true, true
			q.mu.Unlock()
			o.forgetLocked(q)
			return q
		}
		q.mu.Unlock()
	}
	return nil
}

// forgetLocked removes p from the peer table.
func (o *outbound) forgetLocked(p *peer) {
	if o.peers[p.key] == p {
		delete(o.peers, p.key)
	}
	if p.elem != nil {
		o.lru.Remove(p.elem)
		p.elem = nil
	}
}

// idleLocked reports whether p may be closed without losing anything:
// nothing queued or being written, no link, no connection asked for.
func (p *peer) idleLocked() bool {
	return p.pending == 0 && len(p.links) == 0 && !p.connect && !p.stopped
}

// retireIdle closes p after Config.OutboundIdleTimeout without traffic,
// unless it is linked or busy. It reports whether p was retired; its
// writer then returns.
func (p *peer) retireIdle() bool {
	o := p.o
	o.mu.Lock()
	p.mu.Lock()
	ok := p.idleLocked() && o.peers[p.key] == p
	var c net.Conn
	if ok {
		o.forgetLocked(p)
		p.stopped, p.retired = true, true
		c = p.conn
	}
	p.mu.Unlock()
	o.mu.Unlock()
	if c != nil {
		o.rt.metrics.outIdleClosed.Add(1)
		o.rt.log.Debug().Str("from", p.fromText).Str("peer", p.addr).Msg("closed idle outbound connection")
		_ = c.Close() // the reader sees it and accounts for the connection
	}
	return ok
}

func (o *outbound) send(from *Process, to UPID, name string, body []byte) error {
	p, err := o.livePeer(from, to)
	if err != nil {
		o.rt.metrics.messagesDropped.Add(1)
		return fmt.Errorf("send %s to %s: %w", name, to, err)
	}
	// livePeer returned p locked.
	if p.stopped {
		p.mu.Unlock()
		o.rt.metrics.messagesDropped.Add(1)
		return fmt.Errorf("send %s to %s: %w", name, to, ErrTerminated)
	}
	if len(p.queue) >= o.rt.cfg.OutboundQueueCapacity {
		p.mu.Unlock()
		o.rt.metrics.messagesDropped.Add(1)
		o.rt.log.Warn().Str("from", p.fromText).Str("to", to.String()).Str("message", name).Msg("dropped message: outbound queue full")
		return fmt.Errorf("send %s to %s: %w", name, to, ErrQueueFull)
	}
	m := outMsg{toID: to.ID, name: name, body: body}
	if err := p.takeBytesLocked(m.cost()); err != nil {
		p.mu.Unlock()
		o.rt.metrics.messagesDropped.Add(1)
		return fmt.Errorf("send %s to %s: %w", name, to, err)
	}
	p.queue = append(p.queue, m)
	p.addPendingLocked(1)
	p.mu.Unlock()
	p.signal()
	return nil
}

// takeBytesLocked takes n bytes of p's queue bound and of the runtime's
// budget, or neither; it counts and logs a refusal. p.mu is held.
func (p *peer) takeBytesLocked(n int64) error {
	rt := p.o.rt
	if limit := effectiveQueueBytes(&rt.cfg); p.bytes+n > limit {
		rt.metrics.outPeerBytesFull.Add(1)
		rt.log.Warn().Str("from", p.fromText).Str("peer", p.addr).Int64("queued_bytes", p.bytes).Int64("message_bytes", n).Msg("dropped message: outbound queue bytes to the peer exhausted")
		return fmt.Errorf("%w: %d bytes queued to %s, the message needs %d more of Config.OutboundQueueBytes %d", ErrQueueBytes, p.bytes, p.addr, n, limit)
	}
	if ok, held := p.o.budget.take(n); !ok {
		rt.metrics.outBudgetFull.Add(1)
		rt.log.Warn().Str("from", p.fromText).Str("peer", p.addr).Int64("queued_bytes", held).Int64("message_bytes", n).Msg("dropped message: outbound queue budget of all peers exhausted")
		return fmt.Errorf("%w: %d bytes queued to all peers, the message needs %d more of Config.OutboundQueueBudget %d", ErrQueueBytes, held, n, p.o.budget.max)
	}
	p.bytes += n
	return nil
}

// releaseBytesLocked gives back n bytes taken by takeBytesLocked. p.mu
// is held.
func (p *peer) releaseBytesLocked(n int64) {
	p.bytes -= n
	p.o.budget.give(n)
}

// sendBudget bounds the bytes queued to all peers together. Sends only
// try it (libprocess never blocks a sender), so it is a lock-free counter:
// take succeeds while the bytes held stay within max.
type sendBudget struct {
	max   int64
	held  atomic.Int64
	gauge *atomic.Int64 // bytes held, shown in /metrics/snapshot
}

// take takes n bytes if they are left, and reports whether it did and the
// bytes held.
func (b *sendBudget) take(n int64) (bool, int64) {
	for {
		held := b.held.Load()
		if held+n > b.max {
			return false, held
		}
		if b.held.CompareAndSwap(held, held+n) {
			b.gauge.Add(n)
			return true, held + n
		}
	}
}

// give returns n bytes taken.
func (b *sendBudget) give(n int64) {
	b.held.Add(-n)
	b.gauge.Add(-n)
}

func (o *outbound) link(from *Process, to UPID) error {
	p, err := o.livePeer(from, to)
	if err != nil {
		return fmt.Errorf("link to %s: %w", to, err)
	}
	// livePeer returned p locked.
	p.links[to] = struct{}{}
	p.connect = true
	p.mu.Unlock()
	p.signal()
	return nil
}

// livePeer returns the peer for (from, to) locked, skipping one retired
// while the caller looked it up.
func (o *outbound) livePeer(from *Process, to UPID) (*peer, error) {
	for {
		p, err := o.peerFor(from, to)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		if !p.retired {
			return p, nil
		}
		p.mu.Unlock()
	}
}

// retireIfIdle forgets a disconnected peer with nothing queued and no
// links, so the peers of short-lived clients (each mesos-go client has its
// own address) do not accumulate. A later send creates a fresh one.
func (p *peer) retireIfIdle() {
	o := p.o
	o.mu.Lock()
	p.mu.Lock()
	idle := p.conn == nil && p.idleLocked()
	if idle && o.peers[p.key] == p {
		o.forgetLocked(p)
		p.stopped, p.retired = true, true
	} else {
		idle = false
	}
	p.mu.Unlock()
	o.mu.Unlock()
	if idle {
		p.signal() // the writer sees stopped and exits
	}
}

// count returns how many remote peers are known.
func (o *outbound) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.peers)
}

// queued returns the number of messages waiting in all queues.
func (o *outbound) queued() int {
	o.mu.Lock()
	peers := make([]*peer, 0, len(o.peers))
	for _, p := range o.peers {
		peers = append(peers, p)
	}
	o.mu.Unlock()
	n := 0
	for _, p := range peers {
		p.mu.Lock()
		n += len(p.queue)
		p.mu.Unlock()
	}
	return n
}

// flush waits until every queue is written or ctx is done.
func (o *outbound) flush(ctx context.Context) error {
	o.mu.Lock()
	peers := make([]*peer, 0, len(o.peers))
	for _, p := range o.peers {
		peers = append(peers, p)
	}
	o.mu.Unlock()
	for _, p := range peers {
		p.mu.Lock()
		idle := p.idle
		p.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// dropProcess closes the connections of a terminated local process.
func (o *outbound) dropProcess(from *Process) {
	o.mu.Lock()
	var mine []*peer
	for k, p := range o.peers {
		if k.from == from.id && p.from == from {
			mine = append(mine, p)
			o.forgetLocked(p)
		}
	}
	o.mu.Unlock()
	for _, p := range mine {
		p.stop()
	}
}

// close stops every writer and closes every connection.
func (o *outbound) close() {
	o.mu.Lock()
	o.closed = true
	peers := o.peers
	o.peers = make(map[outKey]*peer)
	o.lru.Init()
	o.mu.Unlock()
	o.cancel()
	for _, p := range peers {
		p.stop()
	}
	o.wg.Wait()
}

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *peer) addPendingLocked(n int) {
	if p.pending == 0 && n > 0 {
		p.idle = make(chan struct{})
	}
	p.pending += n
	if p.pending == 0 {
		close(p.idle)
	}
}

func (p *peer) stop() {
	p.mu.Lock()
	p.stopped = true
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	p.signal()
}

// writeLoop owns the connection: it connects when there is something to
// send or a link to keep, encodes every queued message into one buffer,
// and writes it.
func (p *peer) writeLoop() {
	rt := p.o.rt
	w := batchWriter{pool: &p.o.bufs}
	var spare []outMsg
	idle := time.NewTimer(rt.cfg.OutboundIdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-p.wake:
		case <-idle.C:
			if p.retireIdle() {
				return
			}
			continue
		}
		p.mu.Lock()
		if p.stopped {
			dropped := p.queue
			p.queue = nil
			if p.pending > 0 {
				p.addPendingLocked(-p.pending)
			}
			p.releaseBytesLocked(costOf(dropped))
			p.mu.Unlock()
			rt.metrics.messagesDropped.Add(int64(len(dropped)))
			return
		}
		batch := p.queue
		p.queue = spare[:0]
		conn, gen := p.conn, p.gen
		wantConn := p.connect || len(batch) > 0
		p.connect = false
		p.mu.Unlock()

		if conn == nil && wantConn {
			conn, gen = p.dial()
		}
		if len(batch) > 0 {
			var again []outMsg
			if conn == nil {
				rt.metrics.messagesDropped.Add(int64(len(batch)))
			} else {
				done, err := w.write(p, conn, batch)
				rt.metrics.messagesSent.Add(int64(done))
				if err != nil {
					again = p.writeFailed(batch, done, err)
					p.broken(gen, conn)
				}
			}
			sent := costOf(batch) - costOf(again)
			for i := range batch {
				batch[i] = outMsg{}
			}
			p.mu.Lock()
			p.releaseBytesLocked(sent)
			if len(again) > 0 {
				// Ahead of what was sent since, keeping the order; if p
				// stopped meanwhile, the stopped branch drops them.
				p.queue = append(again, p.queue...)
			}
			p.addPendingLocked(-(len(batch) - len(again)))
			disconnected := p.conn == nil
			more := len(p.queue) > 0
			p.mu.Unlock()
			w.trim(more)
			if len(again) > 0 {
				p.signal()
			} else if disconnected {
				p.retireIfIdle()
			}
		}
		spare = batch
		// The idle period starts when the work is done, so a slow dial
		// or write does not count as idleness.
		idle.Reset(rt.cfg.OutboundIdleTimeout)
	}
}

// writeFailed accounts for a batch whose write failed after its first
// done messages were handed whole to the kernel: those may have arrived
// and count as sent; of the rest, none of which can have been delivered,
// it returns the ones not yet retried, to be queued again, and drops
// and counts the others.
func (p *peer) writeFailed(batch []outMsg, done int, err error) []outMsg {
	rt := p.o.rt
	var again []outMsg
	for _, m := range batch[done:] {
		if !m.retried {
			m.retried = true
			again = append(again, m)
		}
	}
	dropped := len(batch) - done - len(again)
	rt.metrics.messagesDropped.Add(int64(dropped))
	rt.metrics.requeued.Add(int64(len(again)))
	rt.log.Warn().Str("from", p.fromText).Str("peer", p.addr).Int("written", done).Int("queued_again", len(again)).Int("dropped", dropped).Err(err).Msg("write to peer failed")
	return again
}

// batchWriter encodes batches and writes them. It keeps its encode buffer
// between batches while more is queued, and the end offsets of the
// messages in it; when its peer has nothing queued it lends the buffer to
// pool, from which the next batch of any peer takes one, so idle peers
// hold none and busy ones allocate none.
type batchWriter struct {
	pool *sync.Pool // of *[]byte
	bp   *[]byte    // holds buf while lent to pool
	buf  []byte
	ends []int // end offset in buf of each message encoded in it
}

// write encodes the batch and writes it in segments of about
// writeSegment bytes, so one syscall carries many messages while the
// buffer stays small enough to reuse; a body larger than directBody is
// written from the message itself after its head. It returns how many
// messages, from the first, were handed whole to the kernel, and the
// write's error.
func (w *batchWriter) write(p *peer, conn net.Conn, batch []outMsg) (int, error) {
	timeout := p.o.rt.cfg.WriteTimeout
	done := 0 // messages handed whole to the kernel
	if w.buf == nil && w.pool != nil {
		if bp, ok := w.pool.Get().(*[]byte); ok {
			w.bp, w.buf = bp, *bp
		}
	}
	w.buf, w.ends = w.buf[:0], w.ends[:0]
	flush := func() error {
		if len(w.buf) == 0 {
			return nil
		}
		_ = conn.SetWriteDeadline(time.Now().Add(timeout))
		n, err := conn.Write(w.buf)
		for _, end := range w.ends {
			if end > n {
				break
			}
			done++
		}
		w.buf, w.ends = w.buf[:0], w.ends[:0]
		return err
	}
	for i := range batch {
		m := &batch[i]
		if len(m.body) > directBody {
			if err := flush(); err != nil {
				return done, err
			}
			w.buf = wire.AppendMessageHead(w.buf, p.fromText, m.toID, p.addr, m.name, len(m.body))
			bufs := net.Buffers{w.buf, m.body, []byte(wire.MessageTail)}
			total := int64(len(w.buf) + len(m.body) + len(wire.MessageTail))
			_ = conn.SetWriteDeadline(time.Now().Add(timeout))
			n, err := bufs.WriteTo(conn)
			w.buf = w.buf[:0]
			if n == total {
				done++
			}
			if err != nil {
				return done, err
			}
			continue
		}
		w.buf = wire.AppendMessage(w.buf, p.fromText, m.toID, p.addr, m.name, m.body)
		w.ends = append(w.ends, len(w.buf))
		if len(w.buf) >= writeSegment || i == len(batch)-1 {
			if err := flush(); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// trim drops the encode buffer if it grew large, and lends it to the pool
// when nothing more is queued (more false).
func (w *batchWriter) trim(more bool) {
	switch c := cap(w.buf); {
	case c > maxKeptWriteBuf:
		w.buf = nil
	case !more && c > 0 && w.pool != nil:
		if w.bp == nil {
			w.bp = new([]byte)
		}
		*w.bp = w.buf[:0]
		w.pool.Put(w.bp)
		w.bp, w.buf = nil, nil
	}
	if cap(w.ends) > 4096 || (!more && cap(w.ends) > 256) {
		w.ends = nil
	}
}

// dial connects to the peer and starts its reader. On failure it notifies
// the linkers and returns a nil conn.
func (p *peer) dial() (net.Conn, uint64) {
	rt := p.o.rt
	c, err := p.openBounded()
	if err != nil {
		rt.metrics.connectFailures.Add(1)
		rt.log.Warn().Str("from", p.fromText).Str("peer", p.addr).Err(err).Msg("connecting to peer failed")
		p.mu.Lock()
		links := p.takeLinksLocked()
		p.mu.Unlock()
		p.notifyExited(links)
		return nil, 0
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		_ = c.Close()
		return nil, 0
	}
	p.gen++
	p.conn = c
	gen := p.gen
	p.mu.Unlock()
	rt.metrics.connsOutbound.Add(1)
	rt.log.Debug().Str("from", p.fromText).Str("peer", p.addr).Msg("connected to peer")
	p.o.wg.Add(1)
	go func() {
		defer p.o.wg.Done()
		p.readLoop(c, gen)
	}()
	return c, gen
}

// openBounded is open within the Config.MaxConcurrentDials dial slots: a
// flood of messages from new addresses cannot make the runtime open
// thousands of sockets at once.
func (p *peer) openBounded() (net.Conn, error) {
	o := p.o
	select {
	case o.dialSlots <- struct{}{}:
	default:
		o.rt.metrics.dialWaits.Add(1)
		o.dialWaiting.Add(1)
		select {
		case o.dialSlots <- struct{}{}:
			o.dialWaiting.Add(-1)
		case <-o.ctx.Done():
			o.dialWaiting.Add(-1)
			return nil, fmt.Errorf("waiting to dial %s: runtime is shutting down", p.addr)
		}
	}
	defer func() { <-o.dialSlots }()
	return p.open()
}

// open dials the peer, with a TLS handshake when TLS is enabled.
func (p *peer) open() (net.Conn, error) {
	rt := p.o.rt
	ctx, cancel := context.WithTimeout(p.o.ctx, rt.cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{}
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil || rt.tlsClient == nil {
		return c, err
	}
	tc := tls.Client(c, rt.tlsClient)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", p.addr, err)
	}
	return tc, nil
}

// readLoop reads and discards the peer's responses until the connection
// ends, then reports the break.
func (p *peer) readLoop(c net.Conn, gen uint64) {
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.o.rt.log.Debug().Str("peer", p.addr).Err(err).Msg("peer connection read failed")
			}
			p.broken(gen, c)
			return
		}
	}
}

// broken handles the end of connection generation gen: it closes it,
// forgets it so the next send reconnects, and notifies linkers once.
func (p *peer) broken(gen uint64, c net.Conn) {
	p.mu.Lock()
	if p.conn != c || p.gen != gen {
		p.mu.Unlock()
		return
	}
	p.conn = nil
	links := p.takeLinksLocked()
	stopped := p.stopped
	p.mu.Unlock()
	_ = c.Close()
	p.o.rt.metrics.connsOutbound.Add(-1)
	if !stopped {
		p.o.rt.log.Info().Str("from", p.fromText).Str("peer", p.addr).Int("links", len(links)).Msg("connection to peer closed")
	}
	p.notifyExited(links)
	p.retireIfIdle()
}

func (p *peer) takeLinksLocked() []UPID {
	if len(p.links) == 0 {
		return nil
	}
	out := make([]UPID, 0, len(p.links))
	for u := range p.links {
		out = append(out, u)
	}
	p.links = make(map[UPID]struct{})
	return out
}

func (p *peer) notifyExited(links []UPID) {
	for _, u := range links {
		_ = p.from.enqueue(event{kind: evExited, upid: u})
	}
}
