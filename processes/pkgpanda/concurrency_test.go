package pkgpanda

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procpanda/procpanda/processes/pkgpanda/subprocess"
)

func overlaps(a, b span) bool { return a.start < b.end && b.start < a.end }

func TestRouteSerializesItsRuns(t *testing.T) {
	// Reuse off: every request must run the CLI for runs to be counted.
	e := newEnv(t, envOpt{delay: 150 * time.Millisecond, noCache: true})
	repo, _ := fixtureIDs(t, e.fixture)
	const n = 4
	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range replies {
		e.async(&wg, &replies[i], "GET", "/list.json", nil)
	}
	wg.Wait()
	for i, r := range replies {
		expectJSON(t, fmt.Sprintf("request %d", i), r, 200, jsonList(repo))
	}
	spans := e.readTrace()
	if len(spans) != n {
		t.Fatalf("trace has %d runs, want %d: %+v", len(spans), n, spans)
	}
	for i := range spans {
		for j := i + 1; j < len(spans); j++ {
			if overlaps(spans[i], spans[j]) {
				t.Fatalf("runs of one route overlap: %+v and %+v", spans[i], spans[j])
			}
		}
	}
}

func TestReadsOfDifferentRoutesOverlap(t *testing.T) {
	// The readers/writer discipline lets read-only routes run side by
	// side: with children that would run for an hour, both must be running
	// at once. The clients then hang up, which cancels both reads.
	e := newEnv(t, envOpt{delay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, path := range []string{"/list.json", "/active.json"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.base+path, nil)
			if resp, err := e.client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	// No signal crosses the process boundary: poll the trace file.
	deadline := time.Now().Add(60 * time.Second)
	for {
		spans := e.readTrace()
		running := 0
		for _, s := range spans {
			if s.end == 0 {
				running++
			}
		}
		if running == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("two reads never ran at once: %+v", spans)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
}

func TestMutationsExcludeEverything(t *testing.T) {
	e := newEnv(t, envOpt{delay: 100 * time.Millisecond})
	_, active := fixtureIDs(t, e.fixture)
	var wg sync.WaitGroup
	replies := map[string]*reply{}
	req := func(name, method, path string, body []byte) {
		r := &reply{}
		replies[name] = r
		e.async(&wg, r, method, path, body)
	}
	req("swap", "POST", "/swap?id=mesos--0.23.0", nil)
	req("activate", "POST", "/activate?"+url.Values{"id": active}.Encode(), nil)
	req("remove", "POST", "/remove?id=absent--1", nil)
	req("delete", "DELETE", "/repository/absent--1", nil)
	req("put", "PUT", "/active/", []byte(`["absent--1"]`))
	req("add", "POST", "/add?id=newpkg--1", tarball(t))
	for i := 0; i < 3; i++ {
		req(fmt.Sprintf("list%d", i), "GET", "/list.json", nil)
		req(fmt.Sprintf("active%d", i), "GET", "/active.json", nil)
		req(fmt.Sprintf("repo%d", i), "GET", "/repository/", nil)
	}
	wg.Wait()
	for name, r := range replies {
		if r.status <= 0 || r.status >= 500 {
			t.Errorf("%s: %s", name, r)
		}
	}
	mutating := map[string]bool{"add": true, "fetch": true, "remove": true, "activate": true, "swap": true}
	spans := e.readTrace()
	nMut := 0
	for i, s := range spans {
		if s.end == 0 {
			t.Fatalf("run still going after every reply: %+v", s)
		}
		if !mutating[s.sub] {
			continue
		}
		nMut++
		for j, o := range spans {
			if i != j && overlaps(s, o) {
				t.Fatalf("mutation %+v overlaps %+v", s, o)
			}
		}
	}
	if nMut < 4 {
		t.Fatalf("only %d mutating runs in the trace: %+v", nMut, spans)
	}
}

func TestFullQueueAnswers503(t *testing.T) {
	const limit = 2
	e := newEnv(t, envOpt{delay: time.Hour, limits: map[string]RouteLimits{RouteListJSON: {QueueLimit: limit}}})
	var wg sync.WaitGroup
	replies := make([]reply, limit+1)
	e.async(&wg, &replies[0], "GET", "/list.json", nil)
	waitFor(t, "the first run to start", func() bool { return e.runsStarted("list") == 1 })
	for i := 1; i <= limit; i++ {
		e.async(&wg, &replies[i], "GET", "/list.json", nil)
	}
	waitFor(t, "the queue to fill", func() bool { return e.p.queueLen(RouteListJSON) == limit })
	r := e.do("GET", "/list.json", nil)
	expectStatus(t, "request beyond the queue", r, 503)
	if r.header.Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %v", r.header)
	}
	if got := e.rt.Snapshot()["pkgpanda/list.json/queue_full"]; got != 1 {
		t.Errorf("queue_full metric %v, want 1", got)
	}
	// Other routes are not affected by this route's queue.
	if e.p.queueLen(RouteActiveJSON) != 0 {
		t.Fatal("active.json has a queue")
	}
	// Draining answers the queued requests 503 and cancels the running read.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := e.p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, r := range replies {
		expectStatus(t, fmt.Sprintf("request %d after drain", i), r, 503)
	}
	if got := e.runsStarted("list"); got != 1 {
		t.Fatalf("%d list runs started, want 1", got)
	}
}

func TestBadIDsNeverReachTheTool(t *testing.T) {
	e := newEnv(t, envOpt{})
	bad := []string{"--root=/", "-x--1", "a;b--1", "a b--1", "../x--1", "x--../1", "x--1;rm", "mesos--0.22.0 --root=/", "--help", "x---1", "x--1--2", "", "x--", "--1", "x--1\n", "ab--1/../c"}
	for _, id := range bad {
		q := url.QueryEscape(id)
		p := url.PathEscape(id)
		body, _ := json.Marshal([]string{id})
		call, _ := json.Marshal(map[string]any{"type": "GET_PACKAGE", "package_ids": []string{id}})
		for _, c := range []struct {
			method, path string
			body         []byte
			header       []string
			want         []int
		}{
			{"GET", "/repository/" + p, nil, nil, []int{404}},
			{"DELETE", "/repository/" + p, nil, nil, []int{404}},
			{"POST", "/repository/" + p, []byte(`{"repository_url":"file:///tmp/"}`), nil, []int{400, 404}},
			{"GET", "/active/" + p, nil, nil, []int{404}},
			{"PUT", "/active/", body, nil, []int{400}},
			{"POST", "/swap?id=" + q, nil, nil, []int{400}},
			{"POST", "/remove?id=" + q, nil, nil, []int{400}},
			{"POST", "/activate?id=" + q, nil, nil, []int{400}},
			{"POST", "/fetch?repository_url=file:///tmp/&id=" + q, nil, nil, []int{400}},
			{"POST", "/add?id=" + q, []byte("x"), nil, []int{400}},
			{"POST", "/api/v1", call, []string{"Content-Type", MediaJSON}, []int{404}},
		} {
			if id == "" && strings.HasSuffix(c.path, "/") && c.method != "PUT" {
				continue // the collection itself
			}
			r := e.do(c.method, c.path, c.body, c.header...)
			okStatus := false
			for _, w := range c.want {
				okStatus = okStatus || r.status == w
			}
			if !okStatus {
				t.Errorf("%s %s (id %q): %s, want one of %v", c.method, c.path, id, r, c.want)
			}
		}
	}
	if spans := e.readTrace(); len(spans) != 0 {
		t.Fatalf("a bad id reached the tool: %+v", spans)
	}
	if _, err := os.Stat(e.trace); !os.IsNotExist(err) {
		t.Fatalf("the trace file exists: %v", err)
	}
}

func TestClientDisconnectCancelsRead(t *testing.T) {
	runs := make(chan RunInfo, 8)
	e := newEnv(t, envOpt{delay: time.Hour, onRun: func(ri RunInfo) { runs <- ri }})
	conn, err := net.Dial("tcp", e.rt.Addr().HostPort())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /pkgpanda/list.json HTTP/1.1\r\nHost: %s\r\n\r\n", e.rt.Addr().HostPort())
	waitFor(t, "the run to start", func() bool { return e.runsStarted("list") == 1 })
	// Gone means reset: a client that only shut down its sending side
	// still waits for its answer (libprocess TestHTTPHalfClosedClientGetsAnswer).
	_ = conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	select {
	case ri := <-runs:
		if ri.Result == nil || ri.Result.Killed != subprocess.KilledCanceled {
			t.Fatalf("run ended without being cancelled: %+v", ri)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the read-only run was not cancelled after the client reset the connection")
	}
	if s := e.readTrace(); len(s) != 1 || s[0].end != 0 {
		t.Fatalf("trace: %+v, want one run that never ended", s)
	}
}

func TestClientDisconnectDoesNotCancelMutation(t *testing.T) {
	runs := make(chan RunInfo, 8)
	e := newEnv(t, envOpt{delay: 500 * time.Millisecond, onRun: func(ri RunInfo) { runs <- ri }})
	_, active := fixtureIDs(t, e.fixture)
	conn, err := net.Dial("tcp", e.rt.Addr().HostPort())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /pkgpanda/swap?id=mesos--0.23.0 HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n", e.rt.Addr().HostPort())
	waitFor(t, "the run to start", func() bool { return e.runsStarted("swap") == 1 })
	_ = conn.(*net.TCPConn).SetLinger(0) // a reset: the request's context is cancelled
	conn.Close()
	select {
	case ri := <-runs:
		if ri.Err != nil || ri.Result.Killed != subprocess.NotKilled {
			t.Fatalf("the mutation did not run to completion: %+v", ri)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the mutation did not finish")
	}
	r := e.do("GET", "/active/", nil)
	var got []string
	if err := json.Unmarshal(r.body, &got); err != nil || strings.Join(got, ",") == strings.Join(active, ",") {
		t.Fatalf("the swap did not happen: %s", r)
	}
}

func TestDrainFinishesMutationsAndRejectsQueued(t *testing.T) {
	e := newEnv(t, envOpt{delay: 700 * time.Millisecond})
	var wg sync.WaitGroup
	var running, queued reply
	e.async(&wg, &running, "POST", "/swap?id=mesos--0.23.0", nil)
	waitFor(t, "the swap to start", func() bool { return e.runsStarted("swap") == 1 })
	e.async(&wg, &queued, "POST", "/swap?id=mesos--0.22.0", nil)
	waitFor(t, "the second swap to queue", func() bool { return e.p.queueLen(RouteSwap) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := e.p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	expectStatus(t, "running mutation", running, http.StatusNoContent)
	expectStatus(t, "queued mutation", queued, http.StatusServiceUnavailable)
	if queued.header.Get("Retry-After") == "" {
		t.Error("queued 503 without Retry-After")
	}
	expectStatus(t, "request after drain", e.do("GET", "/list.json", nil), http.StatusServiceUnavailable)
	if got := e.runsStarted("swap"); got != 1 {
		t.Fatalf("%d swaps ran, want 1", got)
	}
}
