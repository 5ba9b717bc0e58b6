//go:build !linux

package subprocess

import (
	"syscall"
)

// startChild starts path in a process group of its own. There is no
// parent-death signal and no pidfd outside Linux.
func startChild(path string, argv []string, attr *syscall.ProcAttr, _ bool) (started, func(), error) {
	attr.Sys = &syscall.SysProcAttr{Setpgid: true}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return started{}, func() {}, err
	}
	return started{pid: pid, pidfd: -1}, func() {}, nil
}

// waitExited reaps the child (there is no waitid(WNOWAIT) here), so the
// group is never signalled afterwards, as its id may be reused.
func waitExited(pid int) *exitStatus {
	st := wait4(pid)
	return &st
}

// pipeCloexec makes a close-on-exec pipe.
func pipeCloexec(p *[2]int) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := syscall.Pipe(p[:]); err != nil {
		return err
	}
	syscall.CloseOnExec(p[0])
	syscall.CloseOnExec(p[1])
	return nil
}
