//go:build !linux

package subprocess

import (
	"os/exec"
	"syscall"
)

// waitsWithoutReaping: there is no waitid(WNOWAIT) here; reap waits.
const waitsWithoutReaping = false

// childAttr puts the child in a process group of its own. There is no
// parent-death signal outside Linux.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// startChild starts cmd.
func startChild(cmd *exec.Cmd) (unlock func(), err error) {
	return func() {}, cmd.Start()
}

// waitExited returns at once: the reap waits for the child instead.
func waitExited(pid int) error { return nil }
