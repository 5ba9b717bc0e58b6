package libprocess

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// prometheusContentType is the Prometheus text exposition format.
const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

// isRuntimeCounter reports whether a libprocess/ metric only ever grows;
// the others are gauges.
func isRuntimeCounter(name string) bool {
	switch strings.TrimPrefix(name, "libprocess/") {
	case "messages_received", "messages_sent", "messages_dropped", "messages_handled",
		"messages_bad_sender", "http_requests", "connect_failures", "connection_errors",
		"connections_refused", "connections_idle_closed", "request_read_timeouts",
		"tls_handshake_failures", "inbound_body_budget_waits", "inbound_body_budget_rejected",
		"route_timeouts", "handler_panics", "sends_invalid", "outbound_peers_evicted",
		"outbound_peer_limit_rejections", "outbound_idle_closed", "outbound_dial_waits",
		"firewall_denied", "messages_refused_http_only", "outbound_queue_bytes_rejected",
		"outbound_queue_budget_rejected", "outbound_requeued":
		return true
	}
	return false
}

// counterNames returns the names of the registry's counters.
func (m *Metrics) counterNames() map[string]struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]struct{}, len(m.counters))
	for k := range m.counters {
		out[k] = struct{}{}
	}
	return out
}

// promName turns a metric path into a Prometheus metric name: every
// character outside [a-zA-Z0-9_:] becomes '_', and a leading digit gets
// a '_' before it ("pkgpanda/activate/duration_ms/p99" becomes
// "pkgpanda_activate_duration_ms_p99").
func promName(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 1)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
			b.WriteByte(c)
		case c >= '0' && c <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// promValue formats a sample value as the exposition format wants it.
func promValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// prometheus renders every metric of the instance (those of Snapshot) in
// the Prometheus text exposition format 0.0.4: one "# TYPE" line and one
// sample per metric, names sanitised by promName and sorted. Counters
// (the runtime's growing counts and every Metrics.Counter) are typed
// counter, everything else (gauges, timer values and statistics) gauge.
// When two paths sanitise to the same name, the first in path order is
// kept and the other left out.
func (rt *Runtime) prometheus() []byte {
	snap := rt.Snapshot()
	counters := rt.user.counterNames()
	var b []byte
	seen := make(map[string]struct{}, len(snap))
	for _, k := range sortedKeys(snap) {
		name := promName(k)
		if _, dup := seen[name]; dup {
			continue
		}
		seen[name] = struct{}{}
		kind := "gauge"
		if _, ok := counters[k]; ok || isRuntimeCounter(k) {
			kind = "counter"
		}
		b = append(b, "# TYPE "...)
		b = append(b, name...)
		b = append(b, ' ')
		b = append(b, kind...)
		b = append(b, '\n')
		b = append(b, name...)
		b = append(b, ' ')
		b = append(b, promValue(snap[k])...)
		b = append(b, '\n')
	}
	return b
}

// servePrometheus returns the /metrics/prometheus handler, rate limited
// as /metrics/snapshot is (MetricsSnapshotRateLimit, counted apart).
func (rt *Runtime) servePrometheus() RouteHandler {
	var last time.Time
	interval := time.Duration(0)
	if r := rt.cfg.MetricsSnapshotRateLimit; r > 0 {
		interval = time.Duration(float64(time.Second) / r)
	}
	return func(req *Request, respond Responder) {
		if interval > 0 {
			now := time.Now()
			if now.Sub(last) < interval {
				respond(TextResponse(http.StatusTooManyRequests, "Too many requests"))
				return
			}
			last = now
		}
		respond(Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {prometheusContentType}}, Body: rt.prometheus()})
	}
}
