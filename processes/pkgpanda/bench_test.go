package pkgpanda

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRouteOverhead measures GET /pkgpanda/repository/ (with
// Config.DisableCache, so that every request runs the CLI) over a
// keep-alive connection against running the same `pkgpanda list` command
// directly with os/exec, interleaved in the same run (the order rotating
// among the route over net/http, the direct run and the route over a
// minimal raw HTTP/1.1 client). It reports the p50 and p99 of both (ms)
// and the p50 and p99 overhead of the route; pair-diff-p50-ms and
// raw-pair-diff-p50/p99-ms are the p50 (p99) of the per-iteration
// difference, route minus direct, with net/http's client and with the
// raw one (whose time is the server's, without the hand-offs between
// net/http's transport goroutines). The stand-in is not slowed here, so
// that its run-to-run variation is small enough for a few hundred pairs
// to resolve tenths of a millisecond; after a run of a few ms the
// server's threads are as parked as after 300 ms.
//
// The child's own run time (~15 ms, varying by a few ms from run to run)
// dominates both, so the difference of the two p50s moves by a few tenths
// of a millisecond between runs. paired-overhead-p50/p99-ms removes it:
// for each pair it is the route's time minus its child's time (start to
// reap, from Config.onRun) minus the same for the plain exec (Start to
// Wait).
//
// http-idle-rtt-p50/p99-ms is the floor any HTTP endpoint pays here: the
// round trip of a request that runs nothing (GET /help/pkgpanda/list.json),
// sent right after a direct exec, so the server has been idle as long as a
// route waits for its child. On a virtual machine that parks idle vCPUs,
// the two socket wake-ups of that round trip alone cost several hundred
// microseconds; overhead-beyond-http-p50-ms is the paired overhead minus
// that floor, the part the route itself adds.
func BenchmarkRouteOverhead(b *testing.B) { benchRouteOverhead(b, 0, 1000) }

// BenchmarkRouteOverheadAfterIdle is BenchmarkRouteOverhead with every
// request and every direct run made after an idle gap of 50 ms, long
// enough for every thread of the process to park and its vCPUs to go idle
// (the VM's wake-up floor is then paid by the server and by the direct
// run's caller alike).
func BenchmarkRouteOverheadAfterIdle(b *testing.B) { benchRouteOverhead(b, 50*time.Millisecond, 150) }

// benchRouteOverhead makes rounds rounds whatever b.N is: the p50 of a
// few dozen pairs (what -benchtime 2s gives) moves by tenths of a
// millisecond from run to run.
func benchRouteOverhead(b *testing.B, gap time.Duration, rounds int) {
	pause := func() {
		if gap > 0 {
			time.Sleep(gap) // the workload's shape, not a synchronisation
		}
	}
	var child atomic.Int64 // the last route run's child time
	e := newEnv(b, envOpt{noTrace: true, noCache: true, onRun: func(ri runInfo) {
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
		pause()
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
		pause()
		total, ran := runDirect(b, &e.p.cfg, argv)
		return total, total - ran
	}
	idle := func() time.Duration {
		pause()
		start := time.Now()
		resp, err := client.Get("http://" + e.rt.Addr().HostPort() + "/help/pkgpanda/list.json")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	raw := newRawClient(b, e.rt.Addr().HostPort())
	viaRaw := func() time.Duration {
		pause()
		return raw.do(http.MethodGet, "/pkgpanda/repository/", nil, 200)
	}
	route() // warm up the connection and the page cache
	direct()
	idle()
	viaRaw()
	rawT := make([]time.Duration, 0, rounds)
	pairT := make([]time.Duration, 0, rounds)
	rawPairT := make([]time.Duration, 0, rounds)
	routeT := make([]time.Duration, 0, rounds)
	directT := make([]time.Duration, 0, rounds)
	pairedT := make([]time.Duration, 0, rounds)
	idleT := make([]time.Duration, 0, rounds)
	b.ResetTimer()
	for i := 0; i < rounds; i++ {
		var rt, rr, dt, dr, wt time.Duration
		switch i % 3 {
		case 0:
			rt, rr = route()
			dt, dr = direct()
			wt = viaRaw()
		case 1:
			dt, dr = direct()
			wt = viaRaw()
			rt, rr = route()
		default:
			wt = viaRaw()
			rt, rr = route()
			dt, dr = direct()
		}
		rawT = append(rawT, wt)
		pairT = append(pairT, rt-dt)
		rawPairT = append(rawPairT, wt-dt)
		routeT = append(routeT, rt)
		directT = append(directT, dt)
		pairedT = append(pairedT, rr-dr)
		direct() // leave the server idle as long as a child runs
		idleT = append(idleT, idle())
	}
	b.StopTimer()
	pct := quantileMs
	r50, r99 := pct(routeT, 0.50), pct(routeT, 0.99)
	d50, d99 := pct(directT, 0.50), pct(directT, 0.99)
	b.ReportMetric(r50, "route-p50-ms")
	b.ReportMetric(r99, "route-p99-ms")
	b.ReportMetric(d50, "exec-p50-ms")
	b.ReportMetric(d99, "exec-p99-ms")
	b.ReportMetric(r50-d50, "overhead-p50-ms")
	b.ReportMetric(r99-d99, "overhead-p99-ms")
	b.ReportMetric(pct(rawT, 0.50), "route-raw-p50-ms")
	b.ReportMetric(pct(rawT, 0.99), "route-raw-p99-ms")
	b.ReportMetric(pct(pairT, 0.50), "pair-diff-p50-ms")
	b.ReportMetric(pct(rawPairT, 0.50), "raw-pair-diff-p50-ms")
	b.ReportMetric(pct(rawPairT, 0.99), "raw-pair-diff-p99-ms")
	b.ReportMetric(pct(pairedT, 0.50), "paired-overhead-p50-ms")
	b.ReportMetric(pct(pairedT, 0.99), "paired-overhead-p99-ms")
	b.ReportMetric(pct(idleT, 0.50), "http-idle-rtt-p50-ms")
	b.ReportMetric(pct(idleT, 0.99), "http-idle-rtt-p99-ms")
	b.ReportMetric(pct(pairedT, 0.50)-pct(idleT, 0.50), "overhead-beyond-http-p50-ms")
}
