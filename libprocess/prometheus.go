package libprocess

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// prometheusContentType is the Prometheus text exposition format.
const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

// Unit is the base unit of a family's values; the family's name ends in
// it, as Prometheus' naming conventions ask.
type Unit string

// The units a Family may declare. Values must already be in the unit:
// a Timer, which records durations, is always exposed in seconds.
const (
	UnitNone    Unit = ""
	UnitSeconds Unit = "seconds"
	UnitBytes   Unit = "bytes"
)

// Family declares how the metrics whose /metrics/snapshot paths match
// Path appear in /metrics/prometheus: one family (one "# HELP" and one
// "# TYPE" line) with a label per variable segment of Path. The
// registration decides the type: a Counter is a counter (its name gets
// "_total"), a Gauge a gauge, a Timer a summary in seconds (quantiles
// 0.5 … 0.9999 over its window, "_sum" and "_count" over its life).
// /metrics/snapshot is not affected.
//
// For example, Family{Path: "pkgpanda/{route}/exit_status/{status}",
// Name: "pkgpanda_route_exits", Help: "…"} shows the counter
// "pkgpanda/active/exit_status/0" as
// pkgpanda_route_exits_total{route="active",status="0"}.
type Family struct {
	// Path is the metric path pattern: segments separated by '/', a
	// segment "{label}" matches any one segment and becomes the value of
	// that label. When several families match a path, the one with the
	// most literal segments wins, then the first declared.
	Path string
	// Name is the family name without the unit and "_total" suffixes
	// the exposition appends: [a-zA-Z_][a-zA-Z0-9_]*.
	Name string
	// Unit is the base unit of the values, appended to Name.
	Unit Unit
	// Help says what the metric counts or measures.
	Help string
}

// familyPattern is a Family checked and split for matching.
type familyPattern struct {
	Family
	segs     []string // each a literal, or a label name where isLabel
	isLabel  []bool
	literals int
}

