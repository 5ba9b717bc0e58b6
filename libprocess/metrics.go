package libprocess

import (
	"sort"
	"sync"
	"sync/atomic"
)

// runtimeMetrics are the runtime's own counters, exported under
// "libprocess/..." in /metrics/snapshot.
type runtimeMetrics struct {
	messagesReceived atomic.Int64 // inbound remote messages delivered to a mailbox
	messagesSent     atomic.Int64 // messages written to a socket or a local mailbox
	messagesDropped  atomic.Int64 // messages lost: no receiver, full mailbox or queue, broken connection
	messagesHandled  atomic.Int64 // messages taken from mailboxes
	messagesBadFrom  atomic.Int64 // inbound messages whose sender UPID did not parse
	httpRequests     atomic.Int64 // HTTP requests handed to routes
	connsInbound     atomic.Int64 // open inbound connections (gauge)
	connsOutbound    atomic.Int64 // open outbound connections (gauge)
	connectFailures  atomic.Int64 // failed dials to peers
	connErrors       atomic.Int64 // inbound connections closed on a protocol error

	// Outbound limits, failure containment and firewall.
	handlerPanics       atomic.Int64 // panics recovered in handlers, routes, dispatched functions
	sendsInvalid        atomic.Int64 // sends refused: id, name or host not writable in a request head
	peersEvicted        atomic.Int64 // idle outbound peers closed to make room (MaxOutboundPeers)
	peerLimitRejections atomic.Int64 // sends and links refused: MaxOutboundPeers busy peers
	outIdleClosed       atomic.Int64 // outbound connections closed after OutboundIdleTimeout
	dialWaits           atomic.Int64 // dials that waited for a MaxConcurrentDials slot
	firewallDenied      atomic.Int64 // requests and messages refused 403 by DisabledEndpoints
	messagesHTTPOnly    atomic.Int64 // messages refused 403 on an HTTP-only listener (ServeHTTPOn)
	outQueuedBytes      atomic.Int64 // bytes of OutboundQueueBudget held (gauge)
	outPeerBytesFull    atomic.Int64 // sends refused: OutboundQueueBytes of their peer exhausted
	outBudgetFull       atomic.Int64 // sends refused: OutboundQueueBudget exhausted
	requeued            atomic.Int64 // messages written to no peer before a write failed, queued again once

	// Inbound limits.
	connsRefused      atomic.Int64 // connections closed at accept: MaxInboundConnections reached
	requestTimeouts   atomic.Int64 // requests whose head or body missed its ReadTimeout deadline
	idleClosed        atomic.Int64 // connections closed by an idle timeout
	tlsFailures       atomic.Int64 // inbound TLS handshakes failed or timed out
	bodyBytes         atomic.Int64 // bytes of InboundBodyBudget held (gauge)
	bodyBudgetWaits   atomic.Int64 // body reads that waited for budget
	bodyBudgetRefused atomic.Int64 // requests answered 503 for want of budget
	routeTimeouts     atomic.Int64 // HTTP requests answered 504 (or streams ended) at their route deadline
	maxConnsInbound   atomic.Int64 // effective MaxInboundConnections (gauge)
}

// Counter is a monotonically increasing metric.
type Counter struct{ v atomic.Int64 }

// Add adds n to the counter.
func (c *Counter) Add(n int64) { c.v.Add(n) }

// Inc adds one to the counter.
func (c *Counter) Inc() { c.v.Add(1) }

// value returns the current count; users read counters in Snapshot.
func (c *Counter) value() int64 { return c.v.Load() }

// Metrics is a registry of named metrics shown by /metrics/snapshot and
// /metrics/prometheus. Names are paths such as "pkgpanda/runs/list"; how
// a path appears in /metrics/prometheus (family name, help, unit, labels)
// is declared with Describe. It is safe for concurrent use.
type Metrics struct {
	mu       sync.Mutex
	counters map[string]*Counter
	cfuncs   map[string]func() float64 // counters read from a function (the runtime's own)
	gauges   map[string]func() float64
	timers   map[string]*Timer
	families []familyPattern // Describe'd, in declaration order
	scratch  []float64       // sorts a timer's window during snapshots; under mu
}

func newMetrics() *Metrics {
	return &Metrics{
		counters: make(map[string]*Counter),
		cfuncs:   make(map[string]func() float64),
		gauges:   make(map[string]func() float64),
		timers:   make(map[string]*Timer),
	}
}

// Timer returns the timer registered as name (shown as "<name>_ms" and
// its statistics, see Timer), creating it empty.
func (m *Metrics) Timer(name string) *Timer {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.timers[name]
	if t == nil {
		t = &Timer{}
		m.timers[name] = t
	}
	return t
}

