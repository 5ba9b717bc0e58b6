// Package cli speaks the pkgpanda command-line tool's ABI (its argv,
// stdout, stderr and exit status): it validates package ids, builds the argv
// of each subcommand with the global options after the subcommand's own
// arguments, parses the tool's stdout strictly, and classifies its
// failures from the exit status and stderr. It runs nothing itself.
package cli

import (
	"fmt"
	"strings"
)

// The CLI's id patterns. They are checked byte by byte (matchName,
// matchVersion), not with package regexp: every list a read parses checks
// each id, and on a processor whose caches went cold while the daemon
// idled, the two matches per id were about a third of the time parsing a
// short list took.
const (
	namePattern    = `^[a-zA-Z0-9@_+][a-zA-Z0-9@._+\-]*$`
	versionPattern = `^[a-zA-Z0-9@_+:.]+$`
)

// wordByte reports whether c is in [a-zA-Z0-9@_+], the bytes both
// patterns allow everywhere.
func wordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '@' || c == '_' || c == '+'
}

// matchName reports whether s matches namePattern.
func matchName(s string) bool {
	if s == "" || !wordByte(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !wordByte(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// matchVersion reports whether s matches versionPattern.
func matchVersion(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !wordByte(c) && c != ':' && c != '.' {
			return false
		}
	}
	return true
}

// ID is a parsed package id, `<Name>--<Version>`.
type ID struct {
	// Name is the package name: `^[a-zA-Z0-9@_+][a-zA-Z0-9@._+\-]*$`,
	// without "--".
	Name string
	// Version is the package version: `^[a-zA-Z0-9@_+:.]+$`.
	Version string
}

// String returns the id as the CLI writes it: name, "--", version.
func (id ID) String() string { return id.Name + "--" + id.Version }

// Validate reports whether id, which may have been built by hand, is one
// ParseID would accept.
func (id ID) Validate() error {
	_, err := ParseID(id.String())
	return err
}

// IDError is returned for a string that is not a valid package id.
type IDError struct {
	// ID is the rejected string.
	ID string
	// Reason says what is wrong with it.
	Reason string
}

// Error gives the rejected id and the reason.
func (e *IDError) Error() string { return fmt.Sprintf("invalid package id %q: %s", e.ID, e.Reason) }

// ParseID splits s into name and version, exactly as the CLI does: s must
// contain exactly one "--" (so splitting on "--" yields two parts), the
// name must match `^[a-zA-Z0-9@_+][a-zA-Z0-9@._+\-]*$` and the version
// `^[a-zA-Z0-9@_+:.]+$`. Anything else is an *IDError.
func ParseID(s string) (ID, error) {
	i := strings.Index(s, "--")
	if i < 0 || strings.Contains(s[i+2:], "--") {
		return ID{}, &IDError{ID: s, Reason: "must contain exactly one '--' separating name and version"}
	}
	name, version := s[:i], s[i+2:]
	if !matchName(name) {
		return ID{}, &IDError{ID: s, Reason: "name must match " + namePattern}
	}
	if !matchVersion(version) {
		return ID{}, &IDError{ID: s, Reason: "version must match " + versionPattern}
	}
	return ID{Name: name, Version: version}, nil
}

// ValidID reports whether s is a valid package id; see ParseID.
func ValidID(s string) error {
	_, err := ParseID(s)
	return err
}

// ValidName reports whether s can be the name of a valid id: it matches
// the name pattern, contains no "--" and does not end with '-' (which
// would make "--" ambiguous in `<name>--<version>`).
func ValidName(s string) bool {
	return matchName(s) && !strings.Contains(s, "--") && !strings.HasSuffix(s, "-")
}

// ValidVersion reports whether s is a valid package version.
func ValidVersion(s string) bool { return matchVersion(s) }
