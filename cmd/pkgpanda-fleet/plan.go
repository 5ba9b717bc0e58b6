package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// planOptions shape the batches.
type planOptions struct {
	target        Target
	repositoryURL string
	canary        int  // agents in the canary batch
	batch         int  // agents per later batch
	noRepoCheck   bool // leave the check of --repository-url to the agents' fetches
}

// planned is one agent to change.
type planned struct {
	agent Agent
	from  []string
	to    []string
	fetch []string
}

// Plan is what a rollout will do.
type Plan struct {
	Target      Target
	Master      string
	Batches     [][]planned
	AtTarget    []Agent
	Done        []Agent // resumed: done in an earlier run
	Unreachable []AgentFailure
	NotTouched  []Agent
	Gone        []string // resumed: planned agents the master no longer knows
	Resumed     bool
}

// changing is how many agents the plan changes.
func (p *Plan) changing() int {
	n := 0
	for _, b := range p.Batches {
		n += len(b)
	}
	return n
}

// makePlan plans a rollout from the master's agents and their live
// state; prev, when not nil, is the state of an earlier run to continue.
func makePlan(ctx context.Context, m *masterClient, pool *agentPool, o planOptions, prev *State) (*Plan, error) {
	agents, err := m.GetAgents(ctx)
	if err != nil {
		return nil, err
	}
	views := readViews(ctx, pool, agents, true)
	p := &Plan{Target: o.target, Master: m.Leader(), Resumed: prev != nil}
	byID := map[string]planned{}
	var order []string
	known := map[string]bool{}
	for i, a := range agents {
		known[a.ID] = true
		if prev != nil && prev.Agents[a.ID] != nil && prev.Agents[a.ID].Status == progDone {
			p.Done = append(p.Done, a)
			continue
		}
		switch {
		case !a.eligible():
			p.NotTouched = append(p.NotTouched, a)
		case views[i].err != nil:
			p.Unreachable = append(p.Unreachable, AgentFailure{Agent: a, Address: pool.addr(a), Reason: views[i].err.Error()})
		default:
			want := o.target.desired(views[i].active)
			// An agent an earlier run started or failed on gets its gate
			// run even when it reads back at the target.
			recheck := prev != nil && prev.Agents[a.ID] != nil &&
				(prev.Agents[a.ID].Status == progRunning || prev.Agents[a.ID].Status == progFailed)
			if slices.Equal(want, sortedCopy(views[i].active)) && !recheck {
				p.AtTarget = append(p.AtTarget, a)
				continue
			}
			var fetch []string
			for _, id := range o.target.IDs {
				if !slices.Contains(views[i].repo, id) {
					fetch = append(fetch, id)
				}
			}
			byID[a.ID] = planned{agent: a, from: sortedCopy(views[i].active), to: want, fetch: fetch}
			order = append(order, a.ID)
		}
	}
	if prev != nil {
		for id, ap := range prev.Agents {
			if !known[id] && (ap.Status == progPending || ap.Status == progRunning || ap.Status == progFailed) {
				p.Gone = append(p.Gone, id+" ("+ap.Hostname+")")
			}
		}
		sort.Strings(p.Gone)
	}
	if err := checkAvailable(ctx, byID, o.repositoryURL, o.noRepoCheck); err != nil {
		return nil, err
	}
	// Batches: an earlier run's order first (its canary has run if any
	// agent is done), then the agents it did not plan.
	var batches [][]string
	used := map[string]bool{}
	if prev != nil {
		for _, b := range prev.Batches {
			var nb []string
			for _, id := range b {
				if _, ok := byID[id]; ok && !used[id] {
					nb = append(nb, id)
					used[id] = true
				}
			}
			if len(nb) > 0 {
				batches = append(batches, nb)
			}
		}
		var rest []string
		for _, id := range order {
			if !used[id] {
				rest = append(rest, id)
			}
		}
		batches = append(batches, chunk(rest, o.batch)...)
	} else {
		first := min(o.canary, len(order))
		if first > 0 {
			batches = append(batches, order[:first])
		}
		batches = append(batches, chunk(order[first:], o.batch)...)
	}
	for _, b := range batches {
		pb := make([]planned, 0, len(b))
		for _, id := range b {
			pb = append(pb, byID[id])
		}
		p.Batches = append(p.Batches, pb)
	}
	return p, nil
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

func chunk(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > 0 {
		k := min(n, len(ids))
		out = append(out, ids[:k])
		ids = ids[k:]
	}
	return out
}

// checkAvailable makes sure every id some agent must fetch is in the
// repository at repositoryURL (`<url>/packages/<name>/<id>.tar.xz`, the
// layout pkgpanda fetch reads) before anything changes. The check runs
// where the tool runs (a file:// path is looked up on this machine); skip
// leaves it to the agents' own fetches, the canary's first.
func checkAvailable(ctx context.Context, planned map[string]planned, repositoryURL string, skip bool) error {
	need := map[string][]string{}
	for _, p := range planned {
		for _, id := range p.fetch {
			need[id] = append(need[id], p.agent.Hostname)
		}
	}
	if len(need) == 0 {
		return nil
	}
	var ids []string
	for id := range need {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if repositoryURL == "" {
		return fmt.Errorf("refusing: %s not in the repository of %d agent(s) (e.g. %s) and no --repository-url to fetch from",
			strings.Join(ids, ", "), len(need[ids[0]]), need[ids[0]][0])
	}
	if skip {
		return nil // the canary's fetch is the check
	}
	u, err := url.Parse(repositoryURL)
	if err != nil || (u.Scheme != "file" && u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("--repository-url %q is not a file://, http:// or https:// URL", repositoryURL)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	var missing []string
	for _, id := range ids {
		src := strings.TrimRight(repositoryURL, "/") + "/packages/" + nameOf(id) + "/" + id + ".tar.xz"
		var err error
		if u.Scheme == "file" {
			var st os.FileInfo
			if st, err = os.Stat(strings.TrimPrefix(src, "file://")); err == nil && !st.Mode().IsRegular() {
				err = errors.New("not a regular file")
			}
		} else {
			var req *http.Request
			if req, err = http.NewRequestWithContext(ctx, http.MethodHead, src, nil); err == nil {
				var resp *http.Response
				if resp, err = hc.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s", resp.Status)
					}
				}
			}
		}
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s: %v)", id, src, err))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("refusing: the target names packages no repository has: %s", strings.Join(missing, "; "))
	}
	return nil
}

