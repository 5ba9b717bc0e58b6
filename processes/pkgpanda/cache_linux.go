package pkgpanda

import (
	"errors"
	"os"
	"syscall"
)

// statPath is the fsStat of Linux.
func statPath(path string, follow bool) (fileStamp, error) {
	var st syscall.Stat_t
	var err error
	if follow {
		err = syscall.Stat(path, &st)
	} else {
		err = syscall.Lstat(path, &st)
	}
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return fileStamp{
		exists: true,
		dev:    uint64(st.Dev),
		ino:    uint64(st.Ino),
		mode:   uint32(st.Mode),
		link:   uint32(st.Mode)&syscall.S_IFMT == syscall.S_IFLNK,
		size:   int64(st.Size),
		mtime:  st.Mtim.Nano(),
		ctime:  st.Ctim.Nano(),
	}, nil
}

// statfsType is the fsType of Linux.
func statfsType(path string) (uint32, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(path, &fs); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return uint32(fs.Type), nil
}
