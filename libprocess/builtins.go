package libprocess

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// helpRegistry holds every installed route's help, for the help process.
type helpRegistry struct {
	mu     sync.Mutex
	routes map[string]map[string]Help // process id → route name → help
}

func newHelpRegistry() *helpRegistry {
	return &helpRegistry{routes: make(map[string]map[string]Help)}
}

func (h *helpRegistry) add(p *Process, r *route) {
	help := r.help
	if help.Authentication == "" && r.effectiveRealm(p) != "" {
		help.Authentication = "This endpoint requires authentication iff HTTP authentication is enabled."
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.routes[p.id]
	if m == nil {
		m = make(map[string]Help)
		h.routes[p.id] = m
	}
	m[r.name] = help
}

// has reports whether process id has documented routes.
func (h *helpRegistry) has(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.routes[id]
	return ok
}

func (h *helpRegistry) remove(id string) {
	h.mu.Lock()
	delete(h.routes, id)
	h.mu.Unlock()
}

// snapshot copies the registry.
func (h *helpRegistry) snapshot() map[string]map[string]Help {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]map[string]Help, len(h.routes))
	for id, m := range h.routes {
		c := make(map[string]Help, len(m))
		for k, v := range m {
			c[k] = v
		}
		out[id] = c
	}
	return out
}

// Markdown renders the help as libprocess' HELP() does.
func (hp Help) markdown(id, name string) string {
	var b strings.Builder
	path := "/" + id
	if name != "" {
		path += "/" + name
	}
	usage := hp.Usage
	if usage == "" {
		usage = path
	}
	fmt.Fprintf(&b, "### TL;DR; ###\n%s\n\n", hp.TLDR)
	fmt.Fprintf(&b, "### USAGE ###\n    %s\n\n", usage)
	if hp.Description != "" {
		fmt.Fprintf(&b, "### DESCRIPTION ###\n%s\n\n", hp.Description)
	}
	if hp.Authentication != "" {
		fmt.Fprintf(&b, "### AUTHENTICATION ###\n%s\n\n", hp.Authentication)
	}
	if hp.Authorization != "" {
		fmt.Fprintf(&b, "### AUTHORIZATION ###\n%s\n\n", hp.Authorization)
	}
	return b.String()
}

// builtins returns the processes every instance serves (docs/libprocess-wire.md §6).
func (rt *Runtime) builtins() []*Process {
	help := NewProcess("help")
	help.Route("", Help{
		TLDR:        "Help for the processes and routes of this libprocess instance.",
		Usage:       "/help[/<id>[/<route>]][?format=json]",
		Description: "Lists every process with routes, the routes of one process, or one route's help. `format=json` returns the index as JSON.",
	}, rt.serveHelp)
	// /help/<id>[/<route>] reaches the help process' root route for every
	// id with documented routes, and only for those (docs/libprocess-wire.md §6.1, §4.3).
	help.routes[""].answers = rt.help.has

	metrics := NewProcess("metrics")
	metrics.SetRealm(rt.cfg.ReadonlyRealm)
	metrics.Route("snapshot", Help{
		TLDR:        "Snapshot of every metric of this instance.",
		Usage:       "/metrics/snapshot[?timeout=<duration>][&jsonp=<callback>]",
		Description: "A flat JSON object from metric path to number, including the runtime's own counters under `libprocess/`.",
	}, rt.serveMetrics())
	metrics.Route("prometheus", Help{
		TLDR:        "Every metric of this instance in the Prometheus text format.",
		Usage:       "/metrics/prometheus",
		Description: "The metrics of /metrics/snapshot in the Prometheus text exposition format 0.0.4, named as Prometheus expects: `# HELP` and `# TYPE` on every family, counters ending in `_total`, values in base units (`_seconds`, `_bytes`), what varies in a path (route, exit status, process) as labels, e.g. `pkgpanda_route_exits_total{route=\"active\",status=\"0\"}`, and timers as summaries in seconds (quantiles 0.5 to 0.9999 over the last 1000 values, `_sum` and `_count` over all). /metrics/snapshot keeps the Mesos names.",
	}, rt.servePrometheus())

	procs := NewProcess("__processes__")
	procs.Route("", Help{
		TLDR:        "The processes of this instance and their queued events.",
		Description: "A JSON array with one object per process: its id and the events in its mailbox.",
	}, rt.serveProcesses)
	return []*Process{help, metrics, procs}
}

