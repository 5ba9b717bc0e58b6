package pkgpanda

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procpanda/procpanda/internal/testfixture"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// cliCost is what one run of the real (Python) CLI costs here, mostly its
// start-up; the stand-in sleeps that long at every run.
const cliCost = 300 * time.Millisecond

// BenchmarkCacheReads measures, with the stand-in as slow as the real
// CLI, the reads that reuse list and active results and those that do not,
// and the wall time of DELETE /repository/<id> and PUT /active/ against
// the sum of their CLI runs. It runs once whatever b.N is (a single run
// takes seconds) and reports, in ms:
//
//   - <route>-reused-server-p50/p99: the operation inside the process
//     (no HTTP, no queue);
//   - <route>-reused-http-p50/p99: GET over a keep-alive connection;
//   - <route>-uncached-http-p50/p99: the same with Config.DisableCache;
//   - uncached-overhead-b2b/after-idle-p50/p99: what GET /repository/
//     adds to its child's run (start to reap) without reuse, requests
//     back to back and after an idle gap;
//   - delete-wall, delete-cli, put-active-wall, put-active-cli (medians):
//     the request's wall time and the sum of the runs it made;
//     delete-excess and put-active-excess, the difference; and the most
//     runs one request made.
func BenchmarkCacheReads(b *testing.B) {
	var runSum atomic.Int64
	var runs atomic.Int64
	onRun := func(ri RunInfo) {
		if ri.Result != nil {
			runSum.Add(int64(ri.Result.Duration))
			runs.Add(1)
		}
	}
	e := newEnv(b, envOpt{noTrace: true, cost: cliCost, onRun: onRun})
	var offChild atomic.Int64 // the last uncached run's child time
	off := newEnv(b, envOpt{noTrace: true, cost: cliCost, noCache: true, onRun: func(ri RunInfo) {
		if ri.Result != nil {
			offChild.Store(int64(ri.Result.Duration))
		}
	}})
	repo, active := fixtureIDs(b, e.fixture)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	get := func(base, path string) time.Duration {
		start := time.Now()
		resp, err := client.Get(base + path)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return d
	}
	ms := func(d []time.Duration, p float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[int(p*float64(len(s)-1))]) / float64(time.Millisecond)
	}
	report := func(name string, d []time.Duration) {
		b.ReportMetric(ms(d, 0.50), name+"-p50-ms")
		b.ReportMetric(ms(d, 0.99), name+"-p99-ms")
	}
	id, err := cli.ParseID(repo[0])
	if err != nil {
		b.Fatal(err)
	}
	routes := []struct {
		name, path string
		server     func(ctx context.Context) *PkgpandaResponse
	}{
		{"repository", "/repository/", func(ctx context.Context) *PkgpandaResponse {
			return e.p.perform(ctx, e.p.actors[RouteRepository], &opArgs{op: opRepoList})
		}},
		{"active", "/active/", func(ctx context.Context) *PkgpandaResponse {
			return e.p.perform(ctx, e.p.actors[RouteActive], &opArgs{op: opActiveList})
		}},
		{"repository-id", "/repository/" + repo[0], func(ctx context.Context) *PkgpandaResponse {
			return e.p.perform(ctx, e.p.actors[RouteRepository], &opArgs{op: opRepoGet, ids: []cli.ID{id}})
		}},
	}
	e.settle()
	b.ResetTimer()
	ctx := context.Background()
	for _, r := range routes {
		get(e.base, r.path) // fill, and open the connection
		server := make([]time.Duration, 0, 2000)
		for i := 0; i < cap(server); i++ {
			start := time.Now()
			resp := r.server(ctx)
			server = append(server, time.Since(start))
			if resp.Status != 200 {
				b.Fatalf("%s inside the server: %v", r.name, resp)
			}
		}
		report(r.name+"-reused-server", server)
		overHTTP := make([]time.Duration, 0, 300)
		for i := 0; i < cap(overHTTP); i++ {
			overHTTP = append(overHTTP, get(e.base, r.path))
		}
		report(r.name+"-reused-http", overHTTP)
	}
	before := runs.Load()
	for _, r := range routes {
		get(off.base, r.path)
		uncached := make([]time.Duration, 0, 8)
		for i := 0; i < cap(uncached); i++ {
			uncached = append(uncached, get(off.base, r.path))
		}
		report(r.name+"-uncached-http", uncached)
	}
	if runs.Load() != before {
		b.Fatal("the uncached process' runs were counted as the cached one's")
	}
	// What a route adds to a run it cannot reuse: its time minus its
	// child's (start to reap), requests back to back, then each after an
	// idle gap as long as a run (the server's threads park meanwhile).
	overhead := func(gap time.Duration) []time.Duration {
		d := make([]time.Duration, 0, 10)
		for i := 0; i < cap(d); i++ {
			if gap > 0 {
				time.Sleep(gap) // the workload's shape, not a synchronisation
			}
			total := get(off.base, "/repository/")
			d = append(d, total-time.Duration(offChild.Load()))
		}
		return d
	}
	report("uncached-overhead-b2b", overhead(0))
	report("uncached-overhead-after-idle", overhead(cliCost))

	// measure times one request that must succeed with 204, after the
	// reads its pre-checks need have been made.
	measure := func(method, path string, body []byte) (wall, cli time.Duration, n int64) {
		e.settle()
		get(e.base, "/repository/")
		get(e.base, "/active/")
		runSum.Store(0)
		runs.Store(0)
		req, err := http.NewRequest(method, e.base+path, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		wall = time.Since(start)
		if resp.StatusCode != 204 {
			b.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
		return wall, time.Duration(runSum.Load()), runs.Load()
	}
	const victim = "mesos--0.23.0"
	src := filepath.Join(e.fixture, "packages", victim)
	dst := filepath.Join(e.dir, "packages", victim)
	var delWall, delCLI, putWall, putCLI []time.Duration
	var delRuns, putRuns int64
	for i := 0; i < 5; i++ {
		w, c, n := measure("DELETE", "/repository/"+victim, nil)
		delWall, delCLI, delRuns = append(delWall, w), append(delCLI, c), max(delRuns, n)
		if err := testfixture.Copy(src, dst); err != nil {
			b.Fatalf("restoring %s: %v", victim, err)
		}
		body, _ := json.Marshal(active)
		w, c, n = measure("PUT", "/active/", body)
		putWall, putCLI, putRuns = append(putWall, w), append(putCLI, c), max(putRuns, n)
	}
	b.StopTimer()
	b.ReportMetric(ms(delWall, 0.5), "delete-wall-ms")
	b.ReportMetric(ms(delCLI, 0.5), "delete-cli-ms")
	b.ReportMetric(ms(delWall, 0.5)-ms(delCLI, 0.5), "delete-excess-ms")
	b.ReportMetric(ms(putWall, 0.5), "put-active-wall-ms")
	b.ReportMetric(ms(putCLI, 0.5), "put-active-cli-ms")
	b.ReportMetric(ms(putWall, 0.5)-ms(putCLI, 0.5), "put-active-excess-ms")
	b.ReportMetric(float64(delRuns), "delete-max-runs")
	b.ReportMetric(float64(putRuns), "put-active-max-runs")
}
