package pkgpanda

import (
	"io"
	"net/http"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// BenchmarkRouteOverhead measures GET /pkgpanda/repository/ over a
// keep-alive connection against running the same `pkgpanda list` command
// directly with os/exec, interleaved in the same run. It reports the p50
// and p99 of both (ms) and the p50 and p99 overhead of the route.
func BenchmarkRouteOverhead(b *testing.B) {
	e := newEnv(b, envOpt{noTrace: true})
	argv, err := e.p.cfg.Tool.List()
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	url := e.base + "/repository/"
	route := func() time.Duration {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	direct := func() time.Duration {
		start := time.Now()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = e.p.cfg.Env
		if _, err := cmd.Output(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	route() // warm up the connection and the page cache
	direct()
	routeT := make([]time.Duration, 0, b.N)
	directT := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			routeT = append(routeT, route())
			directT = append(directT, direct())
		} else {
			directT = append(directT, direct())
			routeT = append(routeT, route())
		}
	}
	b.StopTimer()
	pct := func(d []time.Duration, p float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		i := int(p * float64(len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	r50, r99 := pct(routeT, 0.50), pct(routeT, 0.99)
	d50, d99 := pct(directT, 0.50), pct(directT, 0.99)
	b.ReportMetric(r50, "route-p50-ms")
	b.ReportMetric(r99, "route-p99-ms")
	b.ReportMetric(d50, "exec-p50-ms")
	b.ReportMetric(d99, "exec-p99-ms")
	b.ReportMetric(r50-d50, "overhead-p50-ms")
	b.ReportMetric(r99-d99, "overhead-p99-ms")
}
