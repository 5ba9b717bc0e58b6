package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// unixSocket describes the --unix-socket the daemon serves HTTP on.
type unixSocket struct {
	path  string
	mode  fs.FileMode
	group string // name or numeric gid; empty keeps the daemon's group
}

// parseSocketMode parses --unix-socket-mode, an octal permission such as
// 0660; only permission bits are allowed.
func parseSocketMode(s string) (fs.FileMode, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v&^0o777 != 0 {
		return 0, fmt.Errorf("--unix-socket-mode %q: want octal permission bits such as 0660", s)
	}
	return fs.FileMode(v), nil
}

// lookupGID resolves --unix-socket-group: a group name, or a numeric gid.
func lookupGID(group string) (int, error) {
	if g, err := user.LookupGroup(group); err == nil {
		return strconv.Atoi(g.Gid)
	}
	if gid, err := strconv.Atoi(group); err == nil && gid >= 0 {
		return gid, nil
	}
	return 0, fmt.Errorf("--unix-socket-group %q: no such group", group)
}

// removeStale removes a socket file left by a daemon that is gone. It
// refuses anything that is not a socket, and a socket something still
// listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket (%s): refusing to replace it", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use: another server listens on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: cannot tell whether it is in use (%v): refusing to replace it", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing the stale socket %s: %w", path, err)
	}
	return nil
}

// listen creates the socket: a stale one is replaced (removeStale), the
// file is created under umask 0177 (owner-only) and gets its group and
// then its mode before anything is served on it, so it is never more
// open than asked. Closing the listener removes the file.
func (u unixSocket) listen() (*net.UnixListener, error) {
	gid := -1
	if u.group != "" {
		var err error
		if gid, err = lookupGID(u.group); err != nil {
			return nil, err
		}
	}
	if err := removeStale(u.path); err != nil {
		return nil, err
	}
	// The umask is process-wide: this runs at start-up, before the
	// runtime or any subprocess creates files.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: u.path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", u.path, err)
	}
	ln.SetUnlinkOnClose(true)
	if gid >= 0 {
		if err := os.Lchown(u.path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("setting the group of %s to %s: %w", u.path, u.group, err)
		}
	}
	if err := os.Chmod(u.path, u.mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("setting the mode of %s to %#o: %w", u.path, u.mode, err)
	}
	return ln, nil
}
