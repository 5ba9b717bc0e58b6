package libprocess

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Runtime is one libprocess instance: one listening port hosting many
// processes (docs/libprocess-wire.md §1.1). Create it with New, Start it, Spawn processes, and
// Shutdown when done.
type Runtime struct {
	cfg Config
	log zerolog.Logger

	mu sync.RWMutex
	// processes maps ids to running processes. It is replaced, never
	// changed, and only under mu, so every message and route looks up
	// its receiver with one atomic load and no lock.
	processes atomic.Pointer[map[string]*Process]
	order     []*Process // spawn order, for shutdown
	address   UPID       // advertised address (ID empty)
	started   bool       // Start was called (and did not fail)
	closing   bool

	metrics *runtimeMetrics
	sys     *Metrics // the runtime's own metrics (libprocess/…)
	user    *Metrics
	help    *helpRegistry
	auth    *authRegistry
	fw      *firewall

	server    *server
	outbound  *outbound
	tlsServer *tls.Config // nil without TLS
	tlsClient *tls.Config
	wg        sync.WaitGroup // process goroutines
}

// New validates cfg and returns a runtime that is not yet listening.
func New(cfg Config) (*Runtime, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rt := &Runtime{
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: &runtimeMetrics{},
		user:    newMetrics(),
		help:    newHelpRegistry(),
		auth:    newAuthRegistry(),
	}
	rt.processes.Store(&map[string]*Process{})
	if cfg.TLS.Enabled {
		var err error
		if rt.tlsServer, rt.tlsClient, err = cfg.TLS.tlsConfigs(); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err == nil && uint64(cfg.MaxOutboundPeers) > nofile.Cur/2 {
		rt.log.Warn().Int("max_outbound_peers", cfg.MaxOutboundPeers).Uint64("rlimit_nofile", nofile.Cur).
			Msg("MaxOutboundPeers is more than half of RLIMIT_NOFILE: outbound peers could starve accept and subprocesses of descriptors")
	}
	rt.sys = rt.newSystemMetrics()
	rt.fw = newFirewall(cfg.DisabledEndpoints, &rt.metrics.firewallDenied)
	rt.outbound = newOutbound(rt)
	return rt, nil
}

// Start binds the listening port, fixes the instance's address (advertised
// IP/port if configured; when bound to all interfaces, the host's first
// resolved IPv4 address as in libprocess) and spawns the built-in
// processes (help, metrics, __processes__). It returns once the port is
// accepting. A runtime starts once: a second call returns an error and
// leaves the first listener serving.
func (rt *Runtime) Start() error {
	rt.mu.Lock()
	switch {
	case rt.closing:
		rt.mu.Unlock()
		return errors.New("libprocess: start: runtime is shut down")
	case rt.started:
		rt.mu.Unlock()
		return errors.New("libprocess: start: runtime already started")
	}
	rt.started = true
	rt.mu.Unlock()
	if err := rt.start(); err != nil {
		rt.mu.Lock()
		rt.started = false
		rt.mu.Unlock()
		return err
	}
	return nil
}

func (rt *Runtime) start() error {
	if rt.cfg.NoListener {
		host, port := rt.cfg.AdvertiseIP, uint16(rt.cfg.AdvertisePort)
		if host == "" {
			host = "127.0.0.1"
		}
		rt.mu.Lock()
		rt.address = UPID{Host: host, Port: port}
		rt.mu.Unlock()
		rt.server = newServer(rt, nil)
		if err := rt.spawnBuiltins(); err != nil {
			return err
		}
		rt.log.Info().Str("address", rt.address.HostPort()).Msg("libprocess runtime started without a TCP listener: no messages can arrive")
		return nil
	}
	bindIP := rt.cfg.IP
	if bindIP == "" {
		bindIP = "0.0.0.0"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(bindIP, strconv.Itoa(rt.cfg.Port)))
	if err != nil {
		return fmt.Errorf("libprocess: listening on %s:%d: %w", bindIP, rt.cfg.Port, err)
	}
	tcp := ln.Addr().(*net.TCPAddr)
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = hostIPv4()
	}
	port := uint16(tcp.Port)
	if rt.cfg.AdvertiseIP != "" {
		host = rt.cfg.AdvertiseIP
	}
	if rt.cfg.AdvertisePort != 0 {
		port = uint16(rt.cfg.AdvertisePort)
	}
	rt.mu.Lock()
	rt.address = UPID{Host: host, Port: port}
	rt.mu.Unlock()

	rt.server = newServer(rt, ln)
	rt.server.start()
	if err := rt.spawnBuiltins(); err != nil {
		_ = ln.Close()
		return err
	}
	rt.log.Info().Str("address", rt.address.HostPort()).Str("listen", ln.Addr().String()).Msg("libprocess runtime listening")
	return nil
}

// spawnBuiltins spawns the processes every instance serves.
func (rt *Runtime) spawnBuiltins() error {
	for _, p := range rt.builtins() {
		if _, err := rt.Spawn(p); err != nil {
			return fmt.Errorf("libprocess: spawning built-in process %q: %w", p.id, err)
		}
	}
	return nil
}

