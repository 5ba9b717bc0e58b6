package main

import "github.com/procpanda/procpanda/internal/buildinfo"

// version is stamped at build time (make build: -ldflags "-X
// main.version=$(git describe --always --dirty)"); empty otherwise.
var version string

// versionString is the version the command reports (see
// buildinfo.Version).
func versionString() string { return buildinfo.Version(version) }