func (rt *Runtime) serveHelp(req *Request, respond Responder) {
	all := rt.help.snapshot()
	if req.URL.Query().Get("format") == "json" {
		type endpoint struct {
			Name string `json:"name"`
			Text string `json:"text"`
		}
		type proc struct {
			ID        string     `json:"id"`
			Endpoints []endpoint `json:"endpoints"`
		}
		out := struct {
			Processes []proc `json:"processes"`
		}{Processes: []proc{}}
		for _, id := range sortedKeys(all) {
			p := proc{ID: id, Endpoints: []endpoint{}}
			for _, name := range sortedKeys(all[id]) {
				p.Endpoints = append(p.Endpoints, endpoint{Name: "/" + name, Text: all[id][name].markdown(id, name)})
			}
			out.Processes = append(out.Processes, p)
		}
		respond(JSONResponse(http.StatusOK, out))
		return
	}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(req.URL.Path, "/help"), "/"), "/")
	var md string
	switch {
	case len(segs) == 1 && segs[0] == "":
		var b strings.Builder
		b.WriteString("## HELP ##\n")
		for _, id := range sortedKeys(all) {
			fmt.Fprintf(&b, "> [/%s][%s]\n", id, id)
		}
		b.WriteString("\n")
		for _, id := range sortedKeys(all) {
			fmt.Fprintf(&b, "[%s]: /help/%s\n", id, id)
		}
		md = b.String()
	case len(segs) == 1:
		routes, ok := all[segs[0]]
		if !ok {
			respond(TextResponse(http.StatusBadRequest, "No help available for '/"+segs[0]+"'.\n"))
			return
		}
		var b strings.Builder
		fmt.Fprintf(&b, "## /%s ##\n", segs[0])
		for _, name := range sortedKeys(routes) {
			fmt.Fprintf(&b, "> [/%s/%s][%s] %s\n", segs[0], name, name, routes[name].TLDR)
		}
		b.WriteString("\n")
		for _, name := range sortedKeys(routes) {
			fmt.Fprintf(&b, "[%s]: /help/%s/%s\n", name, segs[0], name)
		}
		md = b.String()
	default:
		id, name := segs[0], strings.Join(segs[1:], "/")
		h, ok := all[id][name]
		if !ok {
			respond(TextResponse(http.StatusBadRequest, "No help available for '/"+id+"/"+name+"'.\n"))
			return
		}
		md = h.markdown(id, name)
	}
	ua := strings.ToLower(req.Header().Get("User-Agent"))
	if strings.HasPrefix(ua, "curl") || strings.HasPrefix(ua, "httpie") {
		respond(Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/x-markdown"}}, Body: []byte(md)})
		return
	}
	page := "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Help</title></head>\n<body><pre>" +
		html.EscapeString(md) + "</pre></body></html>\n"
	respond(Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, Body: []byte(page)})
}

// serveMetrics returns the /metrics/snapshot handler, rate limited when
// configured (LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT).
func (rt *Runtime) serveMetrics() RouteHandler {
	var last time.Time
	interval := time.Duration(0)
	if r := rt.cfg.MetricsSnapshotRateLimit; r > 0 {
		interval = time.Duration(float64(time.Second) / r)
	}
	return func(req *Request, respond Responder) {
		if t := req.URL.Query().Get("timeout"); t != "" {
			if _, err := parseDuration(t); err != nil {
				respond(TextResponse(http.StatusBadRequest, "Invalid timeout '"+t+"': "+err.Error()+".\n"))
				return
			}
		}
		if interval > 0 {
			now := time.Now()
			if now.Sub(last) < interval {
				respond(TextResponse(http.StatusTooManyRequests, "Too many requests"))
				return
			}
			last = now
		}
		// Every metric here is read from memory without waiting, so the
		// timeout can never cut collection short.
		respond(JSONPResponse(http.StatusOK, rt.Snapshot(), req.URL.Query().Get("jsonp")))
	}
}

// serveProcesses answers /__processes__ (docs/libprocess-wire.md §6.2), never wrapped in jsonp,
// as in C++.
func (rt *Runtime) serveProcesses(req *Request, respond Responder) {
	table := *rt.processes.Load()
	procs := make([]*Process, 0, len(table))
	for _, p := range table {
		procs = append(procs, p)
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].id < procs[j].id })
	type evJSON map[string]any
	out := make([]map[string]any, 0, len(procs))
	for _, p := range procs {
		events := []evJSON{}
		p.mbox.mu.Lock()
		for i := range p.mbox.pending {
			e := &p.mbox.pending[i]
			switch e.kind {
			case evMessage:
				events = append(events, evJSON{"type": "MESSAGE", "name": e.msg.Name})
			case evHTTP:
				events = append(events, evJSON{"type": "HTTP", "method": e.http.req.Method, "url": e.http.req.URL.String()})
			case evDispatch:
				events = append(events, evJSON{"type": "DISPATCH"})
			case evExited:
				events = append(events, evJSON{"type": "EXITED"})
			case evTerminate:
				events = append(events, evJSON{"type": "TERMINATE"})
			}
		}
		p.mbox.mu.Unlock()
		out = append(out, map[string]any{"id": p.id, "events": events})
	}
	b, _ := json.Marshal(out)
	respond(Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: b})
}
