package subprocess

import (
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// waitsWithoutReaping: waitExited leaves the child unreaped (WNOWAIT).
const waitsWithoutReaping = true

// childAttr puts the child in a process group of its own and asks the
// kernel to send it SIGKILL when its parent dies (PR_SET_PDEATHSIG), so a
// crashed or SIGKILLed caller leaves no child running beside whatever
// replaces it. Only the child itself gets the signal; its descendants die
// with the group when the run ends normally.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// startChild starts cmd with the calling goroutine locked to its OS
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
func startChild(cmd *exec.Cmd) (unlock func(), err error) {
	runtime.LockOSThread()
	if err := cmd.Start(); err != nil {
		runtime.UnlockOSThread()
		return func() {}, err
	}
	return runtime.UnlockOSThread, nil
}

// waitExited blocks until the child pid has exited, without reaping it,
// so its pid (= the group id) stays reserved while the group is signalled.
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}
