package main

import "runtime/debug"

// version is stamped at build time (make build: -ldflags "-X
// main.version=$(git describe --always --dirty)"); empty otherwise.
var version string

// versionString is what `pkgpanda-fleet version` prints: the stamped version, else the
// module version `go install …@version` records, else "(devel)".
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
