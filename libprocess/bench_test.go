package libprocess

import (
	"context"
	"net"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/mesos/mesos-go/api/v0/messenger"
	"github.com/mesos/mesos-go/api/v0/messenger/testmessage"
	"github.com/mesos/mesos-go/api/v0/upid"
	"github.com/valyala/fasthttp"
)

// window bounds messages in flight in throughput runs, so a fast sender
// measures the transport rather than overflowing the at-most-once queues.
const window = 16384

// windowFor is the window for messages of size body bytes: at most half
// of the default OutboundQueueBytes in flight (a message costs its body
// and about 100 bytes of head), in whole steps of 1024 messages, so a
// receiver that lags the whole window does not fail the sender's Send.
func windowFor(size int) int {
	w := int(DefaultConfig().OutboundQueueBytes) / 2 / (size + 100)
	return max(1024, min(window, w/1024*1024))
}

// counter counts deliveries and lets a sender wait for them.
type counter struct {
	n    atomic.Int64
	mu   sync.Mutex
	cond *sync.Cond
}

func newCounter() *counter {
	c := &counter{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *counter) inc() {
	if v := c.n.Add(1); v%1024 == 0 {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// waitFor blocks until at least target deliveries, or the deadline.
func (c *counter) waitFor(target int64, deadline time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n.Load() < target {
		if time.Now().After(deadline) {
			return false
		}
		// Woken every 1024 deliveries; a timer covers the tail.
		t := time.AfterFunc(5*time.Millisecond, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
		c.cond.Wait()
		t.Stop()
	}
	return true
}

// procpandaThroughput sends n messages of size bytes between two runtimes
// over one connection and returns messages per second.
func procpandaThroughput(tb testing.TB, n, size int, mutate ...func(*Config)) float64 {
	a := startRuntime(tb, mutate...)
	b := startRuntime(tb, mutate...)
	cnt := newCounter()
	sink := NewProcess("sink")
	sink.Install("bench", func(m *Message) { cnt.inc() })
	if _, err := b.Spawn(sink); err != nil {
		tb.Fatal(err)
	}
	src := NewProcess("source")
	if _, err := a.Spawn(src); err != nil {
		tb.Fatal(err)
	}
	body := make([]byte, size)
	win := windowFor(size)
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	for i := 0; i < n; i++ {
		if i >= win && i%1024 == 0 {
			cnt.waitFor(int64(i-win), deadline)
		}
		var bb []byte
		if size > 0 {
			bb = body
		}
		if err := src.Send(sink.Self(), "bench", bb); err != nil {
			tb.Fatalf("send %d: %v", i, err)
		}
	}
	if !cnt.waitFor(int64(n), deadline) {
		tb.Fatalf("only %d of %d delivered", cnt.n.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds()
}

// mesosGoThroughput does the same between two mesos-go v0.0.11
// messengers.
func mesosGoThroughput(tb testing.TB, n, size int) float64 {
	cnt := newCounter()
	recv := messenger.NewHttpWithBindingAddress(upid.UPID{ID: "sink", Host: "127.0.0.1", Port: "0"}, net.ParseIP("127.0.0.1"))
	if err := recv.Install(func(*upid.UPID, proto.Message) { cnt.inc() }, &testmessage.SmallMessage{}); err != nil {
		tb.Fatal(err)
	}
	if err := recv.Start(); err != nil {
		tb.Fatal(err)
	}
	defer recv.Stop()
	send := messenger.NewHttpWithBindingAddress(upid.UPID{ID: "source", Host: "127.0.0.1", Port: "0"}, net.ParseIP("127.0.0.1"))
	if err := send.Start(); err != nil {
		tb.Fatal(err)
	}
	defer send.Stop()
	to := recv.UPID()
	msg := &testmessage.SmallMessage{}
	if size > 0 {
		msg.Values = []string{strings.Repeat("x", size-3)} // ~size bytes encoded
	}
	win := windowFor(size)
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	for i := 0; i < n; i++ {
		if i >= win && i%1024 == 0 {
			cnt.waitFor(int64(i-win), deadline)
		}
		if err := send.Send(context.Background(), &to, msg); err != nil {
			tb.Fatalf("mesos-go send %d: %v", i, err)
		}
	}
	if !cnt.waitFor(int64(n), deadline) {
		tb.Fatalf("mesos-go: only %d of %d delivered", cnt.n.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkMessageThroughput measures one-connection message throughput of
// procpanda and of mesos-go's messenger in the same run and reports the
// ratio (procpanda ÷ mesos-go).
func BenchmarkMessageThroughput(b *testing.B) {
	for _, size := range []int{0, 1024} {
		name := "0B"
		if size > 0 {
			name = "1KiB"
		}
		b.Run(name, func(b *testing.B) {
			var pp, mg float64
			for i := 0; i < b.N; i++ {
				pp = procpandaThroughput(b, 300000, size)
				mg = mesosGoThroughput(b, 10000, size)
			}
			b.ReportMetric(pp, "procpanda-msgs/s")
			b.ReportMetric(mg, "mesos-go-msgs/s")
			b.ReportMetric(pp/mg, "ratio")
		})
	}
}

// BenchmarkRouteThroughput measures small-response HTTP route throughput
// over keep-alive connections from several clients, for a procpanda route
// and, as the peer in the same run, a bare fasthttp server answering the
// same bytes (the floor procpanda's codec and routing add to). The
// "ratio" case serves all at once and alternates short rounds between
// them, so the load other programs put on the machine falls on each
// alike; it reports procpanda's throughput as a fraction of fasthttp's
// ("ratio"; "queued-ratio" with every request going through the
// process' goroutine instead of being served inline when the process is
// idle, see turn.go), and the heap allocations per request of each server
// (with its client, which allocates nothing per request).
func BenchmarkRouteThroughput(b *testing.B) {
	b.Run("procpanda", func(b *testing.B) {
		benchHTTP(b, startPingRoute(b, true), "/svc/ping")
	})
	b.Run("procpanda-queued", func(b *testing.B) {
		benchHTTP(b, startPingRoute(b, false), "/svc/ping")
	})
	b.Run("fasthttp", func(b *testing.B) {
		benchHTTP(b, startPingFasthttp(b), "/svc/ping")
	})
	b.Run("ratio", func(b *testing.B) {
		pp := &fasthttp.HostClient{Addr: startPingRoute(b, true), MaxConns: 8}
		pq := &fasthttp.HostClient{Addr: startPingRoute(b, false), MaxConns: 8}
		fh := &fasthttp.HostClient{Addr: startPingFasthttp(b), MaxConns: 8}
		const round = 400
		var ppCPU, fhCPU time.Duration
		var ppAllocs, fhAllocs uint64
		ratios := make([]float64, 0, b.N)
		queued := make([]float64, 0, b.N)
		for i := 0; i < b.N; i++ {
			// Alternate which goes first so a drift in load favours
			// neither.
			var ppWall, pqWall, fhWall, pc, fc time.Duration
			var pa, fa uint64
			if i%2 == 0 {
				ppWall, pc, pa = httpRound(b, pp, round)
				pqWall, _, _ = httpRound(b, pq, round)
				fhWall, fc, fa = httpRound(b, fh, round)
			} else {
				fhWall, fc, fa = httpRound(b, fh, round)
				pqWall, _, _ = httpRound(b, pq, round)
				ppWall, pc, pa = httpRound(b, pp, round)
			}
			ppCPU += pc
			fhCPU += fc
			ppAllocs += pa
			fhAllocs += fa
			ratios = append(ratios, float64(fhWall)/float64(ppWall))
			queued = append(queued, float64(fhWall)/float64(pqWall))
		}
		sort.Float64s(ratios)
		sort.Float64s(queued)
		b.ReportMetric(ratios[len(ratios)/2], "ratio")
		b.ReportMetric(queued[len(queued)/2], "queued-ratio")
		b.ReportMetric(float64(fhCPU)/float64(ppCPU), "cpu-ratio")
		b.ReportMetric(float64(ppAllocs)/float64(b.N*round), "procpanda-allocs/req")
		b.ReportMetric(float64(fhAllocs)/float64(b.N*round), "fasthttp-allocs/req")
	})
}

// startPingRoute starts a runtime whose process svc answers GET /svc/ping
// with "pong" and returns its address. With inline false every request
// goes through the process' goroutine.
func startPingRoute(b *testing.B, inline bool) string {
	rt := startRuntime(b)
	p := NewProcess("svc")
	p.Route("ping", Help{TLDR: "pong"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "pong"))
	})
	if _, err := rt.Spawn(p); err != nil {
		b.Fatal(err)
	}
	p.mbox.mu.Lock()
	p.mbox.queuedOnly = !inline
	p.mbox.mu.Unlock()
	return rt.Addr().HostPort()
}

// startPingFasthttp starts a bare fasthttp server answering every request
// with the same bytes as startPingRoute's route and returns its address.
func startPingFasthttp(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("pong")
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// httpRound sends n requests for /svc/ping through client from four
// goroutines and returns how long they took, in wall-clock time and in
// CPU time of this whole process (client and servers: the client's share
// is the same for every server), and how many heap allocations the
// process made meanwhile. The allocation count is read outside the timed
// part.
func httpRound(b *testing.B, client *fasthttp.HostClient, n int) (wall, cpu time.Duration, allocs uint64) {
	const workers = 4
	url := "http://" + client.Addr + "/svc/ping"
	var wg sync.WaitGroup
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs0 := ms.Mallocs
	cpu0 := processCPU(b)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			for i := 0; i < n/workers; i++ {
				if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Errorf("request to %s: %v %d", client.Addr, err, resp.StatusCode())
					return
				}
			}
		}()
	}
	wg.Wait()
	wall, cpu = time.Since(start), processCPU(b)-cpu0
	runtime.ReadMemStats(&ms)
	return wall, cpu, ms.Mallocs - mallocs0
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchHTTP(b *testing.B, addr, path string) {
	client := &fasthttp.HostClient{Addr: addr, MaxConns: 8}
	url := "http://" + addr + path
	b.SetParallelism(2)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		for pb.Next() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Errorf("request: %v %d", err, resp.StatusCode())
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
