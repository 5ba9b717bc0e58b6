package libprocess

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Message is a libprocess message: a name, raw body bytes (usually a
// serialized protobuf whose full type name is the name) and the sender and
// receiver UPIDs. From is the zero UPID when a peer sent a sender that does
// not parse (C++ libprocess delivers such messages too).
type Message struct {
	From UPID
	To   UPID
	Name string
	Body []byte
}

// MessageHandler handles one message on its process' goroutine. m and its
// fields are valid only during the call; copy *m (the Body slice may be
// kept: it is never reused) to use it later.
type MessageHandler func(m *Message)

// ExitedHandler is told, on its process' goroutine, that a linked UPID
// terminated (local) or that the connection to it broke (remote).
type ExitedHandler func(pid UPID)

// Process is an actor: it has an id, a mailbox, message handlers and HTTP
// routes, and handles one event at a time, in the order events were
// queued, on its own goroutine — or, for an HTTP request that finds it
// idle with nothing queued, on the request's connection goroutine (see
// turn.go). Install handlers and routes before Spawn, or later from the
// process' own handlers; every other method is safe from any goroutine.
type Process struct {
	id string

	handlers map[string]MessageHandler
	routes   map[string]*route
	realm    string // default authentication realm of routes
	exited   ExitedHandler
	onInit   func()
	onFinal  func()

	rt      *Runtime
	self    UPID
	mbox    *mailbox
	spawned atomic.Bool
	done    chan struct{}

	linkMu  sync.Mutex
	linkers map[*Process]struct{} // local processes linked to this one
}

// NewProcess returns an unspawned process with the given id. Spawn fails
// if the id is empty, contains '/', or is already taken.
func NewProcess(id string) *Process {
	return &Process{
		id:       id,
		handlers: make(map[string]MessageHandler),
		routes:   make(map[string]*route),
		done:     make(chan struct{}),
		linkers:  make(map[*Process]struct{}),
	}
}

// ID returns the process id.
func (p *Process) ID() string { return p.id }

// Self returns the process' UPID; it is the zero UPID before Spawn.
func (p *Process) Self() UPID { return p.self }

// Done is closed once the process has terminated and left its runtime.
func (p *Process) Done() <-chan struct{} { return p.done }

// Install sets the handler for messages named name, replacing any earlier
// one. Messages with no handler are accepted (202) and dropped, as in
// libprocess.
func (p *Process) Install(name string, h MessageHandler) {
	p.handlers[name] = h
}

// OnExited sets the handler for exited notifications of linked UPIDs.
func (p *Process) OnExited(h ExitedHandler) { p.exited = h }

// OnInitialize sets a function run on the process' goroutine before any
// event, like libprocess' ProcessBase::initialize.
func (p *Process) OnInitialize(f func()) { p.onInit = f }

// OnFinalize sets a function run on the process' goroutine after its last
// event, like libprocess' ProcessBase::finalize.
func (p *Process) OnFinalize(f func()) { p.onFinal = f }

// Send sends a message from this process to the UPID to. Local receivers
// get it through their mailbox without touching the network; remote ones
// over this process' persistent connection to to's address, in send order.
// Send takes ownership of body: the caller must not modify it afterwards.
// The error reports only what is known at once (an id, name or host that
// cannot be written into a request head, not spawned, local receiver
// missing or full, outbound queue full, too many peers); like libprocess,
// delivery is at most once.
func (p *Process) Send(to UPID, name string, body []byte) error {
	if err := validateSend(to, name); err != nil {
		if p.rt != nil {
			p.rt.metrics.sendsInvalid.Add(1)
		}
		return fmt.Errorf("send to %q: %w: %w", to.String(), ErrInvalidTarget, err)
	}
	if !p.spawned.Load() {
		return fmt.Errorf("send %s to %s: process %q: %w", name, to, p.id, ErrTerminated)
	}
	return p.rt.send(p, to, name, body)
}

// Link asks for one exited notification when to terminates (a local
// process) or when the connection to to's address breaks (a remote one).
// Linking to a local process that does not exist notifies at once. A
// remote link opens the connection now if there is none.
func (p *Process) Link(to UPID) error {
	if !p.spawned.Load() {
		return fmt.Errorf("link to %s: process %q: %w", to, p.id, ErrTerminated)
	}
	return p.rt.link(p, to)
}

// Dispatch runs f on the process' goroutine, after the events already
// queued. It returns ErrMailboxFull or ErrTerminated when f cannot be
// queued.
func (p *Process) Dispatch(f func()) error {
	return p.enqueue(event{kind: evDispatch, fn: f})
}

// DispatchWait runs f as one of the process' events and waits until it
// has run (or the process terminated first, or f panicked). It is for
// goroutines other than the process' own handlers: a handler (message,
// route, dispatched function, exited, initialize, finalize) that calls it
// waits for an event that cannot start until the handler returns, and
// deadlocks its process. There, call f directly, or use Dispatch.
func (p *Process) DispatchWait(f func()) error {
	done := make(chan error, 1)
	if err := p.enqueue(event{kind: evDispatch, fn: f, done: done}); err != nil {
		return err
	}
	return <-done
}

// Terminate asks the process to stop: events queued before the request are
// dropped (HTTP requests among them are answered 503), OnFinalize runs, and
// linked processes are told it exited. It does not wait; use Done.
func (p *Process) Terminate() {
	_ = p.enqueue(event{kind: evTerminate})
}

func (p *Process) enqueue(e event) error {
	if p.mbox == nil {
		return fmt.Errorf("process %q not spawned: %w", p.id, ErrTerminated)
	}
	return p.mbox.put(e)
}

// validID reports why id cannot name a process: it is written as is into
// the User-Agent and Libprocess-From headers of every message the process
// sends, and peers must be able to address it (see validTargetID).
func validID(id string) error {
	if err := validTargetID(id); err != nil {
		return fmt.Errorf("process id: %w", err)
	}
	return nil
}

// shutdown implements termination: as in libprocess, events queued before
// the terminate are purged rather than served.
func (p *Process) shutdown(batch []event) {
	p.spawned.Store(false)
	rest := p.mbox.close()
	p.rt.unregister(p)
	for _, evs := range [][]event{batch, rest} {
		for i := range evs {
			p.drop(&evs[i])
		}
	}
	if p.onFinal != nil {
		p.serveAndRecover(&event{kind: evFinalize})
	}
	p.rt.processExited(p)
	p.rt.log.Info().Str("process", p.self.String()).Msg("process terminated")
	close(p.done)
}

// drop disposes of an event that will never be served.
func (p *Process) drop(e *event) {
	switch e.kind {
	case evHTTP:
		e.http.respond(TextResponse(503, "process "+p.id+" terminated"))
	case evMessage:
		p.rt.metrics.messagesDropped.Add(1)
		p.rt.releaseInbound(e.held)
	case evDispatch:
		if e.done != nil {
			e.done <- fmt.Errorf("process %q: %w", p.id, ErrTerminated)
		}
	}
}
