package cli

import (
	"fmt"
	"sort"
	"strings"
)

// ParseError is returned by the output parsers for output that does not
// follow the ABI.
type ParseError struct {
	// Command is the subcommand whose output was parsed.
	Command string
	// Line is the 1-based line number of the offending line, 0 if none.
	Line int
	// Text is the offending line.
	Text string
	// Reason says what is wrong.
	Reason string
}

// Error names the command, line and reason.
func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("parsing pkgpanda %s output: %s", e.Command, e.Reason)
	}
	return fmt.Sprintf("parsing pkgpanda %s output: line %d %q: %s", e.Command, e.Line, e.Text, e.Reason)
}

// lines splits output into lines. A final newline is optional; an empty
// output has no lines.
func lines(out []byte) []string {
	s := string(out)
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// ParseList parses the stdout of `pkgpanda list`: ids sorted and grouped
// by name, a name with one version printed as the full id on its own line,
// a name with several versions printed as `name:` followed by one
// two-space-indented version line each. It returns the ids, sorted. Any
// other line, a duplicate id, a group with fewer than two versions or a
// version line outside a group is an error.
func ParseList(stdout []byte) ([]string, error) {
	perr := func(n int, l, why string) error {
		return &ParseError{Command: "list", Line: n, Text: l, Reason: why}
	}
	ids := []string{}
	seen := map[string]bool{}
	group, groupLine, groupSize := "", 0, 0
	closeGroup := func() error {
		if group != "" && groupSize < 2 {
			return perr(groupLine, group+":", "a group needs at least two versions")
		}
		group, groupSize = "", 0
		return nil
	}
	add := func(n int, l, id string) error {
		if seen[id] {
			return perr(n, l, "duplicate id "+id)
		}
		seen[id] = true
		ids = append(ids, id)
		return nil
	}
	for i, l := range lines(stdout) {
		n := i + 1
		switch {
		case strings.HasPrefix(l, "  "):
			v := l[2:]
			if group == "" {
				return nil, perr(n, l, "version line outside a name group")
			}
			if !ValidVersion(v) || ValidID(group+"--"+v) != nil {
				return nil, perr(n, l, "invalid version")
			}
			groupSize++
			if err := add(n, l, group+"--"+v); err != nil {
				return nil, err
			}
		case strings.HasSuffix(l, ":") && !strings.Contains(l, "--"):
			if err := closeGroup(); err != nil {
				return nil, err
			}
			name := strings.TrimSuffix(l, ":")
			if !ValidName(name) {
				return nil, perr(n, l, "invalid package name")
			}
			group, groupLine = name, n
		default:
			if err := closeGroup(); err != nil {
				return nil, err
			}
			if err := ValidID(l); err != nil {
				return nil, perr(n, l, err.Error())
			}
			if err := add(n, l, l); err != nil {
				return nil, err
			}
		}
	}
	if err := closeGroup(); err != nil {
		return nil, err
	}
	sort.Strings(ids)
	return ids, nil
}

// ParseActive parses the stdout of `pkgpanda active`: one valid id per
// line. It returns the ids sorted. Any other line, or two ids of the same
// package name, is an error.
func ParseActive(stdout []byte) ([]string, error) {
	ids := []string{}
	names := map[string]string{}
	for i, l := range lines(stdout) {
		id, err := ParseID(l)
		if err != nil {
			return nil, &ParseError{Command: "active", Line: i + 1, Text: l, Reason: err.Error()}
		}
		if prev, dup := names[id.Name]; dup {
			return nil, &ParseError{Command: "active", Line: i + 1, Text: l, Reason: "package name already active as " + prev}
		}
		names[id.Name] = l
		ids = append(ids, l)
	}
	sort.Strings(ids)
	return ids, nil
}

// PackageChecks lists the checks of one active package.
type PackageChecks struct {
	// ID is the active package's id.
	ID string
	// Checks are the check file names, in the order printed.
	Checks []string
}

// ParseCheckList parses the stdout of `pkgpanda check --list`: each active
// package that has checks, as its id on a line of its own, followed by one
// ` - <check file>` line per check. A package line without checks, or any
// other line, is an error.
func ParseCheckList(stdout []byte) ([]PackageChecks, error) {
	perr := func(n int, l, why string) error {
		return &ParseError{Command: "check --list", Line: n, Text: l, Reason: why}
	}
	out := []PackageChecks{}
	lastLine := 0
	for i, l := range lines(stdout) {
		n := i + 1
		if f, ok := strings.CutPrefix(l, " - "); ok {
			if len(out) == 0 {
				return nil, perr(n, l, "check line before any package line")
			}
			if strings.TrimSpace(f) == "" || strings.ContainsAny(f, "/\r") {
				return nil, perr(n, l, "bad check file name")
			}
			out[len(out)-1].Checks = append(out[len(out)-1].Checks, f)
			continue
		}
		if len(out) > 0 && len(out[len(out)-1].Checks) == 0 {
			return nil, perr(lastLine, out[len(out)-1].ID, "package line without checks")
		}
		if err := ValidID(l); err != nil {
			return nil, perr(n, l, err.Error())
		}
		out = append(out, PackageChecks{ID: l})
		lastLine = n
	}
	if len(out) > 0 && len(out[len(out)-1].Checks) == 0 {
		return nil, perr(lastLine, out[len(out)-1].ID, "package line without checks")
	}
	return out, nil
}

// Progress is one id's line of `pkgpanda fetch` or `pkgpanda remove`
// progress output.
type Progress struct {
	// ID is the package id the line is about.
	ID string
	// Done is true when the line shows completion (`Fetched:`/`Removed:`);
	// false means the operation started and did not finish.
	Done bool
	// AlreadyAdded is true for a fetch of a package that was already in
	// the repository (`Package already added.`).
	AlreadyAdded bool
}

const alreadyAdded = "Package already added."

// ParseFetch parses the stdout of `pkgpanda fetch`: per id, one line made
// of `\rFetching: <id>` then, on success, `\rFetched: <id>`. The CLI's
// `Package already added.` note may follow the `Fetching:` part. Any other
// text is an error.
func ParseFetch(stdout []byte) ([]Progress, error) {
	return parseProgress("fetch", stdout, "Fetching: ", "Fetched: ")
}

// ParseRemove parses the stdout of `pkgpanda remove`: per removed id, one
// line made of `\rRemoving: <id>` then, on success, `\rRemoved: <id>`.
// An id that was not in the repository (silently skipped, exit 0) shows
// the `Removing:` part only, like a removal that failed. Any other text is
// an error.
func ParseRemove(stdout []byte) ([]Progress, error) {
	return parseProgress("remove", stdout, "Removing: ", "Removed: ")
}

func parseProgress(cmd string, stdout []byte, startPfx, donePfx string) ([]Progress, error) {
	out := []Progress{}
	for i, l := range lines(stdout) {
		perr := func(why string) error {
			return &ParseError{Command: cmd, Line: i + 1, Text: l, Reason: why}
		}
		segs := strings.Split(l, "\r")
		if segs[0] != "" || len(segs) < 2 || len(segs) > 3 {
			return nil, perr("want \\r" + startPfx + "<id>[\\r" + donePfx + "<id>]")
		}
		// The CLI ends `Package already added.` with a newline, so that
		// fetch's completion comes on a line of its own.
		if len(segs) == 2 && len(out) > 0 {
			last := &out[len(out)-1]
			if done, ok := strings.CutPrefix(segs[1], donePfx); ok && last.AlreadyAdded && !last.Done {
				if done != last.ID {
					return nil, perr("completion does not match " + last.ID)
				}
				last.Done = true
				continue
			}
		}
		start, ok := strings.CutPrefix(segs[1], startPfx)
		if !ok {
			return nil, perr("missing " + strings.TrimSpace(startPfx))
		}
		p := Progress{}
		if cmd == "fetch" {
			start, p.AlreadyAdded = strings.CutSuffix(start, alreadyAdded)
		}
		if err := ValidID(start); err != nil {
			return nil, perr(err.Error())
		}
		p.ID = start
		if len(segs) == 3 {
			done, ok := strings.CutPrefix(segs[2], donePfx)
			if !ok || done != start {
				return nil, perr("completion does not match " + start)
			}
			p.Done = true
		}
		out = append(out, p)
	}
	return out, nil
}

// FormatList renders ids the way `pkgpanda list` prints them: sorted,
// grouped by name, a lone version as the full id, several versions as
// `name:` and two-space-indented version lines. Ids that are not valid
// are an error. ParseList(FormatList(ids)) gives back the sorted ids.
func FormatList(ids []string) ([]byte, error) {
	parsed := make([]ID, 0, len(ids))
	for _, s := range ids {
		id, err := ParseID(s)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, id)
	}
	sort.Slice(parsed, func(i, j int) bool { return parsed[i].String() < parsed[j].String() })
	var b strings.Builder
	for i := 0; i < len(parsed); {
		j := i
		for j < len(parsed) && parsed[j].Name == parsed[i].Name {
			j++
		}
		if j-i == 1 {
			b.WriteString(parsed[i].String() + "\n")
		} else {
			b.WriteString(parsed[i].Name + ":\n")
			for _, id := range parsed[i:j] {
				b.WriteString("  " + id.Version + "\n")
			}
		}
		i = j
	}
	return []byte(b.String()), nil
}
