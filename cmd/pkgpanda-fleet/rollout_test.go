package main

import (
	"context"
	"encoding/json"
	"github.com/procpanda/procpanda/internal/testlog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/maintenance"
	"golang.org/x/sys/unix"
)

// targetSet is baseline with one package replaced.
func targetSet(id string) []string {
	out := []string{id}
	for _, b := range baseline {
		if nameOf(b) != nameOf(id) {
			out = append(out, b)
		}
	}
	return sortedCopy(out)
}

// expectActive asserts each daemon's active set: want[i] for daemon i.
func expectActive(t *testing.T, want func(i int) []string) {
	t.Helper()
	for i := range daemons {
		if got := activeOf(t, i); !slices.Equal(got, want(i)) {
			t.Errorf("agent-%02d active %v, want %v", i+1, got, want(i))
		}
	}
}

func readStateFile(t *testing.T, path string) *State {
	t.Helper()
	st, err := peekState(path)
	if err != nil || st == nil {
		t.Fatalf("state file %s: %v", path, err)
	}
	return st
}

// auditCount counts audit lines of operation op on agent id with outcome.
func auditCount(t *testing.T, path, id, op, outcome string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e AuditEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		if e.Agent == id && e.Operation == op && e.Outcome == outcome {
			n++
		}
	}
	return n
}

// TestRolloutDryRunAndRefusals: the plan names batches, skips the agent
// already at the target and changes nothing; a package no repository
// has, or a missing repository URL, is refused before any change.
func TestRolloutDryRunAndRefusals(t *testing.T) {
	resetCluster(t)
	ctx := context.Background()
	c := agentClient(t, 1)
	if _, err := c.Fetch(ctx, remote, "marathon--1.11.0"); err != nil {
		t.Fatal(err)
	}
	if err := c.Activate(ctx, targetSet("marathon--1.11.0")...); err != nil {
		t.Fatal(err)
	}
	fm := newFakeMaster(t)
	fm.setAgents(clusterAgents())
	flags := credFlags(t, fm)
	state := filepath.Join(t.TempDir(), "state.json")
	args := append([]string{"rollout", "--dry-run", "--state", state, "--target", "marathon--1.11.0", "--repository-url", remote, "--batch", "3"}, flags...)
	code, out, errs := runTool(t, args...)
	t.Logf("dry run:\n%s%s", out, errs)
	if code != exitOK {
		t.Fatalf("dry run: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"7 agents change in 3 batches, 1 at target",
		"batch 1 (canary): 1 agents", "batch 2: 3 agents", "batch 3: 3 agents",
		"marathon 1.10.0→1.11.0", "fetch marathon--1.11.0",
		"skipped, already at the target: agent-02",
		"dry run: nothing changed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("a dry run left a state file: %v", err)
	}
	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"--target", "marathon--1.11.0"}, "no --repository-url"},
		{[]string{"--target", "mesos--9.9.9", "--repository-url", remote}, "the target names packages no repository has: mesos--9.9.9"},
		{[]string{"--target", "not-an-id"}, "invalid package id"},
	}
	// Without the check here, the canary's fetch fails and nothing changes.
	code, out, errs = runTool(t, append([]string{"rollout", "--state", state, "--target", "mesos--9.9.9", "--repository-url", remote, "--no-repository-check", "--progress", "plain"}, flags...)...)
	if code != exitIncomplete || !hasLine(out, "agent-01 (S1)", "failed", "fetching mesos--9.9.9") || !hasLine(out, "agent-03 (S3)", "pending") {
		t.Errorf("--no-repository-check with a missing package: exit %d\n%s%s", code, out, errs)
	}
	os.Remove(state)
	os.Remove(state + ".audit")
	for _, r := range refusals {
		code, _, errs := runTool(t, append(append([]string{"rollout", "--state", state}, r.args...), flags...)...)
		if (code != exitError && code != exitUsage) || !strings.Contains(errs, r.want) {
			t.Errorf("%q: exit %d, %q; want a refusal naming %q", r.args, code, errs, r.want)
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("%q: a refused rollout left a state file", r.args)
		}
	}
	expectActive(t, func(i int) []string {
		if i == 1 {
			return targetSet("marathon--1.11.0")
		}
		return baseline
	})
}