// hostIPv4 resolves the host name to its first IPv4 address, as libprocess
// does when bound to 0.0.0.0, falling back to 127.0.0.1.
func hostIPv4() string {
	name, err := os.Hostname()
	if err == nil {
		if addrs, err := net.LookupIP(name); err == nil {
			for _, a := range addrs {
				if v4 := a.To4(); v4 != nil {
					return v4.String()
				}
			}
		}
	}
	return "127.0.0.1"
}

// Addr returns the instance's address: a UPID with an empty ID whose Host
// and Port are the advertised ones (Config.AdvertiseIP/AdvertisePort),
// else the bound ones (with the host's first IPv4 address when bound to
// all interfaces). It is the zero UPID before Start. Addr().HostPort() is
// the "ip:port" peers dial; the UPID of a process with id on this instance
// is Addr() with ID set (Spawn and Process.Self return it for spawned
// ones). The listener's own address, when it differs (behind NAT), is
// logged at Start.
func (rt *Runtime) Addr() UPID {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.address
}

// Metrics returns the registry processes add their own metrics to; they
// appear in /metrics/snapshot.
func (rt *Runtime) Metrics() *Metrics { return rt.user }

// Delegate returns the id of the process that answers HTTP requests
// whose path names no process (Config.Delegate), "" for none.
func (rt *Runtime) Delegate() string { return rt.cfg.Delegate }

// Logger returns the logger of the runtime p was spawned on, so that code
// running in p's handlers (such as package protobuf's decoders) logs where
// the runtime does; before Spawn it is a disabled logger. Call it from p's
// handlers or after Spawn has returned.
func (p *Process) Logger() zerolog.Logger {
	if p.rt == nil {
		return zerolog.Nop()
	}
	return p.rt.log
}

// Spawn registers p under its id and starts its goroutine. It fails if the
// id is invalid or taken, or the runtime is shutting down.
func (rt *Runtime) Spawn(p *Process) (UPID, error) {
	if err := validID(p.id); err != nil {
		return UPID{}, fmt.Errorf("spawn: %w", err)
	}
	rt.mu.Lock()
	if rt.closing {
		rt.mu.Unlock()
		return UPID{}, fmt.Errorf("spawn %q: runtime is shutting down", p.id)
	}
	if p.rt != nil {
		rt.mu.Unlock()
		return UPID{}, fmt.Errorf("spawn %q: process was already spawned", p.id)
	}
	if rt.address.Port == 0 && rt.address.Host == "" {
		rt.mu.Unlock()
		return UPID{}, fmt.Errorf("spawn %q: runtime not started (call Start first)", p.id)
	}
	if _, taken := (*rt.processes.Load())[p.id]; taken {
		rt.mu.Unlock()
		return UPID{}, fmt.Errorf("spawn %q: a process with that id is running", p.id)
	}
	p.rt = rt
	p.self = rt.address
	p.self.ID = p.id
	p.mbox = newMailbox(rt.cfg.MailboxCapacity)
	rt.replaceProcesses(func(m map[string]*Process) { m[p.id] = p })
	rt.order = append(rt.order, p)
	// Under rt.mu, so that unregistering an earlier process of this id
	// cannot remove the gauge after it was registered again.
	mbox := p.mbox
	rt.sys.Gauge("libprocess/mailbox_depth/"+p.id, func() float64 { return float64(mbox.depth()) })
	rt.mu.Unlock()

	for _, r := range p.routes {
		rt.help.add(p, r)
	}
	p.spawned.Store(true)
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		p.run()
	}()
	rt.log.Info().Str("process", p.self.String()).Msg("process spawned")
	return p.self, nil
}

// lookup returns the running process with this id, or nil.
func (rt *Runtime) lookup(id string) *Process {
	return (*rt.processes.Load())[id]
}

// lookupBytes is lookup for an id held in a byte slice, without allocating.
func (rt *Runtime) lookupBytes(id []byte) *Process {
	return (*rt.processes.Load())[string(id)]
}

// replaceProcesses installs a copy of the process table changed by
// change. The caller holds rt.mu.
func (rt *Runtime) replaceProcesses(change func(map[string]*Process)) {
	m := maps.Clone(*rt.processes.Load())
	change(m)
	rt.processes.Store(&m)
}

func (rt *Runtime) unregister(p *Process) {
	rt.mu.Lock()
	if rt.lookup(p.id) == p {
		rt.replaceProcesses(func(m map[string]*Process) { delete(m, p.id) })
		rt.sys.RemoveGauge("libprocess/mailbox_depth/" + p.id)
	}
	for i, q := range rt.order {
		if q == p {
			rt.order = append(rt.order[:i], rt.order[i+1:]...)
			break
		}
	}
	rt.mu.Unlock()
	rt.help.remove(p.id)
}

// processExited notifies local linkers that p terminated.
func (rt *Runtime) processExited(p *Process) {
	p.linkMu.Lock()
	linkers := p.linkers
	p.linkers = nil
	p.linkMu.Unlock()
	for l := range linkers {
		_ = l.enqueue(event{kind: evExited, upid: p.self})
	}
	rt.outbound.dropProcess(p)
}

