package pkgpanda

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
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

	ops    [numOps]opSpec
	actors map[string]*actor
	m      metrics
	cache  *resultCache // results of list and active (cache.go)

	// rw is the readers/writer lock across actors: mutations hold it
	// for writing, read-only runs for reading.
	rw sync.RWMutex

	mu       sync.Mutex // guards draining, sends into actor queues, uploadsDone.Add
	draining bool

	uploads     *uploads // set by Start
	uploadsDone sync.WaitGroup
	replies     replyBudget
	fetchClient *http.Client

	drainCtx    context.Context // done once Drain began
	drainCancel context.CancelFunc
	actorsDone  sync.WaitGroup
	started     bool
	// stdin is /dev/null, every run's standard input (set by Start,
	// closed once Drain is done).
	stdin *os.File
	// delegated is set by Start when the runtime's delegate is this
	// process: its routes are served without the prefix too.
	delegated bool
}

// metrics are the process' counters beyond the per-route ones; see Start
// for their names.
type metrics struct {
	unauthenticated *libprocess.Counter
	forbidden       *libprocess.Counter
	undecodable     *libprocess.Counter
	noSender        *libprocess.Counter
	repliesDropped  *libprocess.Counter
	uploadsRejected *libprocess.Counter
	uploadsTooLarge *libprocess.Counter
	uploadsStale    *libprocess.Counter
	lockBusy        *libprocess.Counter
	lockTimeouts    *libprocess.Counter
	installBlocked  *libprocess.Counter
	panics          *libprocess.Counter
}

// New validates cfg and returns an unstarted pkgpanda process with its
// routes and message handlers installed.
func New(cfg Config) (*Process, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Process{
		cfg:    cfg,
		log:    cfg.Logger.With().Str("process", processID).Logger(),
		lp:     libprocess.NewProcess(processID),
		ops:    operationTable(),
		actors: make(map[string]*actor),
	}
	for _, c := range p.m.all() {
		*c.ptr = &libprocess.Counter{}
	}
	p.cache = newResultCache(&p.cfg, p.log)
	p.replies = newReplyBudget(refusedRepliesPerSecond, refusedRepliesBurst)
	p.fetchClient = newFetchClient()
	p.drainCtx, p.drainCancel = context.WithCancel(context.Background())
	for _, name := range RouteNames() {
		l := cfg.limits(name)
		p.actors[name] = &actor{
			route:  name,
			limits: l,
			runner: &subprocess.Runner{Env: cfg.Env, Dir: cfg.Dir, Timeout: l.Timeout, KillGrace: cfg.KillGrace},
			queue:  make(chan *call, l.QueueLimit),
			runs:   &libprocess.Counter{},
			fails:  &libprocess.Counter{},
			full:   &libprocess.Counter{},
		}
	}
	p.installRoutes()
	p.installOpenAPI()
	if err := p.installMessages(); err != nil {
		return nil, err
	}
	return p, nil
}

type namedCounter struct {
	name string
	ptr  **libprocess.Counter
}

// all lists the counters with their metric names.
func (m *metrics) all() []namedCounter {
	return []namedCounter{
		{"pkgpanda/auth/unauthenticated", &m.unauthenticated},
		{"pkgpanda/auth/forbidden", &m.forbidden},
		{"pkgpanda/messages/undecodable", &m.undecodable},
		{"pkgpanda/messages/no_sender", &m.noSender},
		{"pkgpanda/messages/replies_dropped", &m.repliesDropped},
		{"pkgpanda/uploads/rejected", &m.uploadsRejected},
		{"pkgpanda/uploads/too_large", &m.uploadsTooLarge},
		{"pkgpanda/uploads/stale_removed", &m.uploadsStale},
		{"pkgpanda/repository_lock/busy", &m.lockBusy},
		{"pkgpanda/repository_lock/timeouts", &m.lockTimeouts},
		{"pkgpanda/interrupted_activation/refused", &m.installBlocked},
		{"pkgpanda/panics", &m.panics},
	}
}