// Describe declares how metrics of this registry appear in
// /metrics/prometheus (see Family); metrics no family matches appear
// under their path made a valid name, with a generic help text.
// Describe checks every family first and declares none when one is
// invalid; declaring a family again changes nothing.
func (m *Metrics) Describe(fams ...Family) error {
	pats := make([]familyPattern, 0, len(fams))
	for _, f := range fams {
		p, err := compileFamily(f)
		if err != nil {
			return err
		}
		pats = append(pats, p)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
next:
	for _, p := range pats {
		for _, q := range m.families {
			if q.Family == p.Family {
				continue next // declared already (a process started again)
			}
		}
		m.families = append(m.families, p)
	}
	return nil
}

// compileFamily checks f and splits its path.
func compileFamily(f Family) (familyPattern, error) {
	bad := func(format string, args ...any) (familyPattern, error) {
		return familyPattern{}, fmt.Errorf("describing metric family %q (path %q): %s", f.Name, f.Path, fmt.Sprintf(format, args...))
	}
	if !validPromName(f.Name) {
		return bad("name must match [a-zA-Z_][a-zA-Z0-9_]*")
	}
	for _, suffix := range []string{"_total", "_sum", "_count", "_bucket"} {
		if strings.HasSuffix(f.Name, suffix) {
			return bad("name must not end in %s (the exposition adds suffixes)", suffix)
		}
	}
	switch f.Unit {
	case UnitNone, UnitSeconds, UnitBytes:
	default:
		return bad("unknown unit %q", f.Unit)
	}
	if strings.TrimSpace(f.Help) == "" {
		return bad("help text is empty")
	}
	if f.Path == "" {
		return bad("path is empty")
	}
	p := familyPattern{Family: f}
	seen := map[string]bool{}
	for _, seg := range strings.Split(f.Path, "/") {
		if seg == "" {
			return bad("empty path segment")
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			label := seg[1 : len(seg)-1]
			switch {
			case !validPromName(label) || strings.HasPrefix(label, "__"):
				return bad("label %q must match [a-zA-Z_][a-zA-Z0-9_]* without a leading __", label)
			case label == "quantile" || label == "le":
				return bad("label %q is reserved for summaries and histograms", label)
			case seen[label]:
				return bad("label %q appears twice", label)
			}
			seen[label] = true
			p.segs, p.isLabel = append(p.segs, label), append(p.isLabel, true)
			continue
		}
		p.segs, p.isLabel = append(p.segs, seg), append(p.isLabel, false)
		p.literals++
	}
	return p, nil
}

// validPromName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]*.
func validPromName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// match reports whether path (split in segs) matches p, and the label
// values in p's order.
func (p *familyPattern) match(segs []string) ([]string, bool) {
	if len(segs) != len(p.segs) {
		return nil, false
	}
	var values []string
	for i, s := range segs {
		if p.isLabel[i] {
			if s == "" {
				return nil, false
			}
			values = append(values, s)
		} else if s != p.segs[i] {
			return nil, false
		}
	}
	return values, true
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

// promFamily is one family of an exposition being built.
type promFamily struct {
	name, help, typ string
	series          []promSeries
	labelSets       map[string]bool
}

// promSeries is one sample of a family with its rendered labels
// (`a="x",b="y"`, possibly empty).
type promSeries struct {
	labels string
	s      sample
}

// exposition builds the families of a Prometheus exposition from samples
// of registries, each matched against the families its registry
// declared.
type exposition struct {
	fams map[string]*promFamily
}

// add places the samples of one registry, in path order, by its
// families.
func (e *exposition) add(samples []sample, pats []familyPattern) {
	sort.Slice(samples, func(i, j int) bool { return samples[i].path < samples[j].path })
	for _, s := range samples {
		segs := strings.Split(s.path, "/")
		var best *familyPattern
		var values []string
		for i := range pats {
			if v, ok := pats[i].match(segs); ok && (best == nil || pats[i].literals > best.literals) {
				best, values = &pats[i], v
			}
		}
		if best != nil && e.place(best.Family, best.segs, best.isLabel, values, s) {
			continue
		}
		// No family, or its family holds another type or this label set
		// already: the path made a name, so the sample is still shown.
		// Colons are for recording rules, so they go too.
		undeclared := Family{Name: strings.ReplaceAll(promName(s.path), ":", "_"), Help: "Metric " + s.path + " of /metrics/snapshot."}
		e.place(undeclared, nil, nil, nil, s)
	}
}

// place adds s to family f (label names from segs where isLabel, label
// values in values); false when the family's type differs or the label
// set is taken.
func (e *exposition) place(f Family, segs []string, isLabel []bool, values []string, s sample) bool {
	name, typ := f.Name, "gauge"
	unit := f.Unit
	switch s.kind {
	case kindTimer:
		unit, typ = UnitSeconds, "summary"
	case kindCounter:
		typ = "counter"
	}
	if unit != UnitNone && !strings.HasSuffix(name, "_"+string(unit)) {
		name += "_" + string(unit)
	}
	if typ == "counter" && !strings.HasSuffix(name, "_total") {
		name += "_total"
	}
	var labels strings.Builder
	j := 0
	for i, l := range isLabel {
		if !l {
			continue
		}
		if labels.Len() > 0 {
			labels.WriteByte(',')
		}
		labels.WriteString(segs[i])
		labels.WriteString(`="`)
		labels.WriteString(escapeLabelValue(values[j]))
		labels.WriteByte('"')
		j++
	}
	pf := e.fams[name]
	if pf == nil {
		pf = &promFamily{name: name, help: f.Help, typ: typ, labelSets: map[string]bool{}}
		e.fams[name] = pf
	}
	if pf.typ != typ || pf.labelSets[labels.String()] {
		return false
	}
	pf.labelSets[labels.String()] = true
	pf.series = append(pf.series, promSeries{labels: labels.String(), s: s})
	return true
}

// escapeLabelValue escapes a label value for the text format
// (Prometheus wants UTF-8: other bytes become U+FFFD).
func escapeLabelValue(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// escapeHelp escapes a help text for the text format.
func escapeHelp(h string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(strings.ToValidUTF8(h, "\uFFFD"))
}

// write renders the exposition in the text format 0.0.4, families sorted
// by name.
func (e *exposition) write() []byte {
	names := sortedKeys(e.fams)
	var b []byte
	for _, name := range names {
		f := e.fams[name]
		b = append(b, "# HELP "+name+" "+escapeHelp(f.help)+"\n# TYPE "+name+" "+f.typ+"\n"...)
		for _, sr := range f.series {
			if f.typ != "summary" {
				b = appendSample(b, name, sr.labels, "", sr.s.value)
				continue
			}
			st := sr.s.timer
			if st.n > 0 {
				for i, q := range timerQuantiles() {
					b = appendSample(b, name, sr.labels, `quantile="`+strconv.FormatFloat(q.q, 'g', -1, 64)+`"`, st.quantiles[i]/1000)
				}
			}
			b = appendSample(b, name+"_sum", sr.labels, "", st.sum/1000)
			b = appendSample(b, name+"_count", sr.labels, "", float64(st.total))
		}
	}
	return b
}

// appendSample appends one sample line; extra is a further label.
func appendSample(b []byte, name, labels, extra string, v float64) []byte {
	b = append(b, name...)
	if labels != "" || extra != "" {
		b = append(b, '{')
		b = append(b, labels...)
		if labels != "" && extra != "" {
			b = append(b, ',')
		}
		b = append(b, extra...)
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = append(b, promValue(v)...)
	return append(b, '\n')
}

// familyPatterns returns the registry's declared families.
func (m *Metrics) familyPatterns() []familyPattern {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]familyPattern(nil), m.families...)
}

// prometheus renders every metric of the instance (those of Snapshot) in
// the Prometheus text exposition format 0.0.4, each registry's metrics
// grouped in the families it declared (Describe): "# HELP" and "# TYPE"
// on every family, counters with "_total", timers as summaries in
// seconds, path variables as labels.
func (rt *Runtime) prometheus() []byte {
	e := exposition{fams: map[string]*promFamily{}}
	e.add(rt.sys.collect(nil), rt.sys.familyPatterns())
	e.add(rt.user.collect(nil), rt.user.familyPatterns())
	return e.write()
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
