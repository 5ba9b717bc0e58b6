package pkgpanda

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/subprocess"
	"github.com/rs/zerolog"
)

// Process is the pkgpanda process: a libprocess process with id "pkgpanda"
// plus one actor per route. Create it with New, put it on a runtime with
// Start, and stop it with Drain before shutting the runtime down.
type Process struct {
	cfg Config
	log zerolog.Logger
	lp  *libprocess.Process

	actors map[string]*actor

	// rw is the readers/writer lock across actors: mutations hold it
	// for writing, read-only runs for reading.
	rw sync.RWMutex

	mu       sync.Mutex // guards draining and sends into actor queues
	draining bool

	drainCtx    context.Context // done once Drain began
	drainCancel context.CancelFunc
	actorsDone  sync.WaitGroup
	started     bool
}

// New validates cfg and returns an unstarted pkgpanda process with its
// routes and message handlers installed.
func New(cfg Config) (*Process, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Process{
		cfg:    cfg,
		log:    cfg.Logger.With().Str("process", ProcessID).Logger(),
		lp:     libprocess.NewProcess(ProcessID),
		actors: make(map[string]*actor),
	}
	p.lp.SetRealm(cfg.Realm)
	p.drainCtx, p.drainCancel = context.WithCancel(context.Background())
	for _, name := range RouteNames() {
		l := cfg.limits(name)
		p.actors[name] = &actor{
			route:  name,
			limits: l,
			runner: &subprocess.Runner{Env: cfg.Env, Dir: cfg.Dir, Timeout: l.Timeout, KillGrace: cfg.KillGrace},
			queue:  make(chan *job, l.QueueLimit),
		}
	}
	p.installRoutes()
	if err := p.installMessages(); err != nil {
		return nil, err
	}
	return p, nil
}

// Start spawns the process on rt, registers its metrics
// (pkgpanda/<route>/runs, .../failures, .../queue_full and the gauge
// .../queue_depth) and starts the route actors. It returns the process'
// UPID. Start may be called once.
func (p *Process) Start(rt *libprocess.Runtime) (libprocess.UPID, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.draining {
		return libprocess.UPID{}, errors.New("pkgpanda: already started or drained")
	}
	m := rt.Metrics()
	for name, a := range p.actors {
		a.runs = m.Counter("pkgpanda/" + name + "/runs")
		a.fails = m.Counter("pkgpanda/" + name + "/failures")
		a.full = m.Counter("pkgpanda/" + name + "/queue_full")
		q := a.queue
		m.Gauge("pkgpanda/"+name+"/queue_depth", func() float64 { return float64(len(q)) })
	}
	upid, err := rt.Spawn(p.lp)
	if err != nil {
		return libprocess.UPID{}, fmt.Errorf("spawning the pkgpanda process: %w", err)
	}
	p.started = true
	for _, a := range p.actors {
		p.actorsDone.Add(1)
		go p.loop(a)
	}
	return upid, nil
}

// UPID returns the process' UPID (zero before Start).
func (p *Process) UPID() libprocess.UPID { return p.lp.Self() }

// Drain stops taking requests: new requests and every queued one are
// answered 503 (with Retry-After), running read-only runs are cancelled,
// and running mutations finish. It returns once every actor is idle and
// stopped, or with ctx's error if ctx ends first. Drain does not terminate
// the libprocess process; the runtime's Shutdown does. Calling it again
// waits again.
func (p *Process) Drain(ctx context.Context) error {
	p.mu.Lock()
	if !p.draining {
		p.draining = true
		p.drainCancel()
		if p.started {
			for _, a := range p.actors {
				close(a.queue)
			}
		}
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.actorsDone.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("draining pkgpanda: %w", ctx.Err())
	}
}

func (p *Process) isDraining() bool {
	select {
	case <-p.drainCtx.Done():
		return true
	default:
		return false
	}
}

// queueLen returns the number of requests waiting for a route's actor.
func (p *Process) queueLen(route string) int {
	return len(p.actors[route].queue)
}