// Start takes the process' upload directory (removing uploads a killed
// process left), looks for an interrupted activation, spawns the process
// on rt, registers its metrics and starts the route actors. It returns the
// process' UPID. Start may be called once.
//
// Metrics: per route pkgpanda/<route>/runs, .../failures, .../queue_full,
// the gauge .../queue_depth, the timer .../duration_ms (with /count,
// /min, /max, /p50 … /p9999: the actor's time per call) and the counters
// .../exit_status/<code> (also "signal", "not_started") of tool runs; the counters pkgpanda/auth/unauthenticated,
// pkgpanda/auth/forbidden, pkgpanda/messages/undecodable,
// pkgpanda/messages/no_sender, pkgpanda/messages/replies_dropped,
// pkgpanda/uploads/rejected, pkgpanda/uploads/too_large,
// pkgpanda/uploads/stale_removed, pkgpanda/repository_lock/busy,
// pkgpanda/repository_lock/timeouts,
// pkgpanda/interrupted_activation/refused, pkgpanda/cache/hits,
// pkgpanda/cache/misses, pkgpanda/cache/shared_runs, pkgpanda/cache/stale,
// pkgpanda/cache/untrusted, pkgpanda/cache/invalidations; the gauges
// pkgpanda/uploads/active, pkgpanda/uploads/bytes and
// pkgpanda/interrupted_activation/leftovers. metricFamilies declares how
// they appear in /metrics/prometheus.
func (p *Process) Start(rt *libprocess.Runtime) (libprocess.UPID, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.draining {
		return libprocess.UPID{}, errors.New("pkgpanda: already started or drained")
	}
	up, stale, err := openUploads(p.cfg.tempDir(), p.cfg.maxUploads(), p.cfg.maxUploadBytes())
	if err != nil {
		return libprocess.UPID{}, fmt.Errorf("starting pkgpanda: %w", err)
	}
	if stale > 0 {
		p.log.Warn().Int("removed", stale).Str("dir", up.dir).Msg("removed uploads left by a killed pkgpanda process")
	}
	if left := interruptedActivation(p.cfg.root()); len(left) > 0 {
		p.log.Error().Strs("leftovers", left).Msg("an activation was interrupted; activations and reads of the active set are refused until an operator recovers the install")
	}
	p.delegated = rt.Delegate() == processID
	m := rt.Metrics()
	if err := m.Describe(metricFamilies()...); err != nil {
		up.close()
		return libprocess.UPID{}, fmt.Errorf("starting pkgpanda: %w", err)
	}
	for _, c := range p.m.all() {
		*c.ptr = m.Counter(c.name)
	}
	p.m.uploadsStale.Add(int64(stale))
	p.cache.register(m)
	for name, a := range p.actors {
		a.runs = m.Counter("pkgpanda/" + name + "/runs")
		a.fails = m.Counter("pkgpanda/" + name + "/failures")
		a.full = m.Counter("pkgpanda/" + name + "/queue_full")
		a.timer = m.Timer("pkgpanda/" + name + "/duration")
		a.metrics = m
		a.exit0 = m.Counter("pkgpanda/" + name + "/exit_status/0")
		m.Gauge("pkgpanda/"+name+"/queue_depth", func() float64 { return float64(len(a.queue)) })
	}
	m.Gauge("pkgpanda/uploads/active", func() float64 { n, _ := up.counts(); return float64(n) })
	m.Gauge("pkgpanda/uploads/bytes", func() float64 { _, b := up.counts(); return float64(b) })
	root := p.cfg.root()
	m.Gauge("pkgpanda/interrupted_activation/leftovers", func() float64 { return float64(len(interruptedActivation(root))) })
	p.uploads = up
	upid, err := rt.Spawn(p.lp)
	if err != nil {
		up.close()
		return libprocess.UPID{}, fmt.Errorf("spawning the pkgpanda process: %w", err)
	}
	p.started = true
	// Every run's standard input; without it each run opens its own.
	if null, err := os.Open(os.DevNull); err == nil {
		p.stdin = null
	} else {
		p.log.Warn().Err(err).Msg("opening /dev/null once failed; each run opens its own")
	}
	for _, a := range p.actors {
		a.runner.Stdin = p.stdin
		p.actorsDone.Add(1)
		go p.loop(a)
	}
	return upid, nil
}

// Drain stops taking requests: new requests and every queued one are
// answered 503 (with Retry-After), uploads being received stop and are
// answered 503, running read-only runs are cancelled, and running
// mutations finish. It returns once every upload goroutine has ended and
// every actor is idle and stopped, or with ctx's error if ctx ends first.
// Drain does not terminate the libprocess process; the runtime's Shutdown
// does. Calling it again waits again.
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
		p.uploadsDone.Wait()
		p.actorsDone.Wait()
		close(done)
	}()
	select {
	case <-done:
		p.uploads.close()
		if p.stdin != nil {
			_ = p.stdin.Close() // no run is left to use it
		}
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
