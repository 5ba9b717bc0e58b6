package subprocess

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// childAttr puts the child in a process group of its own and asks the
// kernel to send it SIGKILL when its parent dies (PR_SET_PDEATHSIG), so a
// crashed or SIGKILLed caller leaves no child running beside whatever
// replaces it. Only the child itself gets the signal; its descendants die
// with the group when the run ends normally. With pidfd set, the kernel
// also returns a pidfd for the child (CLONE_PIDFD), which the run loop
// polls to learn of its exit.
func childAttr(pidfd *int) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, PidFD: pidfd}
}

// startChild starts path with the calling goroutine locked to its OS
// thread, and returns the function that unlocks it; call that only after
// the child is reaped. The kernel sends the parent-death signal when the
// THREAD that forked the child exits, not the process (go.dev/issue/27505).
// Go may end an OS thread when a goroutine locked to it exits; keeping our
// goroutine locked to the forking thread for the child's lifetime means
// no other goroutine can run on that thread (so none can lock it and exit
// with it), and our own goroutine does not exit while locked. The thread
// therefore lives as long as the child unless the whole process dies,
// which is exactly when the signal must fire. A run holds one OS thread
// for its duration; the callers bound their concurrent runs.
//
// The child comes with a pidfd (Linux 5.2 and later) if wantPidfd. A kernel that
// refuses CLONE_PIDFD gets a second attempt without it, and one that
// ignores the flag leaves the pidfd at -1; the run then watches the exit
// with waitExited.
func startChild(path string, argv []string, attr *syscall.ProcAttr, wantPidfd bool) (started, func(), error) {
	runtime.LockOSThread()
	pidfd := -1
	attr.Sys = childAttr(&pidfd)
	if !wantPidfd {
		attr.Sys = childAttr(nil)
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	if wantPidfd && (err == syscall.EINVAL || err == syscall.ENOSYS) {
		pidfd = -1
		attr.Sys = childAttr(nil)
		pid, err = syscall.ForkExec(path, argv, attr)
	}
	if err != nil {
		runtime.UnlockOSThread()
		return started{}, func() {}, err
	}
	return started{pid: pid, pidfd: pidfd}, runtime.UnlockOSThread, nil
}

// waitExited blocks until the child pid has exited, without reaping it,
// so its pid (= the group id) stays reserved while the group is signalled.
// It returns nil: the child is left for reap.
func waitExited(pid int) *exitStatus {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return nil
		}
	}
}

// pipeCloexec makes a close-on-exec pipe.
func pipeCloexec(p *[2]int) error {
	return syscall.Pipe2(p[:], syscall.O_CLOEXEC)
}
