package pkgpanda

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procpanda/procpanda/internal/testfixture"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// cliCost is what one run of the real (Python) CLI costs here, mostly its
// start-up; the stand-in sleeps that long at every run.
const cliCost = 300 * time.Millisecond

// BenchmarkCacheReads measures, with the stand-in as slow as the real
// CLI, the reads that reuse list and active results and those that do not,
// and the wall time of DELETE /repository/<id> and PUT /active/ against
// their CLI runs. It runs once whatever b.N is (a single run takes a
// couple of minutes) and reports, in ms:
//
//   - <route>-reused-server-p50/p99: the operation inside the process
//     (no HTTP, no queue);
//   - <route>-reused-http-p50/p99: GET over a keep-alive connection
//     (net/http client);
//   - <route>-uncached-http-p50/p99: the same with Config.DisableCache;
//   - uncached-<gap>-*: GET /repository/ without reuse against running the
//     same `pkgpanda list` (same binary, argv, environment and directory)
//     directly with os/exec, interleaved in triples (direct, raw client,
//     net/http client, the order rotating) so that all see the same
//     machine load; <gap> is b2b (requests back to back) or idle (each
//     after an idle gap as long as a run, which adds the VM's wake-up
//     floor). -direct and -http are the wall times (p50/p99);
//     -overhead is the p50/p99 of the per-triple difference (raw
//     keep-alive client minus direct), -overhead-nethttp the same with
//     Go's net/http client (whose own goroutine hand-offs it includes),
//     and -overhead-sans-child the difference once each side's child time
//     (fork to reap) is taken out, which removes the child's own
//     run-to-run variation (tens of ms on a loaded machine) but hides any
//     difference in spawning (BenchmarkEngineVsExec in subprocess
//     measures that); -overhead-sans-cli-work takes out instead the
//     CLI's work between the trace lines it writes after its start-up
//     and before its exit, so that spawning, start-up (including the
//     slow-down), exit and reaping stay in, with their variation; -floor is the round trip of a reused read (no
//     CLI run) after the server idled as long as a run (or the gap),
//     the part of the overhead any HTTP server pays here for waking up
//     to take the request and waking its client with the answer, and
//     -overhead-beyond-floor the p50 of -overhead-sans-child minus the
//     floor's;
//   - delete-* and put-active-*: DELETE /repository/<id> and PUT /active/
//     (raw keep-alive client, after the reads their pre-checks reuse)
//     against one direct run of the same `pkgpanda remove` / `pkgpanda
//     activate`, in interleaved pairs: -wall and -direct (p50/p99), -cli
//     (p50 of the sum of the request's own runs), -excess (p50/p99/max of
//     the per-pair wall minus direct), -excess-sans-child (the same minus
//     each side's child time), and -max-runs, the most runs one request
//     made.
func BenchmarkCacheReads(b *testing.B) {
	var runSum atomic.Int64
	var runs atomic.Int64
	onRun := func(ri runInfo) {
		if ri.Result != nil {
			runSum.Add(int64(ri.Result.Duration))
			runs.Add(1)
		}
	}
	e := newEnv(b, envOpt{noTrace: true, cost: cliCost, onRun: onRun})
	var offChild atomic.Int64 // the last uncached run's child time
	// off's children trace their start and end (after their start-up,
	// before their exit): direct runs use the same environment.
	off := newEnv(b, envOpt{cost: cliCost, noCache: true, onRun: func(ri runInfo) {
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
	ms := quantileMs
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
		server     func(ctx context.Context) *pb.PkgpandaResponse
	}{
		{"repository", "/repository/", func(ctx context.Context) *pb.PkgpandaResponse {
			return e.p.perform(ctx, e.p.actors[routeRepository], &opArgs{op: opRepoList})
		}},
		{"active", "/active/", func(ctx context.Context) *pb.PkgpandaResponse {
			return e.p.perform(ctx, e.p.actors[routeActive], &opArgs{op: opActiveList})
		}},
		{"repository-id", "/repository/" + repo[0], func(ctx context.Context) *pb.PkgpandaResponse {
			return e.p.perform(ctx, e.p.actors[routeRepository], &opArgs{op: opRepoGet, ids: []cli.ID{id}})
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
	// What a read adds to a run it cannot reuse, against the same run
	// made directly.
	argv, err := off.p.cfg.Tool.List()
	if err != nil {
		b.Fatal(err)
	}
	raw := newRawClient(b, off.rt.Addr().HostPort())
	floorClient := newRawClient(b, e.rt.Addr().HostPort())
	for _, mode := range []struct {
		name string
		gap  time.Duration
	}{{"b2b", 0}, {"idle", cliCost}} {
		var direct, viaRaw, dRaw, dNet, dSans, dSansCLI, floor []time.Duration
		for i := 0; i < 24; i++ {
			var dw, dc, rw, rc, nw, ds, rs time.Duration
			for k := 0; k < 3; k++ {
				if mode.gap > 0 {
					time.Sleep(mode.gap) // the workload's shape, not a synchronisation
				}
				switch (i + k) % 3 {
				case 0:
					dw, dc = runDirect(b, &off.p.cfg, argv)
					ds = off.cliSpan()
				case 1:
					offChild.Store(0)
					rw = raw.do(http.MethodGet, "/pkgpanda/repository/", nil, 200)
					rc = time.Duration(offChild.Load())
					rs = off.cliSpan()
				case 2:
					nw = get(off.base, "/repository/")
				}
			}
			direct, viaRaw = append(direct, dw), append(viaRaw, rw)
			dRaw, dNet = append(dRaw, rw-dw), append(dNet, nw-dw)
			dSans = append(dSans, (rw-rc)-(dw-dc))
			dSansCLI = append(dSansCLI, (rw-rs)-(dw-ds))
			// The floor: a reused read (no CLI run) after the server
			// idled as long as a run, or after the gap.
			if mode.gap > 0 {
				time.Sleep(mode.gap)
			} else {
				runDirect(b, &off.p.cfg, argv)
			}
			floor = append(floor, floorClient.do(http.MethodGet, "/pkgpanda/repository/", nil, 200))
		}
		pre := "uncached-" + mode.name
		report(pre+"-direct", direct)
		report(pre+"-http", viaRaw)
		report(pre+"-overhead", dRaw)
		b.ReportMetric(ms(dNet, 0.50), pre+"-overhead-nethttp-p50-ms")
		report(pre+"-overhead-sans-child", dSans)
		report(pre+"-overhead-sans-cli-work", dSansCLI)
		report(pre+"-floor", floor)
		b.ReportMetric(ms(dSans, 0.50)-ms(floor, 0.50), pre+"-overhead-beyond-floor-p50-ms")
	}

	// measure times one request that must succeed with 204, after the
	// reads its pre-checks need have been made.
	eraw := newRawClient(b, e.rt.Addr().HostPort())
	measure := func(method, path string, body []byte) (wall, cli time.Duration, n int64) {
		e.settle()
		get(e.base, "/repository/")
		get(e.base, "/active/")
		runSum.Store(0)
		runs.Store(0)
		wall = eraw.do(method, "/pkgpanda"+path, body, 204)
		return wall, time.Duration(runSum.Load()), runs.Load()
	}
	const victim = "mesos--0.23.0"
	victimID, err := cli.ParseID(victim)
	if err != nil {
		b.Fatal(err)
	}
	activeIDs, err := parseIDs(active)
	if err != nil {
		b.Fatal(err)
	}
	removeArgv, err := e.p.cfg.Tool.Remove(victimID)
	if err != nil {
		b.Fatal(err)
	}
	activateArgv, err := e.p.cfg.Tool.Activate(activeIDs...)
	if err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(e.fixture, "packages", victim)
	dst := filepath.Join(e.dir, "packages", victim)
	restore := func() {
		if err := testfixture.Copy(src, dst); err != nil {
			b.Fatalf("restoring %s: %v", victim, err)
		}
	}
	body, _ := json.Marshal(active)
	type pair struct{ wall, cli, direct, excess, sans []time.Duration }
	var del, put pair
	var delRuns, putRuns int64
	add := func(p *pair, w, c, dw, dc time.Duration) {
		p.wall, p.cli, p.direct = append(p.wall, w), append(p.cli, c), append(p.direct, dw)
		p.excess, p.sans = append(p.excess, w-dw), append(p.sans, (w-c)-(dw-dc))
	}
	for i := 0; i < 8; i++ {
		var w, c, dw, dc time.Duration
		var n int64
		for k := 0; k < 2; k++ {
			if (i+k)%2 == 0 {
				w, c, n = measure("DELETE", "/repository/"+victim, nil)
				delRuns = max(delRuns, n)
			} else {
				dw, dc = runDirect(b, &e.p.cfg, removeArgv)
			}
			restore()
		}
		add(&del, w, c, dw, dc)
		for k := 0; k < 2; k++ {
			if (i+k)%2 == 0 {
				w, c, n = measure("PUT", "/active/", body)
				putRuns = max(putRuns, n)
			} else {
				dw, dc = runDirect(b, &e.p.cfg, activateArgv)
			}
		}
		add(&put, w, c, dw, dc)
	}
	b.StopTimer()
	for _, x := range []struct {
		name string
		p    *pair
		runs int64
	}{{"delete", &del, delRuns}, {"put-active", &put, putRuns}} {
		report(x.name+"-wall", x.p.wall)
		report(x.name+"-direct", x.p.direct)
		b.ReportMetric(ms(x.p.cli, 0.5), x.name+"-cli-p50-ms")
		report(x.name+"-excess", x.p.excess)
		b.ReportMetric(ms(x.p.excess, 1), x.name+"-excess-max-ms")
		report(x.name+"-excess-sans-child", x.p.sans)
		b.ReportMetric(ms(x.p.sans, 1), x.name+"-excess-sans-child-max-ms")
		b.ReportMetric(float64(x.runs), x.name+"-max-runs")
	}
}

// quantileMs returns the q quantile (0..1, nearest rank below) of d, in
// milliseconds.
func quantileMs(d []time.Duration, q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))]) / float64(time.Millisecond)
}

// cliSpan returns the time between the trace lines of the last run of
// e's stand-in (its work after start-up, before its exit), and empties
// the trace.
func (e *env) cliSpan() time.Duration {
	e.t.Helper()
	spans := e.readTrace()
	if len(spans) == 0 {
		e.t.Fatal("the stand-in traced no run")
	}
	last := spans[len(spans)-1]
	if err := os.Truncate(e.trace, 0); err != nil {
		e.t.Fatal(err)
	}
	return time.Duration(last.end - last.start)
}

// runDirect runs argv as a caller without pkgpandad would, with os/exec,
// in cfg's environment and directory, and returns its wall time and its
// child's time (Start to Wait).
func runDirect(b *testing.B, cfg *Config, argv []string) (wall, child time.Duration) {
	b.Helper()
	start := time.Now()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = cfg.Env, cfg.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	run := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%q: %v: %s", argv, err, stderr.Bytes())
	}
	child = time.Since(run)
	return time.Since(start), child
}

