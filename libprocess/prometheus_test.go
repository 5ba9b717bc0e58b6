package libprocess

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseExposition parses body with Prometheus' own text parser and lints
// it as `promtool check metrics` does, failing on any error or problem.
func parseExposition(t testing.TB, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Prometheus' parser rejects the exposition: %v\n%s", err, body)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint cannot read the exposition: %v", err)
	}
	for _, pr := range problems {
		t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
	}
	return fams
}

// series finds the metric of family f whose labels are exactly want.
func series(t *testing.T, fams map[string]*dto.MetricFamily, f string, want map[string]string) *dto.Metric {
	t.Helper()
	mf := fams[f]
	if mf == nil {
		t.Fatalf("family %s missing", f)
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(want) {
			continue
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("family %s has no series %v", f, want)
	return nil
}

func TestPrometheusExposition(t *testing.T) {
	rt := startRuntime(t)
	m := rt.Metrics()
	if err := m.Describe(
		Family{Path: "svc/{route}/runs", Name: "svc_route_runs", Help: "Runs per route."},
		Family{Path: "svc/{route}/exit_status/{status}", Name: "svc_route_exits", Help: "Runs by exit status."},
		Family{Path: "svc/{route}/duration", Name: "svc_route_duration", Unit: UnitSeconds, Help: "Time per job."},
		Family{Path: "svc/held", Name: "svc_held", Unit: UnitBytes, Help: "Bytes held."},
	); err != nil {
		t.Fatal(err)
	}
	m.Counter("svc/list.json/runs").Add(3)
	m.Counter("svc/add/runs").Inc()
	m.Counter("svc/add/exit_status/0").Add(2)
	m.Counter("svc/add/exit_status/signal").Inc()
	m.Gauge("svc/held", func() float64 { return 4096 })
	m.Counter("svc/undeclared-thing").Add(5)
	m.Gauge("svc/colon:name", func() float64 { return 6 })
	tm := m.Timer("svc/list.json/duration")
	tm.Record(10 * time.Millisecond)
	tm.Record(30 * time.Millisecond)
	m.Timer("svc/add/duration") // never recorded

	c := dialRaw(t, rt)
	c.write("GET /metrics/prometheus HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read()
	if r.Status != 200 || r.Header.Get("Content-Type") != prometheusContentType {
		t.Fatalf("GET /metrics/prometheus: %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	fams := parseExposition(t, r.Body)

	if v := series(t, fams, "svc_route_runs_total", map[string]string{"route": "list.json"}).GetCounter().GetValue(); v != 3 {
		t.Errorf("runs of list.json = %v, want 3", v)
	}
	if v := series(t, fams, "svc_route_exits_total", map[string]string{"route": "add", "status": "signal"}).GetCounter().GetValue(); v != 1 {
		t.Errorf("signal exits of add = %v, want 1", v)
	}
	if v := series(t, fams, "svc_held_bytes", nil).GetGauge().GetValue(); v != 4096 {
		t.Errorf("svc_held_bytes = %v, want 4096", v)
	}
	if v := series(t, fams, "svc_undeclared_thing_total", nil).GetCounter().GetValue(); v != 5 {
		t.Errorf("undeclared counter = %v, want 5", v)
	}
	if v := series(t, fams, "svc_colon_name", nil).GetGauge().GetValue(); v != 6 {
		t.Errorf("undeclared gauge with a colon = %v, want 6", v)
	}
	sum := series(t, fams, "svc_route_duration_seconds", map[string]string{"route": "list.json"}).GetSummary()
	if sum.GetSampleCount() != 2 || math.Abs(sum.GetSampleSum()-0.04) > 1e-12 {
		t.Errorf("summary count %d sum %v, want 2 and 0.04", sum.GetSampleCount(), sum.GetSampleSum())
	}
	if q := sum.GetQuantile(); len(q) != numQuantiles || q[0].GetQuantile() != 0.5 || math.Abs(q[0].GetValue()-0.02) > 1e-12 {
		t.Errorf("quantiles %v, want p50 = 0.02 s first of %d", q, numQuantiles)
	}
	if empty := series(t, fams, "svc_route_duration_seconds", map[string]string{"route": "add"}).GetSummary(); empty.GetSampleCount() != 0 || len(empty.GetQuantile()) != 0 {
		t.Errorf("unrecorded timer: %v, want count 0 and no quantiles", empty)
	}
	if v := series(t, fams, "libprocess_mailbox_depth", map[string]string{"process": "metrics"}).GetGauge(); v == nil {
		t.Errorf("mailbox depth of metrics is no gauge")
	}
	if f := fams["libprocess_messages_received_total"]; f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("libprocess_messages_received_total: %v", f)
	}
	if f := fams["libprocess_outbound_queued"]; f.GetType() != dto.MetricType_GAUGE {
		t.Errorf("libprocess_outbound_queued: %v", f)
	}

	// Every runtime metric has a declared family; every metric of the
	// registries is shown exactly once.
	total := 0
	for name, f := range fams {
		total += len(f.GetMetric())
		if strings.HasPrefix(name, "libprocess_") && strings.HasPrefix(f.GetHelp(), "Metric libprocess/") {
			t.Errorf("runtime metric %s has no declared family", name)
		}
	}
	if want := len(rt.sys.collect(nil)) + len(rt.user.collect(nil)); total != want {
		t.Errorf("%d series shown, want one per metric: %d", total, want)
	}
	// Snapshot keeps Mesos' names.
	snap := rt.Snapshot()
	for _, k := range []string{"svc/list.json/runs", "svc/add/exit_status/signal", "svc/list.json/duration_ms/p50", "libprocess/outbound_queued_total", "libprocess/mailbox_depth/metrics"} {
		if _, ok := snap[k]; !ok {
			t.Errorf("snapshot lost %s", k)
		}
	}
}

func TestDescribeRejectsInvalidFamilies(t *testing.T) {
	ok := Family{Path: "a/{b}", Name: "a", Help: "h"}
	for _, f := range []Family{
		{Path: "a/{b}", Name: "9a", Help: "h"},
		{Path: "a/{b}", Name: "a-b", Help: "h"},
		{Path: "a/{b}", Name: "a_total", Help: "h"},
		{Path: "a/{b}", Name: "a_count", Help: "h"},
		{Path: "a/{b}", Name: "a", Help: " "},
		{Path: "a/{b}", Name: "a", Unit: "milliseconds", Help: "h"},
		{Path: "", Name: "a", Help: "h"},
		{Path: "a//b", Name: "a", Help: "h"},
		{Path: "a/{quantile}", Name: "a", Help: "h"},
		{Path: "a/{le}", Name: "a", Help: "h"},
		{Path: "a/{__x}", Name: "a", Help: "h"},
		{Path: "a/{b-c}", Name: "a", Help: "h"},
		{Path: "{b}/{b}", Name: "a", Help: "h"},
	} {
		m := newMetrics()
		if err := m.Describe(ok, f); err == nil {
			t.Errorf("Describe(%+v) accepted", f)
		}
		if len(m.familyPatterns()) != 0 {
			t.Errorf("Describe(%+v) failed but declared families", f)
		}
	}
	m := newMetrics()
	if err := m.Describe(ok, ok); err != nil {
		t.Fatal(err)
	}
	if n := len(m.familyPatterns()); n != 1 {
		t.Errorf("a family declared twice is held %d times", n)
	}
}

// TestFamilyConflicts: a sample its family cannot hold (another type, a
// label set taken) is still shown, under its path, and the exposition
// stays valid.
func TestFamilyConflicts(t *testing.T) {
	m := newMetrics()
	if err := m.Describe(
		Family{Path: "x/{k}/t", Name: "x_wait", Help: "a timer per k."},
		Family{Path: "x/{k}/g", Name: "x_wait", Unit: UnitSeconds, Help: "same name, a gauge."},
		Family{Path: "y/one", Name: "y", Help: "y."},
		Family{Path: "y/two", Name: "y", Help: "y again."},
		Family{Path: "z/{k}", Name: "z", Help: "z."},
		Family{Path: "z/special", Name: "z_special", Help: "the most literal segments win."},
	); err != nil {
		t.Fatal(err)
	}
	m.Timer("x/a/t").Record(time.Second)
	m.Gauge("x/a/g", func() float64 { return 7 })
	m.Gauge("y/one", func() float64 { return 1 })
	m.Gauge("y/two", func() float64 { return 2 })
	m.Gauge("z/special", func() float64 { return 3 })
	m.Gauge("z/odd\"value\\\n", func() float64 { return 4 })
	e := exposition{fams: map[string]*promFamily{}}
	e.add(m.collect(nil), m.familyPatterns())
	fams := parseExposition(t, e.write())
	if v := series(t, fams, "x_wait_seconds", map[string]string{"k": "a"}).GetGauge().GetValue(); v != 7 {
		t.Errorf("x_wait_seconds = %v, want the gauge's 7", v)
	}
	if n := series(t, fams, "x_a_t_seconds", nil).GetSummary().GetSampleCount(); n != 1 {
		t.Errorf("the timer under its path: count %d, want 1", n)
	}
	for name, want := range map[string]float64{"y_two": 2, "z_special": 3} {
		if v := series(t, fams, name, nil).GetGauge().GetValue(); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := series(t, fams, "y", nil).GetGauge().GetValue(); v != 1 {
		t.Errorf("y = %v, want y/one's 1", v)
	}
	if v := series(t, fams, "z", map[string]string{"k": "odd\"value\\\n"}).GetGauge().GetValue(); v != 4 {
		t.Errorf("escaped label value: %v", v)
	}
}

func TestRuntimeFamiliesCoverSnapshot(t *testing.T) {
	rt := startRuntime(t)
	pats := rt.sys.familyPatterns()
	for path := range rt.Snapshot() {
		segs := strings.Split(path, "/")
		n := 0
		for i := range pats {
			if _, ok := pats[i].match(segs); ok {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s matches %d runtime families, want 1", path, n)
		}
	}
}

// FuzzPrometheusExposition: whatever families are declared and whatever
// metric paths are registered, Prometheus' parser reads the exposition.
func FuzzPrometheusExposition(f *testing.F) {
	f.Add("svc/{route}/runs", "svc_route_runs", "Runs.", "svc/list.json/runs", "svc/x\"y/runs")
	f.Add("a/{b}", "a", "multi\nline \\ help", "a/\xff", "a/b/c")
	f.Add("9/x", "_", "h", "9/x", "")
	f.Fuzz(func(t *testing.T, path, name, help, metric1, metric2 string) {
		m := newMetrics()
		_ = m.Describe(Family{Path: path, Name: name, Help: help}, Family{Path: path + "/{t}", Name: name, Unit: UnitSeconds, Help: help})
		m.Counter(metric1).Inc()
		m.Gauge(metric2, func() float64 { return 1 })
		m.Timer(metric1 + "/t").Record(time.Millisecond)
		e := exposition{fams: map[string]*promFamily{}}
		e.add(m.collect(nil), m.familyPatterns())
		body := e.write()
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("Prometheus' parser rejects %q: %v", body, err)
		}
		n := 0
		for _, f := range fams {
			n += len(f.GetMetric())
		}
		if n > 3 || n < 1 {
			t.Fatalf("%d series for 3 metrics:\n%s", n, body)
		}
	})
}
