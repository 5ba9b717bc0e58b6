package cli

import (
	"fmt"
	"strings"
)

// Kind classifies a failed CLI run. A Kind is also an error so that
// errors.Is(err, cli.KindValidation) tests a *ToolError's kind.
type Kind int

const (
	// KindOther: a failure that matches no other kind (a crash, a signal,
	// unexpected output).
	KindOther Kind = iota
	// KindValidation: `Validation Error: …` — bad id, bad tarball name,
	// conflicts such as removing an active package.
	KindValidation
	// KindPackage: `Package Error: …` — a package missing or unreadable.
	KindPackage
	// KindError: `ERROR: …` — anything else the tool reported, e.g. a
	// download failure or a broken install.
	KindError
	// KindUsage: the tool printed its usage text (unknown command, missing
	// arguments).
	KindUsage
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindValidation:
		return "validation error"
	case KindPackage:
		return "package error"
	case KindError:
		return "error"
	case KindUsage:
		return "usage error"
	}
	return "other failure"
}

// Error lets a Kind serve as an errors.Is target.
func (k Kind) Error() string { return "pkgpanda: " + k.String() }

// ToolError is a classified failure of the CLI.
type ToolError struct {
	// Kind is the class of failure.
	Kind Kind
	// Message is the tool's own message without its prefix (for
	// KindUsage and KindOther: the trimmed stderr, or stdout if stderr
	// was empty).
	Message string
	// ExitCode is the tool's exit status (-1 if a signal ended it).
	ExitCode int
}

// Error gives the kind and the tool's message.
func (e *ToolError) Error() string {
	return fmt.Sprintf("pkgpanda %s (exit %d): %s", e.Kind, e.ExitCode, e.Message)
}

// Is reports whether target is e's Kind.
func (e *ToolError) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

var prefixes = []struct {
	prefix string
	kind   Kind
}{
	{"Validation Error: ", KindValidation},
	{"Package Error: ", KindPackage},
	{"ERROR: ", KindError},
}

// lastLine returns the last non-blank line of s, trimmed of surrounding
// white space and of any text before a final carriage return.
func lastLine(s string) string {
	ls := strings.Split(strings.TrimRight(s, " \t\r\n"), "\n")
	l := ls[len(ls)-1]
	if i := strings.LastIndexByte(l, '\r'); i >= 0 {
		l = l[i+1:]
	}
	return strings.TrimSpace(l)
}

// isUsage reports whether s looks like the tool's usage text.
func isUsage(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "Usage:") || strings.Contains(s, "\nUsage:") || strings.HasPrefix(t, "usage:")
}

// Classify turns a finished run into nil (exit status 0) or a *ToolError.
// The error line is the last non-blank line of stderr; when stderr holds
// no recognised line, the last line of stdout is tried too (released
// pkgpanda versions print their error line on stdout). A line starting
// with `Validation Error: `, `Package Error: ` or `ERROR: ` gives that
// kind; otherwise usage text gives KindUsage, and anything else
// KindOther.
func Classify(exitCode int, stdout, stderr []byte) error {
	if exitCode == 0 {
		return nil
	}
	for _, out := range [][]byte{stderr, stdout} {
		l := lastLine(string(out))
		for _, p := range prefixes {
			if msg, ok := strings.CutPrefix(l, p.prefix); ok {
				return &ToolError{Kind: p.kind, Message: msg, ExitCode: exitCode}
			}
		}
	}
	msg := strings.TrimSpace(string(stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(stdout))
	}
	kind := KindOther
	if isUsage(string(stderr)) || (len(strings.TrimSpace(string(stderr))) == 0 && isUsage(string(stdout))) {
		kind = KindUsage
	}
	return &ToolError{Kind: kind, Message: msg, ExitCode: exitCode}
}