// isLocal reports whether to names this instance.
func (rt *Runtime) isLocal(to UPID) bool {
	addr := rt.Addr()
	if to.Port != addr.Port {
		return false
	}
	if to.Host == addr.Host {
		return true
	}
	// A UPID naming the bound address (e.g. 127.0.0.1 while advertising
	// another IP) is local too.
	if rt.server != nil {
		bound := rt.server.ln.Addr().(*net.TCPAddr)
		if bound.Port == int(to.Port) {
			ip := net.ParseIP(to.Host)
			return ip != nil && (bound.IP.Equal(ip) || (bound.IP.IsUnspecified() && ip.IsLoopback()))
		}
	}
	return false
}

func (rt *Runtime) send(from *Process, to UPID, name string, body []byte) error {
	if rt.isLocal(to) {
		q := rt.lookup(to.ID)
		if q == nil {
			rt.metrics.messagesDropped.Add(1)
			return fmt.Errorf("send %s to %s: %w", name, to, ErrTerminated)
		}
		if err := q.enqueue(event{kind: evMessage, msg: Message{From: from.self, To: q.self, Name: name, Body: body}}); err != nil {
			rt.metrics.messagesDropped.Add(1)
			rt.log.Warn().Str("from", from.self.String()).Str("to", to.String()).Str("message", name).Err(err).Msg("dropped local message")
			return fmt.Errorf("send %s to %s: %w", name, to, err)
		}
		rt.metrics.messagesSent.Add(1)
		return nil
	}
	return rt.outbound.send(from, to, name, body)
}

func (rt *Runtime) link(from *Process, to UPID) error {
	if rt.isLocal(to) {
		q := rt.lookup(to.ID)
		if q != nil {
			q.linkMu.Lock()
			if q.linkers != nil {
				q.linkers[from] = struct{}{}
				q.linkMu.Unlock()
				return nil
			}
			q.linkMu.Unlock()
		}
		// Linking to a process that is gone notifies at once.
		return from.enqueue(event{kind: evExited, upid: to})
	}
	return rt.outbound.link(from, to)
}

// deliverTo hands an inbound message to its receiver p. It reports
// whether p still exists (202) or not (404). When p's mailbox is full the
// calling connection waits for room up to ReadTimeout (pushing back on the
// peer through TCP) before the message is dropped and counted.
//
// held is the InboundBodyBudget the message's body holds; the process
// gives it back when it has handled or dropped the message, and deliverTo
// at once when the message is not queued.
func (rt *Runtime) deliverTo(p *Process, m Message, held int64) bool {
	if err := p.mbox.putWait(event{kind: evMessage, msg: m, held: held}, rt.cfg.ReadTimeout); err != nil {
		rt.releaseInbound(held)
		rt.metrics.messagesDropped.Add(1)
		rt.log.Warn().Str("to", p.self.String()).Str("from", m.From.String()).Str("message", m.Name).Err(err).Msg("dropped inbound message")
		// The process exists: libprocess still answers 202 (at most once).
		return !errors.Is(err, ErrTerminated)
	}
	rt.metrics.messagesReceived.Add(1)
	return true
}

// releaseInbound gives back n bytes of InboundBodyBudget held by a
// message body.
func (rt *Runtime) releaseInbound(n int64) {
	if n > 0 && rt.server != nil {
		rt.server.budget.release(n)
	}
}

// Shutdown stops the runtime: it stops accepting connections, lets
// in-flight HTTP requests finish until ctx is done, flushes outbound
// queues, then terminates processes in reverse spawn order (built-ins
// last) and waits for them. It returns ctx's error if the deadline cut
// anything short.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	rt.mu.Lock()
	if rt.closing {
		rt.mu.Unlock()
		return nil
	}
	rt.closing = true
	rt.mu.Unlock()
	rt.log.Info().Msg("libprocess runtime shutting down")

	var errs []error
	if rt.server != nil {
		if err := rt.server.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping listener: %w", err))
		}
	}
	if err := rt.outbound.flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("flushing outbound queues: %w", err))
	}
	rt.mu.RLock()
	order := append([]*Process(nil), rt.order...)
	rt.mu.RUnlock()
	for i := len(order) - 1; i >= 0; i-- {
		p := order[i]
		p.Terminate()
		select {
		case <-p.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("terminating %q: %w", p.id, ctx.Err()))
		}
	}
	rt.outbound.close()
	done := make(chan struct{})
	go func() { rt.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("waiting for processes: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// dateCache formats the HTTP Date header at most once per second.
type dateCache struct {
	mu   sync.Mutex
	sec  int64
	text []byte
}

// appendTo appends the Date header value for now to dst.
func (d *dateCache) appendTo(dst []byte, now time.Time) []byte {
	s := now.Unix()
	d.mu.Lock()
	if s != d.sec || d.text == nil {
		d.sec = s
		d.text = now.UTC().AppendFormat(d.text[:0], http.TimeFormat)
	}
	dst = append(dst, d.text...)
	d.mu.Unlock()
	return dst
}
