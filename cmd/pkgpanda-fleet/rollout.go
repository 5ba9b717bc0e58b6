package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Exit statuses of the tool.
const (
	exitOK          = 0   // done: every planned agent at the target
	exitError       = 1   // refused or failed before changing anything
	exitUsage       = 2   // bad flags
	exitIncomplete  = 3   // stopped by a failed gate, or agents left out
	exitInterrupted = 130 // SIGINT: agents in flight finished, the rest wait
)

// rolloutOptions are the flags of `rollout`.
type rolloutOptions struct {
	planOptions
	maxUnavailable int
	statePath      string
	auditPath      string
	dryRun         bool
	progress       string        // auto, bar, plain
	maintenance    time.Duration // a Mesos maintenance window per batch; 0: none
	gateWait       time.Duration // how long the gate retries what may mend
}

// rollout runs a plan.
type rollout struct {
	m     *masterClient
	pool  *agentPool
	o     rolloutOptions
	st    *State
	sf    *stateFile
	audit *auditLog
	out   *progressWriter

	mu       sync.Mutex
	finished int // agents finished this run
	total    int
}

// runRollout plans and, unless a dry run, carries out a rollout. stop
// closes on the first SIGINT (no new agent starts); ctx is cancelled on
// the second (agents in flight are abandoned).
func runRollout(ctx context.Context, stop <-chan struct{}, m *masterClient, pool *agentPool, o rolloutOptions, stdout, stderr io.Writer) int {
	if o.target.empty() {
		fmt.Fprintln(stderr, "pkgpanda-fleet rollout: no target (--target IDS or --target-file FILE)")
		return exitUsage
	}
	if o.dryRun {
		prev, err := peekState(o.statePath)
		if err == nil && prev != nil && !sameTarget(prev.Target, o.target) {
			err = targetMismatch(o.statePath, prev.Target, o.target)
		}
		if err != nil {
			fmt.Fprintf(stderr, "pkgpanda-fleet rollout: %v\n", err)
			return exitError
		}
		p, err := makePlan(ctx, m, pool, o.planOptions, prev)
		if err != nil {
			fmt.Fprintf(stderr, "pkgpanda-fleet rollout: %v\n", err)
			return exitError
		}
		printPlan(stdout, p, pool)
		fmt.Fprintln(stdout, "dry run: nothing changed")
		return exitOK
	}
	_, statErr := os.Stat(o.statePath)
	created := errors.Is(statErr, os.ErrNotExist)
	sf, prev, err := openState(o.statePath)
	if err != nil {
		fmt.Fprintf(stderr, "pkgpanda-fleet rollout: %v\n", err)
		return exitError
	}
	defer sf.close()
	fail := func(err error) int {
		if created && prev == nil {
			os.Remove(o.statePath) // nothing was started: leave nothing behind
		}
		fmt.Fprintf(stderr, "pkgpanda-fleet rollout: %v\n", err)
		return exitError
	}
	if prev != nil && !sameTarget(prev.Target, o.target) {
		return fail(targetMismatch(o.statePath, prev.Target, o.target))
	}
	p, err := makePlan(ctx, m, pool, o.planOptions, prev)
	if err == nil && o.maintenance > 0 {
		err = m.checkWindows(ctx, p)
	}
	if err != nil {
		return fail(err)
	}
	audit, err := openAudit(o.auditPath, o.statePath)
	if err != nil {
		return fail(err)
	}
	defer audit.close()
	printPlan(stdout, p, pool)
	r := &rollout{m: m, pool: pool, o: o, sf: sf, audit: audit, st: newState(prev, p, o, pool), out: newProgressWriter(stdout, o.progress), total: p.changing()}
	if err := sf.save(r.st); err != nil {
		return fail(err)
	}
	code := r.run(ctx, stop, p)
	r.report(stdout, p)
	return code
}

func targetMismatch(path string, have, want Target) error {
	return fmt.Errorf("state file %s belongs to a rollout of %s, not %s: finish that rollout, or use another --state file", path, have, want)
}