// printPlan writes the plan.
func printPlan(w io.Writer, p *Plan, pool *agentPool) {
	verb := "plan"
	if p.Resumed {
		verb = "plan (continuing the state file's rollout)"
	}
	fmt.Fprintf(w, "%s for target %s via master %s: %d agents change in %d batches, %d at target, %d done earlier, %d unreachable, %d not touched\n",
		verb, p.Target, p.Master, p.changing(), len(p.Batches), len(p.AtTarget), len(p.Done), len(p.Unreachable), len(p.NotTouched))
	for i, b := range p.Batches {
		label := fmt.Sprintf("batch %d", i+1)
		if i == 0 && !p.Resumed {
			label += " (canary)"
		}
		fmt.Fprintf(w, "%s: %d agents\n", label, len(b))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, pl := range b {
			f := ""
			if len(pl.fetch) > 0 {
				f = "fetch " + strings.Join(pl.fetch, ",")
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", agentName(pl.agent), pool.addr(pl.agent), strings.Join(diff(pl.from, pl.to), ", "), f)
		}
		tw.Flush()
	}
	if len(p.AtTarget) > 0 {
		fmt.Fprintf(w, "skipped, already at the target: %s\n", names(p.AtTarget))
	}
	if len(p.Done) > 0 {
		fmt.Fprintf(w, "done in an earlier run: %s\n", names(p.Done))
	}
	for _, u := range p.Unreachable {
		fmt.Fprintf(w, "unreachable, not touched: %s %s: %s\n", agentName(u.Agent), u.Address, u.Reason)
	}
	for _, a := range p.NotTouched {
		fmt.Fprintf(w, "not touched, %s in the master: %s\n", a.State, agentName(a))
	}
	for _, g := range p.Gone {
		fmt.Fprintf(w, "gone from the master since planned, not touched: %s\n", g)
	}
}

func names(as []Agent) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.Hostname
	}
	return strings.Join(s, ", ")
}
