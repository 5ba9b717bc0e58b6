package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// PackageCount is one row of the cluster table: how many agents have
// version Version of package Name active.
type PackageCount struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Agents   int    `json:"agents"`
	Target   bool   `json:"target,omitempty"`   // the target's version
	Majority bool   `json:"majority,omitempty"` // the most common version (no target)
}

// AgentDiff is an agent that differs from the target (or the majority).
type AgentDiff struct {
	Agent       Agent    `json:"agent"`
	Address     string   `json:"address"`
	Active      []string `json:"active"`
	Differences []string `json:"differences"`
}

// AgentFailure is an agent that could not be read, with the reason.
type AgentFailure struct {
	Agent   Agent  `json:"agent"`
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

// StatusReport is what `status` prints (as a table, or with --json).
type StatusReport struct {
	Master      string         `json:"master"`
	Target      []string       `json:"target,omitempty"`
	Exact       bool           `json:"exact,omitempty"`
	Agents      int            `json:"agents"`      // known to the master
	Answered    int            `json:"answered"`    // eligible agents that answered
	AtTarget    int            `json:"at_target"`   // answered and not differing
	Packages    []PackageCount `json:"packages"`    // by name, then version
	Differing   []AgentDiff    `json:"differing"`   // agents off target/majority
	Unreachable []AgentFailure `json:"unreachable"` // unreachable, refusing, timed out, garbage
	NotTouched  []Agent        `json:"not_touched"` // draining, deactivated, inactive, recovered
	ElapsedMS   int64          `json:"elapsed_ms"`
}

// clean reports whether every eligible agent answered and none differs.
func (r *StatusReport) clean() bool { return len(r.Differing) == 0 && len(r.Unreachable) == 0 }

// buildStatus gathers the cluster's state.
func buildStatus(ctx context.Context, m *masterClient, pool *agentPool, t Target) (*StatusReport, error) {
	start := time.Now()
	agents, err := m.GetAgents(ctx)
	if err != nil {
		return nil, err
	}
	reads := readViews(ctx, pool, agents, false)
	r := summarize(agents, reads, pool, t)
	r.Master = m.Leader()
	r.ElapsedMS = time.Since(start).Milliseconds()
	return r, nil
}

// summarize builds the report from the agents and what they answered.
func summarize(agents []Agent, reads []agentView, pool *agentPool, t Target) *StatusReport {
	r := &StatusReport{Target: t.IDs, Exact: t.Exact, Agents: len(agents),
		Packages: []PackageCount{}, Differing: []AgentDiff{}, Unreachable: []AgentFailure{}, NotTouched: []Agent{}}
	counts := map[[2]string]int{}
	var answered []int
	for i, a := range agents {
		switch {
		case !a.eligible():
			r.NotTouched = append(r.NotTouched, a)
		case reads[i].err != nil:
			r.Unreachable = append(r.Unreachable, AgentFailure{Agent: a, Address: pool.addr(a), Reason: reads[i].err.Error()})
		default:
			answered = append(answered, i)
			for _, id := range reads[i].active {
				counts[[2]string{nameOf(id), versionOf(id)}]++
			}
		}
	}
	r.Answered = len(answered)
	// The reference each agent is compared with: the target, or else
	// the majority version of every package at least half the agents
	// have active.
	ref := t
	if t.empty() {
		ref = majority(counts, len(answered))
	}
	inRef := map[[2]string]bool{}
	for _, id := range ref.IDs {
		inRef[[2]string{nameOf(id), versionOf(id)}] = true
	}
	for k, n := range counts {
		pc := PackageCount{Name: k[0], Version: k[1], Agents: n}
		if t.empty() {
			pc.Majority = inRef[k]
		} else {
			pc.Target = inRef[k]
		}
		r.Packages = append(r.Packages, pc)
	}
	// Target versions nobody has yet still get a row.
	for _, id := range t.IDs {
		k := [2]string{nameOf(id), versionOf(id)}
		if counts[k] == 0 {
			r.Packages = append(r.Packages, PackageCount{Name: k[0], Version: k[1], Target: true})
		}
	}
	sort.Slice(r.Packages, func(i, j int) bool {
		if r.Packages[i].Name != r.Packages[j].Name {
			return r.Packages[i].Name < r.Packages[j].Name
		}
		return r.Packages[i].Version < r.Packages[j].Version
	})
	for _, i := range answered {
		want := ref.desired(reads[i].active)
		if d := diff(reads[i].active, want); len(d) > 0 {
			r.Differing = append(r.Differing, AgentDiff{Agent: agents[i], Address: pool.addr(agents[i]), Active: reads[i].active, Differences: d})
		} else {
			r.AtTarget++
		}
	}
	return r
}

// majority is, for every package name active on more than half the
// agents, its most common version (ties: the greatest version string).
func majority(counts map[[2]string]int, agents int) Target {
	perName := map[string]int{}
	best := map[string][2]string{}
	for k, n := range counts {
		perName[k[0]] += n
		b, ok := best[k[0]]
		if !ok || n > counts[b] || (n == counts[b] && k[1] > b[1]) {
			best[k[0]] = k
		}
	}
	var t Target
	for name, n := range perName {
		if 2*n > agents {
			t.IDs = append(t.IDs, name+"--"+best[name][1])
		}
	}
	sort.Strings(t.IDs)
	return t
}

// printStatus writes the report as tables.
func printStatus(w io.Writer, r *StatusReport) {
	fmt.Fprintf(w, "master %s: %d agents, %d answered, %d at %s, %d differ, %d unreachable or refusing, %d not touched (%d ms)\n",
		r.Master, r.Agents, r.Answered, r.AtTarget, refName(r), len(r.Differing), len(r.Unreachable), len(r.NotTouched), r.ElapsedMS)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPACKAGE\tVERSION\tAGENTS\t")
	prev := ""
	for _, p := range r.Packages {
		name := p.Name
		if name == prev {
			name = ""
		}
		prev = p.Name
		mark := ""
		switch {
		case p.Target:
			mark = "target"
		case p.Majority:
			mark = "majority"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", name, p.Version, p.Agents, mark)
	}
	tw.Flush()
	if len(r.Differing) > 0 {
		fmt.Fprintf(w, "\nDIFFERING FROM THE %s\n", strings.ToUpper(refName(r)))
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "AGENT\tADDRESS\tDIFFERENCE (agent's → %s)\n", refName(r))
		for _, d := range r.Differing {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", agentName(d.Agent), d.Address, strings.Join(d.Differences, ", "))
		}
		tw.Flush()
	}
	if len(r.Unreachable) > 0 {
		fmt.Fprintln(w, "\nUNREACHABLE OR REFUSING")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AGENT\tADDRESS\tREASON")
		for _, u := range r.Unreachable {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", agentName(u.Agent), u.Address, u.Reason)
		}
		tw.Flush()
	}
	if len(r.NotTouched) > 0 {
		fmt.Fprintln(w, "\nNOT TOUCHED (as the master reports them)")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AGENT\tSTATE")
		for _, a := range r.NotTouched {
			fmt.Fprintf(tw, "%s\t%s\n", agentName(a), a.State)
		}
		tw.Flush()
	}
}

func refName(r *StatusReport) string {
	if len(r.Target) > 0 {
		return "target"
	}
	return "majority"
}

// agentName is how an agent is named in output: hostname (id).
func agentName(a Agent) string {
	if a.Hostname == "" {
		return a.ID
	}
	return a.Hostname + " (" + a.ID + ")"
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