// TestRolloutAcrossLeaderChange: a full rollout with fetches, while the
// master it was given stops leading after a few calls and redirects to
// the new leader.
func TestRolloutAcrossLeaderChange(t *testing.T) {
	resetCluster(t)
	a, b := newFakeMaster(t), newFakeMaster(t)
	a.setAgents(clusterAgents())
	b.setAgents(clusterAgents())
	a.onCall = func(n int64) {
		if n == 3 { // the plan, batch 1, the canary's gate: then a new leader
			a.setRedirect(b.hostport())
		}
	}
	state := filepath.Join(t.TempDir(), "state.json")
	code, out, errs := runTool(t, append([]string{"rollout", "--state", state, "--target", "marathon--1.11.0", "--repository-url", remote,
		"--batch", "4", "--max-unavailable", "2", "--progress", "plain"}, credFlags(t, a)...)...)
	t.Logf("rollout:\n%s%s", out, errs)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if b.calls.Load() == 0 {
		t.Error("the new leader was never asked")
	}
	expectActive(t, func(int) []string { return targetSet("marathon--1.11.0") })
	st := readStateFile(t, state)
	for id, ap := range st.Agents {
		if ap.Status != progDone || !ap.Changed {
			t.Errorf("%s: %+v", id, ap)
		}
		if n := auditCount(t, state+".audit", id, "activate", "ok"); n != 1 {
			t.Errorf("%s: %d activate audit lines", id, n)
		}
		if n := auditCount(t, state+".audit", id, "fetch", "ok"); n != 1 {
			t.Errorf("%s: %d fetch audit lines", id, n)
		}
	}
	for _, want := range []string{"batch 1/3 finished", "batch 3/3 finished", "rollout complete", "[8/8]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Run again: everything is at the target, nothing changes.
	code, out, errs = runTool(t, append([]string{"rollout", "--state", filepath.Join(t.TempDir(), "again.json"), "--target", "marathon--1.11.0"}, credFlags(t, a)...)...)
	if code != exitOK || !strings.Contains(out, "0 agents change") {
		t.Errorf("second rollout: exit %d\n%s%s", code, out, errs)
	}
}

// TestRolloutActivationFailure: an agent whose activation fails stops the
// rollout after its batch with a report of what changed where; a state
// file from another target is refused; once the agent is fixed, running
// again continues, leaving out the unreachable agent.
func TestRolloutActivationFailure(t *testing.T) {
	resetCluster(t)
	// agent-03's repository holds a broken mesos--1.13.0.
	broken := filepath.Join(daemons[2].demo, "packages", "mesos--1.13.0")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "pkginfo.json"), []byte(`{"requires": ["no-such-package"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	fm := newFakeMaster(t)
	fm.setAgents(append(clusterAgents(), mesosAgent("S11", "agent-11", "127.0.0.32")))
	flags := credFlags(t, fm)
	state := filepath.Join(t.TempDir(), "state.json")
	args := append([]string{"rollout", "--state", state, "--target", "mesos--1.13.0", "--repository-url", remote, "--batch", "2", "--progress", "plain"}, flags...)
	code, out, errs := runTool(t, args...)
	t.Logf("first run:\n%s%s", out, errs)
	if code != exitIncomplete {
		t.Fatalf("exit %d, want %d", code, exitIncomplete)
	}
	for _, want := range []string{"stopped after batch 2: agent-03 (S3) failed", "unreachable, not touched: agent-11 (S11)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !hasLine(out, "agent-03 (S3)", "failed", "mesos 1.11.0→1.13.0 (not activated)", "activating") ||
		!hasLine(out, "agent-02 (S2)", "done", "(activated)") || !hasLine(out, "agent-04 (S4)", "pending") {
		t.Errorf("the report does not say what changed where")
	}
	expectActive(t, func(i int) []string {
		if i < 2 {
			return targetSet("mesos--1.13.0")
		}
		return baseline
	})
	if n := auditCount(t, state+".audit", "S3", "activate", "failed"); n != 1 {
		t.Errorf("%d failed activate audit lines for S3", n)
	}

	// Another target with this state file is refused, changing nothing.
	other := append([]string{"rollout", "--state", state, "--target", "mesos--1.12.0"}, flags...)
	code, _, errs = runTool(t, other...)
	if code != exitError || !strings.Contains(errs, "belongs to a rollout of mesos--1.13.0, not mesos--1.12.0") {
		t.Errorf("other target: exit %d, %q", code, errs)
	}

	// Fix agent-03 and continue.
	if _, err := agentClient(t, 2).Remove(context.Background(), "mesos--1.13.0"); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runTool(t, args...)
	t.Logf("second run:\n%s%s", out, errs)
	if code != exitIncomplete || !strings.Contains(out, "agents were left out (1 unreachable)") || !strings.Contains(out, "done in an earlier run: agent-01, agent-02") {
		t.Errorf("resumed run: exit %d", code)
	}
	expectActive(t, func(int) []string { return targetSet("mesos--1.13.0") })
	if n := auditCount(t, state+".audit", "S1", "activate", "ok"); n != 1 {
		t.Errorf("agent-01 activated %d times over both runs", n)
	}
	st := readStateFile(t, state)
	if st.Agents["S3"].Status != progDone || st.Agents["S3"].Attempts != 2 || st.Agents["S11"].Status != progNotTouchd {
		t.Errorf("state: S3 %+v, S11 %+v", st.Agents["S3"], st.Agents["S11"])
	}
}

// holdLock takes daemon i's repository lock, so that its next mutation
// waits; the returned func releases it.
func holdLock(t *testing.T, i int) func() {
	t.Helper()
	f, err := os.OpenFile(daemons[i].lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			f.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// tool is the built binary running a rollout.
type tool struct {
	cmd  *exec.Cmd
	out  *testlog.Buffer
	done chan struct{}
	code int
}

func startTool(t *testing.T, args ...string) *tool {
	t.Helper()
	tl := &tool{cmd: exec.Command(filepath.Join(binDir, "pkgpanda-fleet"), args...), out: &testlog.Buffer{}, done: make(chan struct{})}
	tl.cmd.Stdout, tl.cmd.Stderr = tl.out, tl.out
	if err := tl.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		tl.cmd.Wait()
		tl.code = tl.cmd.ProcessState.ExitCode()
		if ws, ok := tl.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			tl.code = -int(ws.Signal())
		}
		close(tl.done)
	}()
	t.Cleanup(func() {
		select {
		case <-tl.done:
		default:
			tl.cmd.Process.Kill()
			<-tl.done
		}
	})
	return tl
}

func (tl *tool) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-tl.done:
		return tl.code
	case <-time.After(2 * time.Minute):
		t.Fatalf("the tool did not exit; output so far:\n%s", tl.out.String())
		return 0
	}
}

// waitRunning waits until the state file shows agent id running.
func waitRunning(t *testing.T, state, id string, tl *tool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for {
		if f, err := os.Open(state); err == nil {
			st, _ := readState(f, state)
			f.Close()
			if st != nil && st.Agents[id] != nil && st.Agents[id].Status == progRunning {
				return
			}
		}
		select {
		case <-tick.C:
		case <-tl.done:
			t.Fatalf("the tool exited (%d) before %s started:\n%s", tl.code, id, tl.out.String())
		case <-deadline:
			t.Fatalf("%s never started", id)
		}
	}
}

// waitOutput waits until the tool has printed want.
func waitOutput(t *testing.T, tl *tool, want string) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for !strings.Contains(tl.out.String(), want) {
		select {
		case <-tick.C:
		case <-tl.done:
			t.Fatalf("the tool exited (%d) without printing %q:\n%s", tl.code, want, tl.out.String())
		case <-deadline:
			t.Fatalf("the tool never printed %q", want)
		}
	}
}

// TestRolloutInterruptKillResume: a second rollout from the same state
// file is refused while the first runs; SIGINT finishes the agent in
// flight and stops; SIGKILL mid-batch leaves the agent marked running;
// the next run re-checks it, continues, and reports an agent that is
// gone from the master without touching it.
func TestRolloutInterruptKillResume(t *testing.T) {
	resetCluster(t)
	fm := newFakeMaster(t)
	fm.setAgents(clusterAgents())
	state := filepath.Join(t.TempDir(), "state.json")
	args := append([]string{"rollout", "--state", state, "--target", "mesos--1.12.0", "--batch", "3", "--progress", "plain"}, credFlags(t, fm)...)

	release := holdLock(t, 3) // agent-04, in batch 2
	first := startTool(t, args...)
	waitRunning(t, state, "S4", first)
	second := startTool(t, args...)
	if code := second.wait(t); code != exitError || !strings.Contains(second.out.String(), "another rollout is running from this state file") {
		t.Errorf("second rollout from the same state file: exit %d\n%s", code, second.out.String())
	}
	if err := first.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	release()
	if code := first.wait(t); code != exitInterrupted {
		t.Fatalf("interrupted run: exit %d\n%s", code, first.out.String())
	}
	t.Logf("interrupted run:\n%s", first.out.String())
	st := readStateFile(t, state)
	for id, want := range map[string]string{"S1": progDone, "S4": progDone, "S5": progPending, "S8": progPending} {
		if st.Agents[id].Status != want {
			t.Errorf("after SIGINT %s is %s, want %s", id, st.Agents[id].Status, want)
		}
	}
	expectActive(t, func(i int) []string {
		if i < 4 {
			return targetSet("mesos--1.12.0")
		}
		return baseline
	})

	// Killed mid-batch: agent-06 waits for its lock when the tool dies.
	release = holdLock(t, 5)
	killed := startTool(t, args...)
	waitRunning(t, state, "S6", killed)
	killed.cmd.Process.Kill()
	killed.wait(t)
	release()
	if st := readStateFile(t, state); st.Agents["S6"].Status != progRunning || st.Agents["S5"].Status != progDone {
		t.Errorf("after SIGKILL: S5 %+v S6 %+v", st.Agents["S5"], st.Agents["S6"])
	}

	// agent-08 is gone from the master; the rest finishes.
	fm.removeAgent("S8")
	last := startTool(t, args...)
	code := last.wait(t)
	t.Logf("resumed run:\n%s", last.out.String())
	if code != exitIncomplete || !strings.Contains(last.out.String(), "gone from the master since planned, not touched: S8 (agent-08)") {
		t.Errorf("resumed run: exit %d", code)
	}
	expectActive(t, func(i int) []string {
		if i < 7 {
			return targetSet("mesos--1.12.0")
		}
		return baseline
	})
	st = readStateFile(t, state)
	// Whether pkgpandad ran the killed run's activation once the lock was
	// free depends on when it saw the client go; either way the report
	// shows the change from the set the killed run started with.
	if !hasLine(last.out.String(), "agent-06 (S6)", "done", "mesos 1.11.0→1.12.0 (") {
		t.Error("the report does not show agent-06's change made by the killed run")
	}
	if st.Agents["S6"].Status != progDone || st.Agents["S8"].Status != progGone {
		t.Errorf("final state: S6 %+v S8 %+v", st.Agents["S6"], st.Agents["S8"])
	}
	for _, id := range []string{"S1", "S4", "S5", "S7"} {
		if n := auditCount(t, state+".audit", id, "activate", "ok"); n != 1 {
			t.Errorf("%s activated %d times over the runs", id, n)
		}
	}
}

// TestRolloutGateFailure: an agent whose checks fail after its
// activation fails the health gate; the rollout stops with the agents of
// its batch not yet started left alone, and the report says the change
// was made there.
func TestRolloutGateFailure(t *testing.T) {
	resetCluster(t)
	check := filepath.Join(daemons[1].demo, "packages", "mesos--1.12.0", "check")
	if err := os.MkdirAll(check, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(check) })
	if err := os.WriteFile(filepath.Join(check, "health"), []byte("#!/bin/sh\necho unhealthy >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fm := newFakeMaster(t)
	fm.setAgents(clusterAgents())
	state := filepath.Join(t.TempDir(), "state.json")
	start := time.Now()
	code, out, errs := runTool(t, append([]string{"rollout", "--state", state, "--target", "mesos--1.12.0", "--batch", "3", "--progress", "plain", "--gate-wait", "1s"}, credFlags(t, fm)...)...)
	t.Logf("rollout:\n%s%s", out, errs)
	if code != exitIncomplete {
		t.Fatalf("exit %d", code)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("the gate gave up after %s, before --gate-wait 1s", d)
	}
	if !hasLine(out, "agent-02 (S2)", "failed", "mesos 1.11.0→1.12.0 (activated)", "health gate: pkgpanda check", "still failing after") ||
		!hasLine(out, "agent-03 (S3)", "pending") || !strings.Contains(out, "stopped after batch 2: agent-02 (S2) failed") {
		t.Error("the report does not say where the gate failed and what changed")
	}
	expectActive(t, func(i int) []string {
		if i < 2 {
			return targetSet("mesos--1.12.0")
		}
		return baseline
	})
	if n := auditCount(t, state+".audit", "S2", "gate", "failed"); n != 1 {
		t.Errorf("%d failed gate audit lines for S2", n)
	}
}

// TestRolloutAgentDrainedMidway: an agent the master starts draining
// after the plan is left alone when its batch comes, and the rollout
// says it is incomplete.
func TestRolloutAgentDrainedMidway(t *testing.T) {
	resetCluster(t)
	fm := newFakeMaster(t)
	fm.setAgents(clusterAgents())
	fm.onCall = func(n int64) {
		if n == 3 { // the plan, batch 1, the canary's gate: then S8 drains
			fm.mu.Lock()
			fm.agents[7] = drainingAgent("S8", "agent-08", agentIPFor(7))
			fm.mu.Unlock()
		}
	}
	state := filepath.Join(t.TempDir(), "state.json")
	code, out, errs := runTool(t, append([]string{"rollout", "--state", state, "--target", "mesos--1.12.0", "--batch", "7", "--progress", "plain"}, credFlags(t, fm)...)...)
	t.Logf("rollout:\n%s%s", out, errs)
	if code != exitIncomplete || !strings.Contains(out, "agent-08 (S8): not touched, draining in the master") ||
		!strings.Contains(out, "agents were left out (1 no longer active in the master)") {
		t.Errorf("exit %d", code)
	}
	expectActive(t, func(i int) []string {
		if i < 7 {
			return targetSet("mesos--1.12.0")
		}
		return baseline
	})
}

// TestRolloutMaintenanceWindows: with --maintenance-window, each batch's
// machines are scheduled in a window (keeping the operator's own window)
// while it runs, and taken out after; a machine already in a window is
// refused before anything changes.
func TestRolloutMaintenanceWindows(t *testing.T) {
	resetCluster(t)
	fm := newFakeMaster(t)
	fm.setAgents(clusterAgents())
	other, otherIP := "other-host", "10.9.9.9"
	fm.schedule = maintenance.Schedule{Windows: []maintenance.Window{{
		MachineIDs:     []mesos.MachineID{{Hostname: &other, IP: &otherIP}},
		Unavailability: mesos.Unavailability{Start: mesos.TimeInfo{Nanoseconds: 1}}}}}
	flags := credFlags(t, fm)
	state := filepath.Join(t.TempDir(), "state.json")
	code, out, errs := runTool(t, append([]string{"rollout", "--state", state, "--target", "mesos--1.12.0", "--batch", "4",
		"--maintenance-window", "15m", "--progress", "plain"}, flags...)...)
	t.Logf("rollout:\n%s%s", out, errs)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	fm.mu.Lock()
	updates, final := slices.Clone(fm.updates), fm.schedule
	fm.mu.Unlock()
	// Batches: [agent-01], [agent-02..05], [agent-06..08]; each adds its
	// window, then removes it.
	wantBatches := [][]string{{"agent-01"}, {"agent-02", "agent-03", "agent-04", "agent-05"}, {"agent-06", "agent-07", "agent-08"}}
	if len(updates) != 2*len(wantBatches) {
		t.Fatalf("%d schedule updates, want %d", len(updates), 2*len(wantBatches))
	}
	for i, want := range wantBatches {
		add, remove := updates[2*i], updates[2*i+1]
		if len(add.Windows) != 2 || len(remove.Windows) != 1 || remove.Windows[0].MachineIDs[0].GetHostname() != other {
			t.Fatalf("batch %d: schedule %+v then %+v", i+1, add, remove)
		}
		w := add.Windows[1]
		var got []string
		for _, m := range w.MachineIDs {
			got = append(got, m.GetHostname())
		}
		if !slices.Equal(got, want) || w.Unavailability.Duration == nil || w.Unavailability.Duration.Nanoseconds != int64(15*time.Minute) {
			t.Errorf("batch %d: window %v %+v, want machines %v for 15m", i+1, got, w.Unavailability, want)
		}
	}
	if len(final.Windows) != 1 || final.Windows[0].MachineIDs[0].GetHostname() != other {
		t.Errorf("final schedule %+v, want only the operator's window", final)
	}
	if auditCount(t, state+".audit", "", "maintenance-window", "ok") != 3 || auditCount(t, state+".audit", "", "maintenance-window-removed", "ok") != 3 {
		t.Error("maintenance windows not audited")
	}

	// agent-01 already in a window: refused before any change.
	resetCluster(t)
	h, ip := "agent-01", agentIPFor(0)
	fm.mu.Lock()
	fm.schedule.Windows = append(fm.schedule.Windows, maintenance.Window{MachineIDs: []mesos.MachineID{{Hostname: &h, IP: &ip}},
		Unavailability: mesos.Unavailability{Start: mesos.TimeInfo{Nanoseconds: 2}}})
	fm.mu.Unlock()
	code, out, errs = runTool(t, append([]string{"rollout", "--state", filepath.Join(t.TempDir(), "s2.json"), "--target", "mesos--1.12.0",
		"--maintenance-window", "15m", "--progress", "plain"}, flags...)...)
	if code != exitError || !strings.Contains(errs, "machine agent-01 (127.0.0.2) is already in a maintenance window") {
		t.Errorf("agent in a window: exit %d\n%s%s", code, out, errs)
	}
	expectActive(t, func(int) []string { return baseline })
}

// TestRolloutSecondInterruptAbandons: a second SIGINT abandons the agent
// in flight; the run says so, and the next run reads the agent again.
func TestRolloutSecondInterruptAbandons(t *testing.T) {
	resetCluster(t)
	fm := newFakeMaster(t)
	fm.setAgents(clusterAgents()[:2])
	state := filepath.Join(t.TempDir(), "state.json")
	args := append([]string{"rollout", "--state", state, "--target", "mesos--1.12.0", "--progress", "plain"}, credFlags(t, fm)...)
	release := holdLock(t, 0)
	tl := startTool(t, args...)
	waitRunning(t, state, "S1", tl)
	// Signals of one kind do not queue: send the second once the first
	// has been taken.
	tl.cmd.Process.Signal(os.Interrupt)
	waitOutput(t, tl, "interrupted: finishing the agents in flight")
	tl.cmd.Process.Signal(os.Interrupt)
	code := tl.wait(t)
	release()
	if code != exitInterrupted || !strings.Contains(tl.out.String(), "interrupted twice in batch 1: agents in flight were abandoned") {
		t.Errorf("exit %d\n%s", code, tl.out.String())
	}
	if st := readStateFile(t, state); st.Agents["S2"].Status != progPending {
		t.Errorf("S2 %+v after the abandoned run", st.Agents["S2"])
	}
	last := startTool(t, args...)
	if code := last.wait(t); code != exitOK {
		t.Errorf("resumed run: exit %d\n%s", code, last.out.String())
	}
	for i := range 2 {
		if got := activeOf(t, i); !slices.Equal(got, targetSet("mesos--1.12.0")) {
			t.Errorf("agent-%02d: %v", i+1, got)
		}
	}
}

// TestRolloutGateWaitsForAgent: an agent the master shows inactive right
// after its activation (as while it restarts) passes the gate once it is
// active again within --gate-wait.
func TestRolloutGateWaitsForAgent(t *testing.T) {
	resetCluster(t)
	fm := newFakeMaster(t)
	fm.setAgents(clusterAgents()[:2])
	fm.onCall = func(n int64) {
		fm.mu.Lock()
		defer fm.mu.Unlock()
		switch n {
		case 3: // the plan, batch 1, then the canary's first gate
			fm.agents[0].Active = false
		case 4:
			fm.agents[0].Active = true
		}
	}
	state := filepath.Join(t.TempDir(), "state.json")
	code, out, errs := runTool(t, append([]string{"rollout", "--state", state, "--target", "mesos--1.12.0", "--progress", "plain", "--gate-wait", "30s"}, credFlags(t, fm)...)...)
	if code != exitOK || fm.calls.Load() < 5 {
		t.Errorf("exit %d after %d master calls\n%s%s", code, fm.calls.Load(), out, errs)
	}
	if n := auditCount(t, state+".audit", "S1", "gate", "ok"); n != 1 {
		t.Errorf("%d passed gates for S1", n)
	}
}

// TestRolloutAnotherClientChangesAgent: another rollout (from another
// machine) activates its own set on the agent between this rollout's
// activation and its read-back; pkgpandad serialises the two, and this
// rollout's gate reports the agent changed by another client and stops.
func TestRolloutAnotherClientChangesAgent(t *testing.T) {
	resetCluster(t)
	other := agentClient(t, 0)
	fm := newFakeMaster(t)
	fm.setAgents(clusterAgents()[:2])
	fm.onCall = func(n int64) {
		if n == 3 { // the plan, batch 1, then the canary's gate: the other rollout lands
			if err := other.Activate(context.Background(), baseline...); err != nil {
				t.Errorf("the other client's activation: %v", err)
			}
		}
	}
	state := filepath.Join(t.TempDir(), "state.json")
	code, out, errs := runTool(t, append([]string{"rollout", "--state", state, "--target", "mesos--1.12.0", "--progress", "plain"}, credFlags(t, fm)...)...)
	t.Logf("rollout:\n%s%s", out, errs)
	if code != exitIncomplete || !hasLine(out, "agent-01 (S1)", "failed", "(activated)", "the active set reads back as marathon--1.10.0,mesos--1.11.0,mesos-config--demo", "changed by another client?") ||
		!hasLine(out, "agent-02 (S2)", "pending") {
		t.Errorf("exit %d; the report does not name the other client's change", code)
	}
	expectActive(t, func(int) []string { return baseline })
}
