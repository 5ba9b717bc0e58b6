package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// TestStatus: eight agents behind a non-leading master that redirects to
// the leader; one agent runs another mesos; draining, deactivated and
// recovered agents are shown and never contacted; an agent with nothing
// listening and one that never answers are reported with their reasons,
// and the slow one delays nothing but itself.
func TestStatus(t *testing.T) {
	resetCluster(t)
	ctx := context.Background()
	if err := agentClient(t, 2).Activate(ctx, "marathon--1.10.0", "mesos--1.12.0", "mesos-config--demo"); err != nil {
		t.Fatal(err)
	}
	leader := newFakeMaster(t)
	follower := newFakeMaster(t)
	follower.setRedirect(leader.hostport())
	agents := clusterAgents()
	agents = append(agents,
		drainingAgent("S9", "agent-09", "127.0.0.30"),
		deactivatedAgent("S10", "agent-10", "127.0.0.31"),
		mesosAgent("S11", "agent-11", "127.0.0.32"), // nothing listens
		mesosAgent("S12", "agent-12", "127.0.0.33"), // never answers
	)
	leader.setAgents(agents, mesos.AgentInfo{ID: &mesos.AgentID{Value: "S13"}, Hostname: "127.0.0.34"})
	guards := []*guard{newGuard(t, "127.0.0.30"), newGuard(t, "127.0.0.31"), newGuard(t, "127.0.0.34")}
	blackhole(t, "127.0.0.33")

	flags := credFlags(t, follower)
	start := time.Now()
	code, out, errs := runTool(t, append([]string{"status", "--timeout", "1s"}, flags...)...)
	elapsed := time.Since(start)
	t.Logf("status:\n%s%s", out, errs)
	if code != exitIncomplete {
		t.Fatalf("exit %d, want %d (agents differ and some are unreachable); stderr %s", code, exitIncomplete, errs)
	}
	if elapsed > 4*time.Second {
		t.Errorf("status took %s with a 1s per-agent timeout", elapsed)
	}
	for _, want := range []string{
		"master " + "http://" + leader.hostport() + "/api/v1: 13 agents, 8 answered, 7 at majority, 1 differ, 2 unreachable or refusing, 3 not touched",
		"agent-03 (S3)", "mesos 1.12.0→1.11.0",
		"agent-11 (S11)", "connection refused",
		"agent-12 (S12)", "timed out",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q", want)
		}
	}
	for _, want := range [][2]string{{"agent-09 (S9)", "draining"}, {"agent-10 (S10)", "deactivated"}, {"(S13)", "recovered"}} {
		if !hasLine(out, want[0], want[1]) {
			t.Errorf("status output lacks a line with %q and %q", want[0], want[1])
		}
	}
	for _, g := range guards {
		if n := g.conns.Load(); n != 0 {
			t.Errorf("an agent the master does not report active was contacted %d times", n)
		}
	}

	// With a target and --json.
	code, out, errs = runTool(t, append([]string{"status", "--json", "--timeout", "1s", "--target", "mesos--1.12.0"}, flags...)...)
	if code != exitIncomplete {
		t.Fatalf("json: exit %d: %s", code, errs)
	}
	var r StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if r.Agents != 13 || r.Answered != 8 || r.AtTarget != 1 || len(r.Differing) != 7 || len(r.Unreachable) != 2 || len(r.NotTouched) != 3 {
		t.Errorf("json report: %+v", r)
	}
	counts := map[string]int{}
	for _, p := range r.Packages {
		counts[p.Name+"--"+p.Version] = p.Agents
		if p.Name+"--"+p.Version == "mesos--1.12.0" && !p.Target {
			t.Errorf("mesos 1.12.0 not marked as the target: %+v", p)
		}
	}
	if counts["mesos--1.11.0"] != 7 || counts["mesos--1.12.0"] != 1 || counts["marathon--1.10.0"] != 8 {
		t.Errorf("package counts %v", counts)
	}
}

// TestStatusBadInput: a master that cannot be reached, one that answers
// garbage, one that refuses the credentials, and an agent that answers
// garbage each get a clear error.
func TestStatusBadInput(t *testing.T) {
	fm := newFakeMaster(t)
	fm.setAgents(clusterAgents()[:1])
	flags := credFlags(t, fm)
	with := func(master string) []string {
		f := append([]string{"status"}, flags...)
		for i := range f {
			if f[i] == fm.url() {
				f[i] = master
			}
		}
		return f
	}
	// Nothing listens there.
	l := httptest.NewServer(http.NotFoundHandler())
	dead := l.URL
	l.Close()
	code, _, errs := runTool(t, with(dead)...)
	if code != exitError || !strings.Contains(errs, "GET_AGENTS") || !strings.Contains(errs, "connection refused") {
		t.Errorf("dead master: exit %d, %q", code, errs)
	}
	// Several masters: a dead one is passed over.
	code, out, errs := runTool(t, with(dead+","+fm.url())...)
	if code != exitOK || !strings.Contains(out, "1 agents, 1 answered") {
		t.Errorf("dead then live master: exit %d\n%s%s", code, out, errs)
	}
	// Garbage.
	fm.setGarbage(true)
	code, _, errs = runTool(t, with(fm.url())...)
	if code != exitError || !strings.Contains(errs, "decoding the master's answer") {
		t.Errorf("garbage master: exit %d, %q", code, errs)
	}
	fm.setGarbage(false)
	// Wrong credentials.
	bad := append([]string{}, with(fm.url())...)
	bad = append(bad, "--master-principal", "nobody")
	code, _, errs = runTool(t, bad...)
	if code != exitError || !strings.Contains(errs, "not authenticated") {
		t.Errorf("refused master: exit %d, %q", code, errs)
	}
	// An agent answering garbage.
	g := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write([]byte("\xff\xff\xff garbage"))
	})}
	gl := listenOn(t, "127.0.0.40")
	go g.Serve(gl)
	t.Cleanup(func() { g.Close() })
	fm.setAgents(append(clusterAgents()[:1], mesosAgent("SG", "agent-garbage", "127.0.0.40")))
	code, out, errs = runTool(t, with(fm.url())...)
	if code != exitIncomplete || !strings.Contains(out, "agent-garbage (SG)") || !strings.Contains(out, "decoding the answer") {
		t.Errorf("garbage agent: exit %d\n%s%s", code, out, errs)
	}
}

// hasLine reports whether some line of out contains every part.
func hasLine(out string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}