// rawClient is a minimal HTTP/1.1 client on one keep-alive connection: it
// writes each request with one write and reads the answer on the calling
// goroutine, so what it times is the server's, not the hand-offs between
// the goroutines of net/http's transport.
type rawClient struct {
	tb   testing.TB
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
}

func newRawClient(tb testing.TB, addr string) *rawClient {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &rawClient{tb: tb, conn: conn, br: bufio.NewReader(conn)}
}

// do sends one request (a JSON body if body is non-nil), reads the whole
// answer, checks its status and returns the time taken.
func (c *rawClient) do(method, path string, body []byte, status int) time.Duration {
	c.tb.Helper()
	c.buf = append(c.buf[:0], method+" "+path+" HTTP/1.1\r\nHost: bench\r\n"...)
	if body != nil {
		c.buf = append(c.buf, "Content-Type: application/json\r\nContent-Length: "...)
		c.buf = strconv.AppendInt(c.buf, int64(len(body)), 10)
		c.buf = append(c.buf, "\r\n"...)
	}
	c.buf = append(c.buf, "\r\n"...)
	c.buf = append(c.buf, body...)
	start := time.Now()
	if _, err := c.conn.Write(c.buf); err != nil {
		c.tb.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.tb.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		c.tb.Fatal(err)
	}
	if resp.StatusCode != status {
		c.tb.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, got)
	}
	return d
}
