package pkgpanda

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procpanda/procpanda/internal/runtimetest"
)

// TestRoutesOutliveTheRuntimeDefaultDeadline: the runtime answers 504 to a
// route that has not answered by its deadline; pkgpanda's routes set their
// own, sized from their subprocess timeouts, so a CLI run longer than the
// runtime's default still answers.
func TestRoutesOutliveTheRuntimeDefaultDeadline(t *testing.T) {
	e := newEnv(t, envOpt{delay: 600 * time.Millisecond, routeTimeout: 200 * time.Millisecond})
	for _, path := range []string{"/repository/", "/list.json", "/active/"} {
		if r := e.do(http.MethodGet, path, nil); r.status != http.StatusOK {
			t.Errorf("GET %s with a 600ms CLI run and a 200ms runtime default: %v", path, r)
		}
	}
	if r := e.do(http.MethodPut, "/active/", []byte(`["mesos--0.22.0","mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8"]`), "Content-Type", "application/json"); r.status != http.StatusNoContent {
		t.Errorf("PUT /active/ with 600ms CLI runs and a 200ms runtime default: %v", r)
	}
}

// TestRouteDeadlineCoversRunsAndLock: every route's deadline covers two
// runs of its slowest actor, their kill grace and the repository lock.
func TestRouteDeadlineCoversRunsAndLock(t *testing.T) {
	c := Config{Limits: map[string]RouteLimits{routeFetch: {Timeout: time.Hour}}, KillGrace: time.Second, LockTimeout: 10 * time.Second}
	if got, min := c.routeDeadline(routeRepository), 2*(time.Hour+time.Second)+10*time.Second; got < min {
		t.Errorf("repository deadline %v < %v", got, min)
	}
	if got, min := c.routeDeadline(routeListJSON), 2*(defaultTimeout+time.Second)+10*time.Second; got < min || got >= time.Hour {
		t.Errorf("list.json deadline %v: want at least %v and not the fetch route's hour", got, min)
	}
}

// TestQueuedMutationOfAResetClientNeverStarts: a mutation still queued when
// its client resets the connection is dropped when its turn comes; one
// queued behind it runs.
func TestQueuedMutationOfAResetClientNeverStarts(t *testing.T) {
	var logs runtimetest.LogBuffer
	e := newEnv(t, envOpt{delay: 3 * time.Second, log: &logs})
	var wg sync.WaitGroup
	var first, last reply
	e.async(&wg, &first, "POST", "/swap?id=mesos--0.23.0", nil)
	waitFor(t, "the first swap to run", func() bool { return e.runsStarted("swap") == 1 })
	conn, err := net.Dial("tcp", e.rt.Addr().HostPort())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /pkgpanda/swap?id=mesos--0.22.0 HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n", e.rt.Addr().HostPort())
	waitFor(t, "the second swap to queue", func() bool { return e.metric("pkgpanda/swap/queue_depth") == 1 })
	_ = conn.(*net.TCPConn).SetLinger(0) // a reset: the request's context is cancelled
	conn.Close()
	e.async(&wg, &last, "POST", "/swap?id=mesos--0.22.0", nil)
	wg.Wait()
	if first.status != http.StatusNoContent || last.status != http.StatusNoContent {
		t.Fatalf("first swap %v, last swap %v; want 204 each", first, last)
	}
	if n := e.runsStarted("swap"); n != 2 {
		t.Fatalf("%d swap runs, want 2: the reset client's queued swap must not run", n)
	}
	if !strings.Contains(logs.String(), "queued mutation dropped before it began") {
		t.Fatalf("no log line for the dropped mutation:\n%s", logs.String())
	}
}
