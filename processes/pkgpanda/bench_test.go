package pkgpanda

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRouteOverhead measures GET /pkgpanda/repository/ (with
// Config.DisableCache, so that every request runs the CLI) over a
// keep-alive connection against running the same `pkgpanda list` command
// directly with os/exec, interleaved in the same run. It reports the p50
// and p99 of both (ms) and the p50 and p99 overhead of the route.
//
// The child's own run time (~15 ms, varying by a few ms from run to run)
// dominates both, so the difference of the two p50s moves by a few tenths
// of a millisecond between runs. paired-overhead-p50/p99-ms removes it:
// for each pair it is the route's time minus its child's time (start to
// reap, from Config.OnRun) minus the same for the plain exec (Start to
// Wait).
//
// http-idle-rtt-p50/p99-ms is the floor any HTTP endpoint pays here: the
// round trip of a request that runs nothing (GET /help/pkgpanda/list.json),
// sent right after a direct exec, so the server has been idle as long as a
// route waits for its child. On a virtual machine that parks idle vCPUs,
// the two socket wake-ups of that round trip alone cost several hundred
// microseconds; overhead-beyond-http-p50-ms is the paired overhead minus
// that floor, the part the route itself adds.
func BenchmarkRouteOverhead(b *testing.B) {
	var child atomic.Int64 // the last route run's child time
	e := newEnv(b, envOpt{noTrace: true, noCache: true, onRun: func(ri RunInfo) {
		if ri.Result != nil {
			child.Store(int64(ri.Result.Duration))
		}
	}})
	argv, err := e.p.cfg.Tool.List()
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	url := e.base + "/repository/"
	route := func() (total, rest time.Duration) {
		child.Store(0)
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
		total = time.Since(start)
		return total, total - time.Duration(child.Load())
	}
	direct := func() (total, rest time.Duration) {
		start := time.Now()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = e.p.cfg.Env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		run := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		ran := time.Since(run)
		total = time.Since(start)
		return total, total - ran
	}
	idle := func() time.Duration {
		start := time.Now()
		resp, err := client.Get("http://" + e.rt.Addr().HostPort() + "/help/pkgpanda/list.json")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	route() // warm up the connection and the page cache
	direct()
	idle()
	routeT := make([]time.Duration, 0, b.N)
	directT := make([]time.Duration, 0, b.N)
	pairedT := make([]time.Duration, 0, b.N)
	idleT := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var rt, rr, dt, dr time.Duration
		if i%2 == 0 {
			rt, rr = route()
			dt, dr = direct()
		} else {
			dt, dr = direct()
			rt, rr = route()
		}
		routeT = append(routeT, rt)
		directT = append(directT, dt)
		pairedT = append(pairedT, rr-dr)
		direct() // leave the server idle as long as a child runs
		idleT = append(idleT, idle())
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
	b.ReportMetric(pct(pairedT, 0.50), "paired-overhead-p50-ms")
	b.ReportMetric(pct(pairedT, 0.99), "paired-overhead-p99-ms")
	b.ReportMetric(pct(idleT, 0.50), "http-idle-rtt-p50-ms")
	b.ReportMetric(pct(idleT, 0.99), "http-idle-rtt-p99-ms")
	b.ReportMetric(pct(pairedT, 0.50)-pct(idleT, 0.50), "overhead-beyond-http-p50-ms")
}