// newState records the plan in the state: a new state, or the earlier
// run's with the agents re-planned.
func newState(prev *State, p *Plan, o rolloutOptions, pool *agentPool) *State {
	st := prev
	now := time.Now().UTC()
	if st == nil {
		st = &State{Version: stateVersion, Target: o.target, Created: now, Agents: map[string]*AgentProgress{}}
	}
	st.RepositoryURL = o.repositoryURL
	st.Outcome = "running"
	st.Batches = nil
	for bi, b := range p.Batches {
		var ids []string
		for _, pl := range b {
			ids = append(ids, pl.agent.ID)
			ap := st.Agents[pl.agent.ID]
			if ap == nil {
				ap = &AgentProgress{}
				st.Agents[pl.agent.ID] = ap
			}
			ap.Hostname, ap.Address, ap.Batch = pl.agent.Hostname, pool.addr(pl.agent), bi
			if ap.Status == progRunning && len(ap.From) > 0 {
				// A killed run's agent keeps the set it started from: the
				// activation may have happened without being recorded.
				ap.Error = "an earlier run stopped while changing this agent"
			} else {
				ap.From = pl.from
			}
			ap.To, ap.Fetch = pl.to, pl.fetch
			if ap.Status != progRunning && ap.Status != progFailed {
				ap.Status = progPending
			}
		}
		st.Batches = append(st.Batches, ids)
	}
	mark := func(a Agent, status, why string) {
		ap := st.Agents[a.ID]
		if ap == nil {
			ap = &AgentProgress{Hostname: a.Hostname, Address: pool.addr(a), Batch: -1}
			st.Agents[a.ID] = ap
		}
		if ap.Status == progDone {
			return
		}
		ap.Status, ap.Error = status, why
	}
	for _, a := range p.AtTarget {
		mark(a, progAtTarget, "")
	}
	for _, u := range p.Unreachable {
		mark(u.Agent, progNotTouchd, u.Reason)
	}
	for _, a := range p.NotTouched {
		mark(a, progNotTouchd, string(a.State)+" in the master")
	}
	for id, ap := range st.Agents {
		for _, g := range p.Gone {
			if strings.HasPrefix(g, id+" ") {
				ap.Status, ap.Error = progGone, "no longer known to the master"
			}
		}
	}
	return st
}

// setProgress updates one agent's entry and saves the state.
func (r *rollout) setProgress(id string, f func(ap *AgentProgress)) error {
	r.sf.mu.Lock()
	f(r.st.Agents[id])
	r.sf.mu.Unlock()
	return r.sf.save(r.st)
}

