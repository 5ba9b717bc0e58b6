//go:build !linux

package pkgpanda

// statPath is the fsStat of platforms without support: reuse is off.
func statPath(path string, follow bool) (fileStamp, error) { return fileStamp{}, errNoStat }

// statfsType is the fsType of platforms without support.
func statfsType(path string) (uint32, error) { return 0, errNoStat }