// Counter returns the counter with this name, creating it at zero.
func (m *Metrics) Counter(name string) *Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.counters[name]
	if c == nil {
		c = &Counter{}
		m.counters[name] = c
	}
	return c
}

// counterFunc registers f as the counter name: a count that only grows,
// kept elsewhere (the runtime's atomics).
func (m *Metrics) counterFunc(name string, f func() float64) {
	m.mu.Lock()
	m.cfuncs[name] = f
	m.mu.Unlock()
}

// Gauge registers f to be read at every snapshot under name, replacing any
// earlier gauge of that name. f must be safe to call from any goroutine.
func (m *Metrics) Gauge(name string, f func() float64) {
	m.mu.Lock()
	m.gauges[name] = f
	m.mu.Unlock()
}

// RemoveGauge unregisters a gauge.
func (m *Metrics) RemoveGauge(name string) {
	m.mu.Lock()
	delete(m.gauges, name)
	m.mu.Unlock()
}

// metricKind is how a metric was registered.
type metricKind uint8

const (
	kindGauge metricKind = iota
	kindCounter
	kindTimer
)

// sample is one metric read for an exposition: its path and kind, and its
// value (counters, gauges) or its timer's statistics.
type sample struct {
	path  string
	kind  metricKind
	value float64
	timer timerStats
}

// collect reads every metric of the registry, timers included (sorting
// their windows in the registry's scratch), and gauges after releasing
// the lock, since their functions may take locks of their own.
func (m *Metrics) collect(out []sample) []sample {
	m.mu.Lock()
	gauges := make(map[string]func() float64, len(m.gauges)+len(m.cfuncs))
	for k, v := range m.gauges {
		gauges[k] = v
	}
	cfuncs := make(map[string]func() float64, len(m.cfuncs))
	for k, v := range m.cfuncs {
		cfuncs[k] = v
	}
	for k, c := range m.counters {
		out = append(out, sample{path: k, kind: kindCounter, value: float64(c.value())})
	}
	for k, t := range m.timers {
		var st timerStats
		st, m.scratch = t.stats(m.scratch)
		out = append(out, sample{path: k, kind: kindTimer, timer: st})
	}
	m.mu.Unlock()
	for k, f := range cfuncs {
		out = append(out, sample{path: k, kind: kindCounter, value: f()})
	}
	for k, f := range gauges {
		out = append(out, sample{path: k, kind: kindGauge, value: f()})
	}
	return out
}

// snapshotInto adds every metric to out in the flat form of
// /metrics/snapshot (a timer as "<name>_ms" and its statistics).
func (m *Metrics) snapshotInto(out map[string]float64) {
	for _, s := range m.collect(nil) {
		if s.kind == kindTimer {
			s.timer.snapshotInto(s.path+"_ms", out)
			continue
		}
		out[s.path] = s.value
	}
}

// Snapshot returns every metric of the instance, runtime and user ones, in
// the flat form /metrics/snapshot serves.
func (rt *Runtime) Snapshot() map[string]float64 {
	out := make(map[string]float64, 128)
	rt.sys.snapshotInto(out)
	rt.user.snapshotInto(out)
	return out
}

// runtimeMetric is one of the runtime's own metrics: its family (Path is
// its /metrics/snapshot name), whether it only grows, and how to read it.
type runtimeMetric struct {
	Family
	counter bool
	read    func(rt *Runtime) float64
}

