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
	outQueuedBytes      atomic.Int64 // bytes of OutboundQueueBudget held (gauge)
	outPeerBytesFull    atomic.Int64 // sends refused: OutboundQueueBytes of their peer exhausted
	outBudgetFull       atomic.Int64 // sends refused: OutboundQueueBudget exhausted
	requeued            atomic.Int64 // messages written to no peer before a write failed, queued again once
	firewallDenied      atomic.Int64 // requests and messages refused 403 by DisabledEndpoints
	messagesHTTPOnly    atomic.Int64 // messages refused 403 on an HTTP-only listener (ServeHTTPOn)

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

// Metrics is a registry of named metrics shown by /metrics/snapshot. Names
// are paths such as "pkgpanda/runs/list". It is safe for concurrent use.
type Metrics struct {
	mu       sync.Mutex
	counters map[string]*Counter
	gauges   map[string]func() float64
	timers   map[string]*Timer
	scratch  []float64 // sorts a timer's window during snapshots; under mu
}

func newMetrics() *Metrics {
	return &Metrics{counters: make(map[string]*Counter), gauges: make(map[string]func() float64), timers: make(map[string]*Timer)}
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

// snapshotInto adds every metric to out.
func (m *Metrics) snapshotInto(out map[string]float64) {
	m.mu.Lock()
	gauges := make(map[string]func() float64, len(m.gauges))
	for k, v := range m.gauges {
		gauges[k] = v
	}
	for k, c := range m.counters {
		out[k] = float64(c.value())
	}
	for k, t := range m.timers {
		m.scratch = t.snapshotInto(k+"_ms", out, m.scratch)
	}
	m.mu.Unlock()
	for k, f := range gauges {
		out[k] = f()
	}
}

// Snapshot returns every metric of the instance, runtime and user ones, in
// the flat form /metrics/snapshot serves.
func (rt *Runtime) Snapshot() map[string]float64 {
	out := map[string]float64{
		"libprocess/messages_received":       float64(rt.metrics.messagesReceived.Load()),
		"libprocess/messages_sent":           float64(rt.metrics.messagesSent.Load()),
		"libprocess/messages_dropped":        float64(rt.metrics.messagesDropped.Load()),
		"libprocess/messages_handled":        float64(rt.metrics.messagesHandled.Load()),
		"libprocess/messages_bad_sender":     float64(rt.metrics.messagesBadFrom.Load()),
		"libprocess/http_requests":           float64(rt.metrics.httpRequests.Load()),
		"libprocess/connections_inbound":     float64(rt.metrics.connsInbound.Load()),
		"libprocess/connections_outbound":    float64(rt.metrics.connsOutbound.Load()),
		"libprocess/connect_failures":        float64(rt.metrics.connectFailures.Load()),
		"libprocess/connection_errors":       float64(rt.metrics.connErrors.Load()),
		"libprocess/outbound_queued_total":   float64(rt.outbound.queued()),
		"libprocess/outbound_peers":          float64(rt.outbound.count()),
		"libprocess/mailbox_capacity":        float64(rt.cfg.MailboxCapacity),
		"libprocess/outbound_queue_capacity": float64(rt.cfg.OutboundQueueCapacity),

		// Inbound limits.
		"libprocess/connections_inbound_max":      float64(rt.metrics.maxConnsInbound.Load()),
		"libprocess/connections_refused":          float64(rt.metrics.connsRefused.Load()),
		"libprocess/connections_idle_closed":      float64(rt.metrics.idleClosed.Load()),
		"libprocess/request_read_timeouts":        float64(rt.metrics.requestTimeouts.Load()),
		"libprocess/tls_handshake_failures":       float64(rt.metrics.tlsFailures.Load()),
		"libprocess/inbound_body_bytes":           float64(rt.metrics.bodyBytes.Load()),
		"libprocess/inbound_body_budget":          float64(effectiveBodyBudget(&rt.cfg)),
		"libprocess/inbound_body_budget_waits":    float64(rt.metrics.bodyBudgetWaits.Load()),
		"libprocess/inbound_body_budget_rejected": float64(rt.metrics.bodyBudgetRefused.Load()),
		"libprocess/route_timeouts":               float64(rt.metrics.routeTimeouts.Load()),
	}
	rt.outboundSnapshot(out)
	rt.mu.RLock()
	procs := make([]*Process, 0, len(rt.processes))
	for _, p := range rt.processes {
		procs = append(procs, p)
	}
	rt.mu.RUnlock()
	out["libprocess/processes"] = float64(len(procs))
	for _, p := range procs {
		out["libprocess/mailbox_depth/"+p.id] = float64(p.mbox.depth())
	}
	rt.user.snapshotInto(out)
	return out
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

// outboundSnapshot adds the outbound-limit, failure-containment and
// firewall metrics.
func (rt *Runtime) outboundSnapshot(out map[string]float64) {
	m := rt.metrics
	out["libprocess/handler_panics"] = float64(m.handlerPanics.Load())
	out["libprocess/sends_invalid"] = float64(m.sendsInvalid.Load())
	out["libprocess/outbound_peer_limit"] = float64(rt.cfg.MaxOutboundPeers)
	out["libprocess/outbound_peers_evicted"] = float64(m.peersEvicted.Load())
	out["libprocess/outbound_peer_limit_rejections"] = float64(m.peerLimitRejections.Load())
	out["libprocess/outbound_idle_closed"] = float64(m.outIdleClosed.Load())
	out["libprocess/outbound_dials_in_progress"] = float64(len(rt.outbound.dialSlots))
	out["libprocess/outbound_dials_waiting"] = float64(rt.outbound.dialWaiting.Load())
	out["libprocess/outbound_dial_waits"] = float64(m.dialWaits.Load())
	out["libprocess/outbound_queued_bytes"] = float64(m.outQueuedBytes.Load())
	out["libprocess/outbound_queue_bytes_limit"] = float64(effectiveQueueBytes(&rt.cfg))
	out["libprocess/outbound_queue_budget"] = float64(effectiveQueueBudget(&rt.cfg))
	out["libprocess/outbound_queue_bytes_rejected"] = float64(m.outPeerBytesFull.Load())
	out["libprocess/outbound_queue_budget_rejected"] = float64(m.outBudgetFull.Load())
	out["libprocess/outbound_requeued"] = float64(m.requeued.Load())
	out["libprocess/firewall_denied"] = float64(m.firewallDenied.Load())
	out["libprocess/messages_refused_http_only"] = float64(m.messagesHTTPOnly.Load())
}