// run carries out the batches; it returns the exit status.
func (r *rollout) run(ctx context.Context, stop <-chan struct{}, p *Plan) int {
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return ctx.Err() != nil
		}
	}
	leftOut := 0 // agents the master stopped offering since the plan
	for bi, batch := range p.Batches {
		if stopped() {
			return r.finish(exitInterrupted, "interrupted before batch %d; run again to continue", bi+1)
		}
		start := time.Now()
		// The master's current view: agents drained or deactivated since
		// the plan are left alone.
		agents, err := r.m.GetAgents(ctx)
		if err != nil {
			return r.finish(exitIncomplete, "stopped before batch %d: %v", bi+1, err)
		}
		now := map[string]Agent{}
		for _, a := range agents {
			now[a.ID] = a
		}
		// Agents the master no longer offers are left alone.
		var todo []planned
		for _, pl := range batch {
			cur, ok := now[pl.agent.ID]
			if ok && cur.eligible() {
				todo = append(todo, pl)
				continue
			}
			why, status := "no longer known to the master", progGone
			if ok {
				why, status = string(cur.State)+" in the master", progNotTouchd
			}
			if err := r.setProgress(pl.agent.ID, func(ap *AgentProgress) { ap.Status, ap.Error = status, why }); err != nil {
				return r.finish(exitIncomplete, "stopped: %v", err)
			}
			r.out.line("%s: not touched, %s", agentName(pl.agent), why)
			leftOut++
		}
		removeWindow, err := r.maintenanceWindow(ctx, bi, todo)
		if err != nil {
			return r.finish(exitIncomplete, "stopped before batch %d: %v", bi+1, err)
		}
		var failed []string
		var fmu sync.Mutex
		sem := make(chan struct{}, r.o.maxUnavailable)
		var wg sync.WaitGroup
		for _, pl := range todo {
			sem <- struct{}{}
			fmu.Lock()
			halt := len(failed) > 0
			fmu.Unlock()
			if halt || stopped() {
				<-sem
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := r.doAgent(ctx, pl); err != nil {
					fmu.Lock()
					failed = append(failed, agentName(pl.agent))
					fmu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := removeWindow(); err != nil {
			r.out.line("%v: remove it from the master's maintenance schedule by hand", err)
			failed = append(failed, "the maintenance window")
		}
		r.out.line("batch %d/%d finished in %s: %s", bi+1, len(p.Batches), time.Since(start).Round(time.Millisecond), r.batchSummary(batch))
		if ctx.Err() != nil {
			return r.finish(exitInterrupted, "interrupted twice in batch %d: agents in flight were abandoned (the next run reads them again)", bi+1)
		}
		if len(failed) > 0 {
			return r.finish(exitIncomplete, "stopped after batch %d: %s failed (see the report); later batches were not started", bi+1, strings.Join(failed, ", "))
		}
		if stopped() {
			return r.finish(exitInterrupted, "interrupted in batch %d: agents in flight finished; run again to continue", bi+1)
		}
	}
	var left []string
	if n := len(p.Unreachable); n > 0 {
		left = append(left, fmt.Sprintf("%d unreachable", n))
	}
	if n := len(p.Gone); n > 0 {
		left = append(left, fmt.Sprintf("%d gone from the master", n))
	}
	if leftOut > 0 {
		left = append(left, fmt.Sprintf("%d no longer active in the master", leftOut))
	}
	if len(left) > 0 {
		return r.finish(exitIncomplete, "finished the plan, but agents were left out (%s): they are not at the target", strings.Join(left, ", "))
	}
	return r.finish(exitOK, "complete: every planned agent is at the target")
}

// maintenanceWindow schedules a Mesos maintenance window for the
// machines of a batch (when --maintenance-window is set) and returns the
// function that removes it again.
func (r *rollout) maintenanceWindow(ctx context.Context, bi int, todo []planned) (func() error, error) {
	if r.o.maintenance <= 0 || len(todo) == 0 {
		return func() error { return nil }, nil
	}
	machines := machineIDs(todo)
	names := strings.Split(machineNames(machines), ", ")
	start := time.Now()
	w, err := r.m.scheduleWindow(ctx, machines, r.o.maintenance)
	aerr := r.audit.write(AuditEntry{Operation: "maintenance-window", IDs: names, Outcome: outcome(err), Error: errText(err), DurationMS: time.Since(start).Milliseconds()})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		err = aerr
	}
	r.out.line("batch %d: maintenance window of %s scheduled for %s", bi+1, r.o.maintenance, strings.Join(names, ", "))
	remove := func() error {
		// Removed even after a second SIGINT: a window left behind keeps
		// the machines draining.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.m.cfg.timeout*2)
		defer cancel()
		start := time.Now()
		err := r.m.removeWindow(rctx, w)
		if aerr := r.audit.write(AuditEntry{Operation: "maintenance-window-removed", IDs: names, Outcome: outcome(err), Error: errText(err), DurationMS: time.Since(start).Milliseconds()}); err == nil {
			err = aerr
		}
		if err == nil {
			r.out.line("batch %d: maintenance window removed", bi+1)
		}
		return err
	}
	if err != nil { // the window is up but could not be audited
		return nil, errors.Join(err, remove())
	}
	return remove, nil
}

func outcome(err error) string {
	if err != nil {
		return "failed"
	}
	return "ok"
}

func errText(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}

// finish records how the run ended.
func (r *rollout) finish(code int, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	r.sf.mu.Lock()
	r.st.Outcome = msg
	r.sf.mu.Unlock()
	if err := r.sf.save(r.st); err != nil {
		r.out.line("saving the state: %v", err)
		if code == exitOK {
			code = exitIncomplete
		}
	}
	r.out.done()
	r.out.line("rollout %s", msg)
	return code
}

func (r *rollout) batchSummary(batch []planned) string {
	counts := map[string]int{}
	r.sf.mu.Lock()
	for _, pl := range batch {
		counts[r.st.Agents[pl.agent.ID].Status]++
	}
	r.sf.mu.Unlock()
	var parts []string
	for _, s := range []string{progDone, progFailed, progRunning, progPending, progNotTouchd, progGone} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// doAgent brings one agent to the target and runs its health gate.
func (r *rollout) doAgent(ctx context.Context, pl planned) error {
	a := pl.agent
	start := time.Now()
	// entry writes an audit line; a change that cannot be audited fails
	// the agent, which stops the rollout.
	entry := func(op string, ids, from []string, err error, since time.Time) error {
		e := AuditEntry{Agent: a.ID, Hostname: a.Hostname, Address: r.pool.addr(a), Operation: op, IDs: ids, From: from, Outcome: "ok", DurationMS: time.Since(since).Milliseconds()}
		if err != nil {
			e.Outcome, e.Error = "failed", err.Error()
		}
		return r.audit.write(e)
	}
	if err := r.setProgress(a.ID, func(ap *AgentProgress) {
		t := time.Now().UTC()
		ap.Status, ap.Error, ap.Started, ap.Finished = progRunning, "", &t, nil
		ap.Attempts++
	}); err != nil {
		return err
	}
	fail := func(step string, err error) error {
		err = fmt.Errorf("%s: %w", step, err)
		if serr := r.setProgress(a.ID, func(ap *AgentProgress) {
			t := time.Now().UTC()
			ap.Status, ap.Error, ap.Finished = progFailed, err.Error(), &t
		}); serr != nil {
			err = fmt.Errorf("%w; %v", err, serr)
		}
		r.progressed(fmt.Sprintf("%s %s: FAILED %v", agentName(a), r.pool.addr(a), err))
		return err
	}
	c, err := r.pool.client(a)
	if err != nil {
		return fail("connecting", err)
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, r.pool.cfg.timeout)
	active, err := c.Active(rctx)
	cancel()
	if err != nil {
		return fail("reading the active set", describe(rctx, err))
	}
	active = sortedCopy(active)
	want := r.o.target.desired(active)
	changed := false
	var steps []string
	if !slices.Equal(active, want) {
		rctx, cancel = context.WithTimeout(ctx, r.pool.cfg.timeout)
		repo, err := c.List(rctx)
		cancel()
		if err != nil {
			return fail("listing the repository", describe(rctx, err))
		}
		var missing []string
		for _, id := range want {
			if !slices.Contains(repo, id) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			if r.o.repositoryURL == "" {
				return fail("fetching", fmt.Errorf("the repository lacks %s and no --repository-url was given", strings.Join(missing, ", ")))
			}
			t := time.Now()
			_, err := c.Fetch(ctx, r.o.repositoryURL, missing...)
			aerr := entry("fetch", missing, nil, err, t)
			steps = append(steps, fmt.Sprintf("fetch %d ms", time.Since(t).Milliseconds()))
			if err != nil {
				return fail("fetching "+strings.Join(missing, ","), describe(ctx, err))
			}
			if aerr != nil {
				return fail("fetched, but", aerr)
			}
		}
		t := time.Now()
		err = c.Activate(ctx, want...)
		aerr := entry("activate", want, active, err, t)
		steps = append(steps, fmt.Sprintf("activate %d ms", time.Since(t).Milliseconds()))
		if err != nil {
			return fail("activating", describe(ctx, err))
		}
		changed = true
		serr := r.setProgress(a.ID, func(ap *AgentProgress) { ap.Changed = true })
		if err := errors.Join(aerr, serr); err != nil {
			return fail("activated, but", err)
		}
	}
	// The health gate.
	t := time.Now()
	if err := r.gate(ctx, c, a, want); err != nil {
		if aerr := entry("gate", want, nil, err, t); aerr != nil {
			err = fmt.Errorf("%w; %v", err, aerr)
		}
		return fail("health gate", err)
	}
	if err := entry("gate", want, nil, nil, t); err != nil {
		return fail("gate passed, but", err)
	}
	steps = append(steps, fmt.Sprintf("gate %d ms", time.Since(t).Milliseconds()))
	if err := r.setProgress(a.ID, func(ap *AgentProgress) {
		t := time.Now().UTC()
		ap.Status, ap.Error, ap.Finished = progDone, "", &t
	}); err != nil {
		return fail("gate passed, but", err)
	}
	what := "found at the target"
	if changed {
		what = strings.Join(diff(active, want), ", ")
	}
	r.progressed(fmt.Sprintf("%s %s: done %s (%s; %s)", agentName(a), r.pool.addr(a), what, strings.Join(steps, ", "), time.Since(start).Round(time.Millisecond)))
	return nil
}

// gate is the health gate after an agent's change: its checks pass, the
// master still has it registered and active, and its active set reads
// back as the target.
func (r *rollout) gate(ctx context.Context, c gateClient, a Agent, want []string) error {
	// An activation may restart services, pkgpandad or the agent itself:
	// checks can fail, the agent can be unreachable or inactive for a
	// while. Those are retried for --gate-wait; an active set that reads
	// back as another, or an agent the master no longer knows, fail at
	// once.
	deadline := time.Now().Add(r.o.gateWait)
	delay := 250 * time.Millisecond
	for tries := 1; ; tries++ {
		err, final := r.gateOnce(ctx, c, a, want)
		if err == nil || final || ctx.Err() != nil {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			if tries > 1 {
				err = fmt.Errorf("%w (still failing after %d tries in %s)", err, tries, r.o.gateWait)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(delay, left)): // a back-off, not a synchronisation
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// gateClient is what the gate asks of an agent's pkgpanda.
type gateClient interface {
	Check(context.Context) (string, error)
	Active(context.Context) ([]string, error)
}

// gateOnce runs the gate once; final reports a failure that waiting
// cannot mend.
func (r *rollout) gateOnce(ctx context.Context, c gateClient, a Agent, want []string) (err error, final bool) {
	if _, err := c.Check(ctx); err != nil {
		return fmt.Errorf("pkgpanda check: %w", describe(ctx, err)), false
	}
	agents, err := r.m.GetAgents(ctx)
	if err != nil {
		return err, false
	}
	i := slices.IndexFunc(agents, func(x Agent) bool { return x.ID == a.ID })
	if i < 0 {
		return errors.New("the master no longer knows the agent"), true
	}
	if agents[i].State != StateActive {
		return fmt.Errorf("the master reports the agent %s", agents[i].State), false
	}
	rctx, cancel := context.WithTimeout(ctx, r.pool.cfg.timeout)
	defer cancel()
	got, err := c.Active(rctx)
	if err != nil {
		return fmt.Errorf("reading the active set back: %w", describe(rctx, err)), false
	}
	if got = sortedCopy(got); !slices.Equal(got, want) {
		return fmt.Errorf("the active set reads back as %s, not %s (changed by another client?)", strings.Join(got, ","), strings.Join(want, ",")), true
	}
	return nil, false
}

// progressed counts a finished agent and prints its line.
func (r *rollout) progressed(line string) {
	r.mu.Lock()
	r.finished++
	n := r.finished
	r.mu.Unlock()
	r.out.agent(n, r.total, line)
}

// report prints where every agent of the state stands.
func (r *rollout) report(w io.Writer, p *Plan) {
	r.sf.mu.Lock()
	defer r.sf.mu.Unlock()
	fmt.Fprintln(w, "\nREPORT (state file "+r.o.statePath+")")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tADDRESS\tSTATUS\tCHANGE\tDETAIL")
	var ids []string
	for id := range r.st.Agents {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y string) int {
		return strings.Compare(r.st.Agents[x].Hostname+x, r.st.Agents[y].Hostname+y)
	})
	for _, id := range ids {
		ap := r.st.Agents[id]
		change := ""
		if ap.Status != progAtTarget && ap.Status != progNotTouchd && ap.Status != progGone {
			change = strings.Join(diff(ap.From, ap.To), ", ")
			switch {
			case ap.Changed:
				change += " (activated)"
			case ap.Status == progDone && !slices.Equal(ap.From, ap.To):
				change += " (found at the target)"
			case ap.Status != progDone:
				change += " (not activated)"
			}
		}
		fmt.Fprintf(tw, "%s (%s)\t%s\t%s\t%s\t%s\n", ap.Hostname, id, ap.Address, ap.Status, change, ap.Error)
	}
	tw.Flush()
}