// runtimeTable declares the runtime's own metrics, their names in both
// expositions and their help, in one place.
func runtimeTable() []runtimeMetric {
	count := func(path, help string, v func(m *runtimeMetrics) *atomic.Int64) runtimeMetric {
		return runtimeMetric{
			Family:  Family{Path: path, Name: promName(path), Help: help},
			counter: true,
			read:    func(rt *Runtime) float64 { return float64(v(rt.metrics).Load()) },
		}
	}
	gauge := func(path, help string, read func(rt *Runtime) float64) runtimeMetric {
		return runtimeMetric{Family: Family{Path: path, Name: promName(path), Help: help}, read: read}
	}
	atomicGauge := func(path, help string, v func(m *runtimeMetrics) *atomic.Int64) runtimeMetric {
		return gauge(path, help, func(rt *Runtime) float64 { return float64(v(rt.metrics).Load()) })
	}
	bytes := func(r runtimeMetric, name string) runtimeMetric {
		r.Name, r.Unit = name, UnitBytes
		return r
	}
	queued := gauge("libprocess/outbound_queued_total", "Messages queued for sending, over every outbound peer.",
		func(rt *Runtime) float64 { return float64(rt.outbound.queued()) })
	queued.Name = "libprocess_outbound_queued" // a gauge: no _total
	return []runtimeMetric{
		count("libprocess/messages_received", "Inbound remote messages delivered to a mailbox.", func(m *runtimeMetrics) *atomic.Int64 { return &m.messagesReceived }),
		count("libprocess/messages_sent", "Messages written to a socket or a local mailbox.", func(m *runtimeMetrics) *atomic.Int64 { return &m.messagesSent }),
		count("libprocess/messages_dropped", "Messages lost: no receiver, full mailbox or queue, broken connection.", func(m *runtimeMetrics) *atomic.Int64 { return &m.messagesDropped }),
		count("libprocess/messages_handled", "Messages taken from mailboxes by their processes.", func(m *runtimeMetrics) *atomic.Int64 { return &m.messagesHandled }),
		count("libprocess/messages_bad_sender", "Inbound messages whose sender UPID did not parse.", func(m *runtimeMetrics) *atomic.Int64 { return &m.messagesBadFrom }),
		count("libprocess/http_requests", "HTTP requests handed to routes.", func(m *runtimeMetrics) *atomic.Int64 { return &m.httpRequests }),
		atomicGauge("libprocess/connections_inbound", "Open inbound connections.", func(m *runtimeMetrics) *atomic.Int64 { return &m.connsInbound }),
		atomicGauge("libprocess/connections_outbound", "Open outbound connections.", func(m *runtimeMetrics) *atomic.Int64 { return &m.connsOutbound }),
		count("libprocess/connect_failures", "Failed dials to peers.", func(m *runtimeMetrics) *atomic.Int64 { return &m.connectFailures }),
		count("libprocess/connection_errors", "Inbound connections closed on a protocol error.", func(m *runtimeMetrics) *atomic.Int64 { return &m.connErrors }),
		queued,
		gauge("libprocess/outbound_peers", "Peers with an outbound connection or queue.", func(rt *Runtime) float64 { return float64(rt.outbound.count()) }),
		gauge("libprocess/mailbox_capacity", "Messages a process' mailbox holds (MailboxCapacity).", func(rt *Runtime) float64 { return float64(rt.cfg.MailboxCapacity) }),
		gauge("libprocess/outbound_queue_capacity", "Messages an outbound peer's queue holds (OutboundQueueCapacity).", func(rt *Runtime) float64 { return float64(rt.cfg.OutboundQueueCapacity) }),

		// Inbound limits.
		atomicGauge("libprocess/connections_inbound_max", "Effective limit of open inbound connections (MaxInboundConnections).", func(m *runtimeMetrics) *atomic.Int64 { return &m.maxConnsInbound }),
		count("libprocess/connections_refused", "Connections closed at accept because MaxInboundConnections was reached.", func(m *runtimeMetrics) *atomic.Int64 { return &m.connsRefused }),
		count("libprocess/connections_idle_closed", "Inbound connections closed by an idle timeout.", func(m *runtimeMetrics) *atomic.Int64 { return &m.idleClosed }),
		count("libprocess/request_read_timeouts", "Requests whose head or body missed its read deadline.", func(m *runtimeMetrics) *atomic.Int64 { return &m.requestTimeouts }),
		count("libprocess/tls_handshake_failures", "Inbound TLS handshakes that failed or timed out.", func(m *runtimeMetrics) *atomic.Int64 { return &m.tlsFailures }),
		bytes(atomicGauge("libprocess/inbound_body_bytes", "Request body bytes held against InboundBodyBudget.", func(m *runtimeMetrics) *atomic.Int64 { return &m.bodyBytes }), "libprocess_inbound_body"),
		bytes(gauge("libprocess/inbound_body_budget", "Request body bytes all inbound connections may hold at once (InboundBodyBudget).", func(rt *Runtime) float64 { return float64(effectiveBodyBudget(&rt.cfg)) }), "libprocess_inbound_body_budget"),
		count("libprocess/inbound_body_budget_waits", "Request body reads that waited for budget.", func(m *runtimeMetrics) *atomic.Int64 { return &m.bodyBudgetWaits }),
		count("libprocess/inbound_body_budget_rejected", "Requests answered 503 for want of body budget.", func(m *runtimeMetrics) *atomic.Int64 { return &m.bodyBudgetRefused }),
		count("libprocess/route_timeouts", "HTTP requests answered 504 (or streams ended) at their route deadline.", func(m *runtimeMetrics) *atomic.Int64 { return &m.routeTimeouts }),

		// Outbound limits, failure containment and firewall.
		count("libprocess/handler_panics", "Panics recovered in handlers, routes and dispatched functions.", func(m *runtimeMetrics) *atomic.Int64 { return &m.handlerPanics }),
		count("libprocess/sends_invalid", "Sends refused because an id, name or host cannot be written in a request head.", func(m *runtimeMetrics) *atomic.Int64 { return &m.sendsInvalid }),
		gauge("libprocess/outbound_peer_limit", "Outbound peers allowed at once (MaxOutboundPeers).", func(rt *Runtime) float64 { return float64(rt.cfg.MaxOutboundPeers) }),
		count("libprocess/outbound_peers_evicted", "Idle outbound peers closed to make room under MaxOutboundPeers.", func(m *runtimeMetrics) *atomic.Int64 { return &m.peersEvicted }),
		count("libprocess/outbound_peer_limit_rejections", "Sends and links refused because MaxOutboundPeers peers were busy.", func(m *runtimeMetrics) *atomic.Int64 { return &m.peerLimitRejections }),
		count("libprocess/outbound_idle_closed", "Outbound connections closed after OutboundIdleTimeout.", func(m *runtimeMetrics) *atomic.Int64 { return &m.outIdleClosed }),
		gauge("libprocess/outbound_dials_in_progress", "Dials to peers in progress.", func(rt *Runtime) float64 { return float64(len(rt.outbound.dialSlots)) }),
		gauge("libprocess/outbound_dials_waiting", "Dials waiting for a MaxConcurrentDials slot.", func(rt *Runtime) float64 { return float64(rt.outbound.dialWaiting.Load()) }),
		count("libprocess/outbound_dial_waits", "Dials that waited for a MaxConcurrentDials slot.", func(m *runtimeMetrics) *atomic.Int64 { return &m.dialWaits }),
		count("libprocess/firewall_denied", "Requests and messages refused 403 by DisabledEndpoints.", func(m *runtimeMetrics) *atomic.Int64 { return &m.firewallDenied }),
		count("libprocess/messages_refused_http_only", "Messages refused 403 on an HTTP-only listener.", func(m *runtimeMetrics) *atomic.Int64 { return &m.messagesHTTPOnly }),
		bytes(atomicGauge("libprocess/outbound_queued_bytes", "Bytes of messages queued to outbound peers, counted against OutboundQueueBytes and OutboundQueueBudget.", func(m *runtimeMetrics) *atomic.Int64 { return &m.outQueuedBytes }), "libprocess_outbound_queued"),
		bytes(gauge("libprocess/outbound_queue_bytes_limit", "Bytes one outbound peer's queue may hold (OutboundQueueBytes).", func(rt *Runtime) float64 { return float64(effectiveQueueBytes(&rt.cfg)) }), "libprocess_outbound_queue_limit"),
		bytes(gauge("libprocess/outbound_queue_budget", "Bytes all outbound queues together may hold (OutboundQueueBudget).", func(rt *Runtime) float64 { return float64(effectiveQueueBudget(&rt.cfg)) }), "libprocess_outbound_queue_budget"),
		count("libprocess/outbound_queue_bytes_rejected", "Sends refused because their peer's queue held OutboundQueueBytes.", func(m *runtimeMetrics) *atomic.Int64 { return &m.outPeerBytesFull }),
		count("libprocess/outbound_queue_budget_rejected", "Sends refused because all queues together held OutboundQueueBudget.", func(m *runtimeMetrics) *atomic.Int64 { return &m.outBudgetFull }),
		count("libprocess/outbound_requeued", "Messages sent again on a new connection after a write failed before the peer could have read them.", func(m *runtimeMetrics) *atomic.Int64 { return &m.requeued }),

		gauge("libprocess/processes", "Processes running on this instance.", func(rt *Runtime) float64 {
			return float64(len(*rt.processes.Load()))
		}),
	}
}

// newSystemMetrics returns the registry of the runtime's own metrics.
func (rt *Runtime) newSystemMetrics() *Metrics {
	m := newMetrics()
	table := runtimeTable()
	fams := make([]Family, 0, len(table)+1)
	for _, r := range table {
		read := r.read
		f := func() float64 { return read(rt) }
		if r.counter {
			m.counterFunc(r.Path, f)
		} else {
			m.Gauge(r.Path, f)
		}
		fams = append(fams, r.Family)
	}
	// The per-process gauges libprocess/mailbox_depth/<id>, registered
	// at Spawn.
	fams = append(fams, Family{
		Path: "libprocess/mailbox_depth/{process}",
		Name: "libprocess_mailbox_depth",
		Help: "Messages waiting in a process' mailbox.",
	})
	if err := m.Describe(fams...); err != nil {
		panic(err) // the table is constant; a test checks it
	}
	return m
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
