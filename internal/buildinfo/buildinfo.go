// Package buildinfo says which version of procpanda a command is.
package buildinfo

import "runtime/debug"

// Version is what a command's --version prints: stamped (set at build
// time, e.g. make build's -ldflags "-X main.version=$(git describe
// --always --dirty)"), else the module version `go install …@version`
// records, else "(devel)".
func Version(stamped string) string {
	if stamped != "" {
		return stamped
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
