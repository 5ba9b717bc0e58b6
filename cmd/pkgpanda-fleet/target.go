package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// Target is the package set a rollout brings agents to.
type Target struct {
	// IDs are the target package ids, sorted, one per package name.
	IDs []string `json:"ids"`
	// Exact makes IDs the whole active set; otherwise each agent keeps
	// its other active packages and only the named ones change.
	Exact bool `json:"exact"`
}

// parseTarget reads ids given on the command line (comma- or
// space-separated) and in a file (one per line, # comments).
func parseTarget(list, file string, exact bool) (Target, error) {
	var raw []string
	raw = append(raw, strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })...)
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return Target{}, fmt.Errorf("reading the target file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			l := strings.TrimSpace(sc.Text())
			if i := strings.IndexByte(l, '#'); i >= 0 {
				l = strings.TrimSpace(l[:i])
			}
			if l != "" {
				raw = append(raw, strings.Fields(l)...)
			}
		}
		if err := sc.Err(); err != nil {
			return Target{}, fmt.Errorf("reading the target file %s: %w", file, err)
		}
	}
	if len(raw) == 0 {
		return Target{}, nil
	}
	byName := map[string]string{}
	for _, s := range raw {
		id, err := cli.ParseID(s)
		if err != nil {
			return Target{}, fmt.Errorf("target: %w", err)
		}
		if prev, ok := byName[id.Name]; ok && prev != s {
			return Target{}, fmt.Errorf("target names package %s twice: %s and %s", id.Name, prev, s)
		}
		byName[id.Name] = s
	}
	t := Target{Exact: exact}
	for _, id := range byName {
		t.IDs = append(t.IDs, id)
	}
	sort.Strings(t.IDs)
	return t, nil
}

// empty reports whether no target was given.
func (t Target) empty() bool { return len(t.IDs) == 0 }

// String is the target as the tool prints it.
func (t Target) String() string {
	s := strings.Join(t.IDs, ",")
	if t.Exact {
		s += " (exact)"
	}
	return s
}

// nameOf is a package id's name ("" for an id that does not parse).
func nameOf(id string) string {
	p, err := cli.ParseID(id)
	if err != nil {
		return ""
	}
	return p.Name
}

// versionOf is a package id's version.
func versionOf(id string) string {
	p, err := cli.ParseID(id)
	if err != nil {
		return id
	}
	return p.Version
}

// desired is the active set an agent whose active set is active must
// have to be at the target, sorted.
func (t Target) desired(active []string) []string {
	if t.Exact {
		return slices.Clone(t.IDs)
	}
	names := map[string]bool{}
	for _, id := range t.IDs {
		names[nameOf(id)] = true
	}
	out := slices.Clone(t.IDs)
	for _, id := range active {
		if !names[nameOf(id)] {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// diff describes, per package name, what changes from active to want:
// "mesos 1.11.0 → 1.12.0", "+foo 1", "-bar 2".
func diff(active, want []string) []string {
	from, to := map[string]string{}, map[string]string{}
	var names []string
	for _, id := range active {
		n := nameOf(id)
		from[n] = versionOf(id)
		names = append(names, n)
	}
	for _, id := range want {
		n := nameOf(id)
		to[n] = versionOf(id)
		if _, ok := from[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	names = slices.Compact(names)
	var out []string
	for _, n := range names {
		f, inF := from[n]
		w, inT := to[n]
		switch {
		case inF && inT && f != w:
			out = append(out, fmt.Sprintf("%s %s→%s", n, f, w))
		case inF && !inT:
			out = append(out, fmt.Sprintf("-%s %s", n, f))
		case !inF && inT:
			out = append(out, fmt.Sprintf("+%s %s", n, w))
		}
	}
	return out
}
