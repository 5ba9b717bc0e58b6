package pkgpanda

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestPrometheusFamilies: every pkgpanda metric appears in
// /metrics/prometheus in a family metricFamilies declares, with labels
// for the route and the exit status, and the exposition passes
// Prometheus' parser and linter.
func TestPrometheusFamilies(t *testing.T) {
	e := newEnv(t, envOpt{})
	for _, path := range []string{"/repository/", "/active/"} {
		if r := e.do("GET", path, nil); r.status != 200 {
			t.Fatalf("GET %s: %s", path, r)
		}
	}
	resp, err := e.client.Get(strings.TrimSuffix(e.base, "/pkgpanda") + "/metrics/prometheus")
	if err != nil {
		t.Fatalf("GET /metrics/prometheus: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics/prometheus: %d %v", resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Prometheus' parser rejects the exposition: %v", err)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("linting: %v", err)
	}
	for _, pr := range problems {
		t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
	}
	for name, f := range fams {
		if strings.HasPrefix(name, "pkgpanda_") && strings.HasPrefix(f.GetHelp(), "Metric pkgpanda/") {
			t.Errorf("%s has no declared family (help %q)", name, f.GetHelp())
		}
	}
	exits := fams["pkgpanda_route_exits_total"]
	found := false
	for _, m := range exits.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["route"] == routeActive && labels["status"] == "0" && m.GetCounter().GetValue() >= 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("no pkgpanda_route_exits_total{route=%q,status=\"0\"} >= 1 in %v", routeActive, exits)
	}
	var timed uint64
	for _, m := range fams["pkgpanda_route_duration_seconds"].GetMetric() {
		timed += m.GetSummary().GetSampleCount()
	}
	if timed < 2 {
		t.Errorf("pkgpanda_route_duration_seconds counts %d jobs, want the 2 reads", timed)
	}
}
