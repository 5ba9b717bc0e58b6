package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// simAgents serves the api/v1 ACTIVE call of n simulated pkgpanda
// processes, one listener per loopback address 127.1.x.y at the agents'
// port, each answer after latency; it records the most calls in flight.
type simAgents struct {
	inflight, maxInflight atomic.Int64
	calls                 atomic.Int64
}

func (s *simAgents) serve(w http.ResponseWriter, r *http.Request, latency time.Duration) {
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		m := s.maxInflight.Load()
		if n <= m || s.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	s.calls.Add(1)
	b, _ := io.ReadAll(r.Body)
	var call pb.PkgpandaCall
	if err := proto.Unmarshal(b, &call); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	time.Sleep(latency) // the agent's own work: no synchronisation here
	resp := &pb.PkgpandaResponse{Type: call.Type, RequestId: call.RequestId, Status: 200, PackageIds: baseline}
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", pb.MediaProtobuf)
	w.Write(out)
}

// BenchmarkStatus1000 runs `pkgpanda-fleet status --json` (the built
// binary) over 1,000 simulated agents on loopback, 10 of them with
// nothing listening and 5 that never answer, and reports the wall time,
// the tool's peak RSS and most open descriptors, and the most calls the
// agents saw in flight at once (bounded by --concurrency).
func BenchmarkStatus1000(b *testing.B) {
	b.Run("all-answer", func(b *testing.B) { benchStatus(b, 0, 0, 1) })
	b.Run("10-dead-5-silent", func(b *testing.B) { benchStatus(b, 10, 5, 2) })
}

// benchStatus runs the benchmark with dead agents (nothing listening) and
// slow ones (never answering), on the loopback block 127.<block>.x.y.
func benchStatus(b *testing.B, dead, slow, block int) {
	const n, concurrency, latency = 1000, 64, 10 * time.Millisecond
	simIP := func(i int) string { return fmt.Sprintf("127.%d.%d.%d", block, i/250, i%250+1) }
	sim := &simAgents{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sim.serve(w, r, latency) })}
	var agents []master.Response_GetAgents_Agent
	for i := range n {
		ip := simIP(i)
		agents = append(agents, mesosAgent("B"+strconv.Itoa(i), "sim-"+strconv.Itoa(i), ip))
		switch {
		case i%100 == 50 && i/100 < dead: // nothing listens
		case i%200 == 99 && i/200 < slow:
			blackhole(b, ip)
		default:
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(tcPort)))
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(l)
		}
	}
	b.Cleanup(func() { srv.Close() })
	fm := newFakeMaster(b)
	fm.setAgents(agents)
	args := append([]string{"status", "--json", "--timeout", "2s", "--concurrency", strconv.Itoa(concurrency)}, credFlags(b, fm)...)
	var maxRSS, maxFDs int64
	var wall time.Duration
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(filepath.Join(binDir, "pkgpanda-fleet"), args...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		stopSampling := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // sample the tool's open descriptors
			defer wg.Done()
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				if ents, err := os.ReadDir("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/fd"); err == nil {
					maxFDs = max(maxFDs, int64(len(ents)))
				}
				select {
				case <-stopSampling:
					return
				case <-tick.C:
				}
			}
		}()
		var r StatusReport
		derr := json.NewDecoder(out).Decode(&r)
		werr := cmd.Wait()
		wall += time.Since(start)
		close(stopSampling)
		wg.Wait()
		if derr != nil {
			b.Fatalf("status output: %v (%v)", derr, werr)
		}
		if r.Agents != n || r.Answered != n-dead-slow || len(r.Unreachable) != dead+slow {
			b.Fatalf("report: %d agents, %d answered, %d unreachable", r.Agents, r.Answered, len(r.Unreachable))
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			maxRSS = max(maxRSS, ru.Maxrss) // KiB on Linux
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "wall-ms/status")
	b.ReportMetric(float64(maxRSS)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(maxFDs), "max-open-fds")
	b.ReportMetric(float64(sim.maxInflight.Load()), "max-in-flight")
	if m := sim.maxInflight.Load(); m > concurrency {
		b.Errorf("%d calls in flight at once, more than --concurrency %d", m, concurrency)
	}
}
