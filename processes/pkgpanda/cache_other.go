//go:build !linux

package pkgpanda

import "errors"

// errNoStat is returned by the stat functions where the platform has no
// support for them; reuse is then off.
var errNoStat = errors.New("file stamps are not supported on this platform")

// statPath is the fsStat of platforms without support: reuse is off.
func statPath(path string, follow bool) (fileStamp, error) { return fileStamp{}, errNoStat }

// statfsType is the fsType of platforms without support.
func statfsType(path string) (uint32, error) { return 0, errNoStat }
