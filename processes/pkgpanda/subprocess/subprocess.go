// Package subprocess runs one external program per call, the way the
// pkgpanda process runs the pkgpanda command-line tool: an argv (never a
// shell), a clean environment, stdout and stderr drained concurrently
// (by the calling goroutine, polling both pipes and the child's exit),
// bounded memory, and a child process group that never outlives the run.
//
// Every run puts the child in a new process group (Setpgid). A timeout,
// a cancelled context, an exceeded output cap or (on request) a failed
// stream write sends SIGTERM to the whole group, then SIGKILL after
// Runner.KillGrace. When the child exits, for whatever reason, anything
// still left in its process group is sent SIGKILL before the child is
// reaped, so grandchildren die with it. The child's exit is observed
// without reaping it (a pidfd becoming readable; on kernels without
// pidfds, waitid(WNOWAIT)) so the group id cannot be recycled while it is
// signalled.
//
// On Linux the child also gets SIGKILL when the process running it dies
// (a parent-death signal), so a crashed or SIGKILLed caller leaves no
// child behind to overlap its successor. The kernel ties that signal to
// the thread that forked the child, so a run keeps its goroutine locked
// to that thread until the child is reaped. Linux is the supported
// platform; elsewhere the package builds for development, without the
// parent-death signal and with the group killed only after the child is
// reaped.
package subprocess

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	// x/sys/unix for poll(2) and waitid(2), which package syscall lacks;
	// it is the Go team's, and already in the module graph.
	"golang.org/x/sys/unix"
)

// Defaults used when the corresponding Runner field is zero.
const (
	// DefaultKillGrace is how long a child has between SIGTERM and SIGKILL.
	DefaultKillGrace = 5 * time.Second
	// DefaultWaitDelay is how long the engine waits, after the child has
	// been reaped, for its stdout/stderr pipes to reach end-of-file
	// (they can be held open by a process that escaped the group).
	DefaultWaitDelay = 2 * time.Second
	// DefaultStdoutLimit caps the stdout bytes held in memory by Output.
	DefaultStdoutLimit = 16 << 20
	// DefaultStderrLimit caps the stderr bytes held in memory by any run.
	DefaultStderrLimit = 64 << 10
)

// readBufSize is the size of the buffer a run reads its pipes with.
const readBufSize = 32 << 10

// Runner holds the configuration shared by the runs it starts. A Runner is
// not modified by running and may be used from many goroutines at once.
type Runner struct {
	// Env is the child's whole environment, as "KEY=value" entries. Nothing
	// is inherited from the current process: a nil or empty Env gives the
	// child an empty environment. If argv[0] has no slash it is looked up
	// in this environment's PATH (not in the current process's PATH).
	Env []string
	// Dir is the child's working directory; empty means the current one.
	Dir string
	// Timeout bounds each run's wall time; zero means no timeout (the
	// context can still cancel). Expiry kills the group and the run fails
	// with ErrTimeout.
	Timeout time.Duration
	// KillGrace is the delay between SIGTERM and SIGKILL to the group;
	// zero means DefaultKillGrace.
	KillGrace time.Duration
	// WaitDelay bounds the wait for the output pipes to close after the
	// child has been reaped; zero means DefaultWaitDelay. Output written
	// after that is lost.
	WaitDelay time.Duration
	// StdoutLimit caps the stdout bytes Output keeps in memory; more stdout
	// kills the group and fails the run with a *CapError. Zero means
	// DefaultStdoutLimit. Stream does not buffer stdout and ignores it.
	StdoutLimit int64
	// StderrLimit caps the stderr bytes kept in memory by Output and
	// Stream; more stderr kills the group and fails the run with a
	// *CapError. Zero means DefaultStderrLimit.
	StderrLimit int64
	// ExtraFiles are open files the child inherits as descriptors 3, 4,
	// ... (exec.Cmd.ExtraFiles); used to hand a held lock to the child so
	// that the lock stays held as long as the child lives.
	ExtraFiles []*os.File
	// Stdin is the child's standard input; nil opens /dev/null for each
	// run. A caller that runs many commands can open /dev/null once and
	// set it here, which spares each run an open and a close.
	Stdin *os.File

	// noPidfd makes the run watch the child's exit as on a kernel without
	// pidfds (tests).
	noPidfd bool
}

// WriteErrorPolicy tells Stream what to do when writing the child's stdout
// to the caller's writer fails (typically: the HTTP client went away).
type WriteErrorPolicy int

const (
	// CancelOnWriteError kills the child's group when a write fails; the
	// run then fails with a *WriteError. Suits read-only commands.
	CancelOnWriteError WriteErrorPolicy = iota
	// ContinueOnWriteError lets the child run to completion with the rest
	// of its stdout discarded; the write error is reported in
	// Result.WriteErr and does not by itself fail the run. Suits mutations
	// that must not be interrupted half-way.
	ContinueOnWriteError
)

// KillReason says why the engine killed a child, if it did.
type KillReason int

const (
	// NotKilled: the child exited on its own (or was killed by someone else).
	NotKilled KillReason = iota
	// KilledTimeout: Runner.Timeout expired.
	KilledTimeout
	// KilledCanceled: the run's context was done.
	KilledCanceled
	// KilledStdoutCap: stdout exceeded Runner.StdoutLimit.
	KilledStdoutCap
	// KilledStderrCap: stderr exceeded Runner.StderrLimit.
	KilledStderrCap
	// KilledWriteError: the stream writer failed under CancelOnWriteError.
	KilledWriteError
)

// String returns a short lower-case description of the reason.
func (k KillReason) String() string {
	switch k {
	case NotKilled:
		return "not killed"
	case KilledTimeout:
		return "timeout"
	case KilledCanceled:
		return "canceled"
	case KilledStdoutCap:
		return "stdout cap exceeded"
	case KilledStderrCap:
		return "stderr cap exceeded"
	case KilledWriteError:
		return "stream write failed"
	}
	return fmt.Sprintf("KillReason(%d)", int(k))
}

// Result describes a finished run. It is returned by Output and Stream
// whenever the child was started, whether or not the run failed.
type Result struct {
	// Argv is the command that was run.
	Argv []string
	// Stdout is the child's stdout (Output only; at most StdoutLimit bytes).
	Stdout []byte
	// StdoutBytes counts all stdout bytes the engine read, kept or not.
	StdoutBytes int64
	// Stderr is the child's stderr, at most StderrLimit bytes.
	Stderr []byte
	// StderrBytes counts all stderr bytes the engine read, kept or not.
	StderrBytes int64
	// ExitCode is the child's exit status, or -1 if a signal ended it.
	ExitCode int
	// Signal is the signal that ended the child, or 0.
	Signal syscall.Signal
	// Duration is the time from start to reaping the child.
	Duration time.Duration
	// Killed says whether and why the engine killed the child.
	Killed KillReason
	// WriteErr is the first error from the Stream writer, if any.
	WriteErr error
}

// ErrTimeout is the cause of a run killed because Runner.Timeout expired.
var ErrTimeout = errors.New("subprocess: timeout")

// CapError is the cause of a run killed because a stream exceeded its cap.
type CapError struct {
	// Stream is "stdout" or "stderr".
	Stream string
	// Limit is the cap in bytes that was exceeded.
	Limit int64
}

// Error describes which stream exceeded which cap.
func (e *CapError) Error() string {
	return fmt.Sprintf("%s exceeded its cap of %d bytes", e.Stream, e.Limit)
}

// WriteError is the cause of a run killed under CancelOnWriteError because
// writing its stdout to the caller's writer failed.
type WriteError struct {
	// Err is the writer's error.
	Err error
}

// Error describes the failed write.
func (e *WriteError) Error() string { return "writing stdout: " + e.Err.Error() }

// Unwrap returns the writer's error.
func (e *WriteError) Unwrap() error { return e.Err }

// ExitError is the cause of a run whose child exited non-zero or was ended
// by a signal the engine did not send.
type ExitError struct {
	// ExitCode is the exit status, or -1 when a signal ended the child.
	ExitCode int
	// Signal is the signal that ended the child, or 0.
	Signal syscall.Signal
	// Stderr is the child's (bounded) stderr, as text.
	Stderr string
}

// Error gives the exit status or signal and the stderr text.
func (e *ExitError) Error() string {
	var s string
	if e.Signal != 0 {
		s = "killed by signal " + e.Signal.String()
	} else {
		s = fmt.Sprintf("exit status %d", e.ExitCode)
	}
	if st := strings.TrimSpace(e.Stderr); st != "" {
		s += ": " + st
	}
	return s
}

// Error is returned by Output and Stream for any run that failed after its
// argv was accepted. Err is the cause: *ExitError, ErrTimeout, the
// context's error (context.Canceled or context.DeadlineExceeded),
// *CapError, *WriteError, or the error from starting the program. Use
// errors.Is/As on the Error to test for the cause.
type Error struct {
	// Argv is the command that was run.
	Argv []string
	// Result is the finished run, or nil if the child never started.
	Result *Result
	// Err is the cause.
	Err error
}

// Error names the command and the cause.
func (e *Error) Error() string {
	s := fmt.Sprintf("running %q: %v", e.Argv, e.Err)
	var x *ExitError
	if e.Result != nil && !errors.As(e.Err, &x) {
		if st := strings.TrimSpace(string(e.Result.Stderr)); st != "" {
			s += "; stderr: " + st
		}
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Output runs argv and collects its stdout into Result.Stdout. It returns a
// non-nil Result whenever the child was started. The error is nil only if
// the child exited with status 0 and was not killed by the engine;
// otherwise it is an *Error.
func (r *Runner) Output(ctx context.Context, argv []string) (*Result, error) {
	return r.run(ctx, argv, nil, CancelOnWriteError)
}

// Stream runs argv and copies its stdout to w while it runs; w is called
// from one goroutine at a time and only until Stream returns. Only stderr
// is held in memory. If a write to w fails, policy decides whether the
// child is killed (CancelOnWriteError) or runs on with its stdout
// discarded (ContinueOnWriteError); either way Result.WriteErr records the
// first write error. The error follows the same rules as Output's.
// Stream returns only after its last call to w has returned, so w must not
// block indefinitely (give a network writer a deadline).
func (r *Runner) Stream(ctx context.Context, argv []string, w io.Writer, policy WriteErrorPolicy) (*Result, error) {
	if w == nil {
		return nil, &Error{Argv: argv, Err: errors.New("nil stream writer")}
	}
	return r.run(ctx, argv, w, policy)
}

func (r *Runner) killGrace() time.Duration {
	if r.KillGrace > 0 {
		return r.KillGrace
	}
	return DefaultKillGrace
}

func (r *Runner) waitDelay() time.Duration {
	if r.WaitDelay > 0 {
		return r.WaitDelay
	}
	return DefaultWaitDelay
}

func (r *Runner) stdoutLimit() int64 {
	if r.StdoutLimit > 0 {
		return r.StdoutLimit
	}
	return DefaultStdoutLimit
}

func (r *Runner) stderrLimit() int64 {
	if r.StderrLimit > 0 {
		return r.StderrLimit
	}
	return DefaultStderrLimit
}

// lookPath resolves a slash-less program name in the child's PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v // the last PATH wins, as exec does
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in the configured PATH %q", name, path)
}

// group is a started child's process group. It serialises signalling the
// group with reaping the child, so the group is never signalled once its
// leader is reaped (the id could be reused by then), and records why the
// engine killed the run, if it did.
type group struct {
	pid   int
	grace time.Duration

	mu         sync.Mutex
	reason     KillReason
	cause      error
	exited     bool        // the child has exited (it may not be reaped yet)
	reaped     bool        // the child is reaped: never signal the group again
	graceTimer *time.Timer // sends SIGKILL once the grace period is over
}

// kill records the first reason, sends SIGTERM to the group and SIGKILL
// after the grace period. Later calls are ignored. Once the child has
// exited nothing is signalled (the group gets SIGKILL before the child is
// reaped anyway), and a timeout or cancellation no longer counts: only an
// exceeded cap or a failed write can still fail the finished run.
func (g *group) kill(reason KillReason, cause error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reason != NotKilled {
		return
	}
	if g.exited && (reason == KilledTimeout || reason == KilledCanceled) {
		return
	}
	g.reason, g.cause = reason, cause
	if g.exited {
		return
	}
	_ = syscall.Kill(-g.pid, syscall.SIGTERM)
	g.graceTimer = time.AfterFunc(g.grace, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.reaped {
			_ = syscall.Kill(-g.pid, syscall.SIGKILL)
		}
	})
}

// exitStatus is how a reaped child ended.
type exitStatus struct {
	ws  syscall.WaitStatus
	err error
}

// reap runs once the child has exited: it sends SIGKILL to whatever is
// left in the group, then reaps the child. pre is the status when the
// exit watcher has already reaped it (platforms without waitid(WNOWAIT)),
// in which case the group is not signalled, as its id may be reused.
func (g *group) reap(pre *exitStatus) exitStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.exited = true
	var st exitStatus
	if pre != nil {
		st = *pre
	} else {
		_ = syscall.Kill(-g.pid, syscall.SIGKILL)
		st = wait4(g.pid)
	}
	g.reaped = true
	if g.graceTimer != nil {
		g.graceTimer.Stop()
	}
	return st
}

// wait4 reaps pid.
func wait4(pid int) exitStatus {
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return exitStatus{ws: ws, err: err}
		}
	}
}

func (g *group) get() (KillReason, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reason, g.cause
}

// dedupEnv keeps the last entry of each key, in the order of the kept
// entries, as os/exec does.
func dedupEnv(env []string) []string {
	seen := make(map[string]bool, len(env))
	out := make([]string, len(env))
	n := len(out)
	for i := len(env) - 1; i >= 0; i-- {
		k, _, _ := strings.Cut(env[i], "=")
		if seen[k] {
			continue
		}
		seen[k] = true
		n--
		out[n] = env[i]
	}
	return out[n:]
}

// run is one call of Output or Stream, in four phases a reader can take
// one at a time: resolve checks the command and finds the program; spawn
// starts the child in a process group of its own, wired to fresh pipes;
// watch reads those pipes and enforces the timeout, the context and the
// output caps until the child has exited and is reaped; collect turns what
// was read and how the child ended into the Result and the run's error.
// The descriptors of the run are closed, and the OS thread the child's
// parent-death signal is tied to is released, only when run returns.
func (r *Runner) run(ctx context.Context, argv []string, w io.Writer, policy WriteErrorPolicy) (*Result, error) {
	argv, env, path, err := r.resolve(ctx, argv)
	if err != nil {
		return nil, &Error{Argv: argv, Err: err}
	}
	var fds fdSet
	defer fds.closeAll()
	c, err := r.spawn(path, argv, env, &fds)
	defer c.unlock()
	if err != nil {
		return nil, &Error{Argv: argv, Err: err}
	}
	out := output{g: c.g, res: &Result{Argv: argv}, w: w, policy: policy}
	out.stderr.limit = r.stderrLimit()
	out.stdout.limit = r.stdoutLimit()
	st := r.watch(ctx, &c, &out)
	return out.collect(st)
}

// resolve checks argv and the environment and finds the program to run.
// It returns the argv the run uses (a copy, so the caller may reuse its
// slice; the caller's own when it is empty), the environment with only the
// last entry of each key, and the program's path, looked up in that
// environment's PATH when argv[0] has no slash. A context already done
// ends the run here, before anything is started.
func (r *Runner) resolve(ctx context.Context, argv []string) (args, env []string, path string, err error) {
	if len(argv) == 0 || argv[0] == "" {
		return argv, nil, "", errors.New("empty argv")
	}
	argv = append([]string(nil), argv...)
	for _, kv := range r.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return argv, nil, "", fmt.Errorf("malformed environment entry %q", kv)
		}
	}
	env = dedupEnv(r.Env)
	path, err = lookPath(argv[0], env)
	if err != nil {
		return argv, nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return argv, nil, "", err
	}
	return argv, env, path, nil
}

// child is a started child as the run sees it.
type child struct {
	g          *group    // the child's process group
	start      time.Time // just before the fork
	outR, errR int       // read ends of the child's stdout and stderr pipes
	// exitFd becomes readable once the child has exited; watched then
	// returns its status if watching had to reap it (nil otherwise).
	exitFd  int
	watched func() *exitStatus
	// unlock releases the OS thread the child was forked from; it is
	// never nil, and is called only once the child is reaped.
	unlock func()
}

// spawn starts the child in a process group of its own: stdin from
// Runner.Stdin or /dev/null, stdout and stderr on fresh pipes, and
// ExtraFiles from descriptor 3 on. The child's ends of the pipes are
// closed here once it has them, so the read ends reach end-of-file when
// every process holding a write end is gone. Every descriptor spawn opens
// is held by fds. If the child starts but its exit cannot be watched, it
// is killed and reaped before spawn fails; c.unlock must be called in
// every case.
func (r *Runner) spawn(path string, argv, env []string, fds *fdSet) (c child, err error) {
	c.unlock = func() {}
	outR, outW, err := fds.pipe()
	if err != nil {
		return c, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := fds.pipe()
	if err != nil {
		return c, fmt.Errorf("stderr pipe: %w", err)
	}
	stdin, null, err := r.stdinFd(fds)
	if err != nil {
		return c, err
	}
	files := make([]uintptr, 0, 3+len(r.ExtraFiles))
	files = append(files, stdin, uintptr(outW), uintptr(errW))
	for _, f := range r.ExtraFiles {
		files = append(files, f.Fd())
	}
	attr := &syscall.ProcAttr{Dir: r.Dir, Env: env, Files: files}

	c.start = time.Now()
	// The OS thread stays locked until the child is reaped: see startChild.
	s, unlock, err := startChild(path, argv, attr, !r.noPidfd)
	c.unlock = unlock
	runtime.KeepAlive(r.ExtraFiles)
	runtime.KeepAlive(r.Stdin)
	if null >= 0 {
		fds.close(null)
	}
	fds.close(outW)
	fds.close(errW)
	if err != nil {
		return c, fmt.Errorf("start: %w", &os.PathError{Op: "fork/exec", Path: path, Err: err})
	}
	c.g = &group{pid: s.pid, grace: r.killGrace()}
	c.exitFd, c.watched, err = s.exitFd(c.g, fds)
	if err != nil {
		// No way to learn of the exit but waiting for it.
		c.g.kill(KilledCanceled, fmt.Errorf("watching the child: %w", err))
		c.g.reap(nil)
		return c, fmt.Errorf("watching the child: %w", err)
	}
	c.outR, c.errR = outR, errR
	return c, nil
}

// stdinFd is the descriptor the child gets as stdin: Runner.Stdin's, or
// /dev/null opened for this run, which null then is (-1 otherwise) so that
// it can be closed once the child has it.
func (r *Runner) stdinFd(fds *fdSet) (fd uintptr, null int, err error) {
	if r.Stdin != nil {
		return r.Stdin.Fd(), -1, nil
	}
	null, err = fds.openRead(os.DevNull)
	if err != nil {
		return 0, -1, fmt.Errorf("opening %s for stdin: %w", os.DevNull, err)
	}
	return uintptr(null), null, nil
}

// watch runs the child to its end. The run's own goroutine reads both
// output pipes into out with poll(2), together with the child's exit
// descriptor; nothing else runs on the way (no copying goroutines, no
// hand-offs through the Go network poller), so when the child exits this
// goroutine's thread is the only one that has to wake up.
//
// A done context kills the group from a context callback, and the timeout
// from the loop (poll's own timeout, which spares the run a timer); the
// loop then sees the exit that follows. Once the child has exited it is
// reaped (its group gets SIGKILL first), and the pipes get at most
// WaitDelay more to reach end-of-file: a process that left the group may
// hold them open, and its output after that is lost. watch returns the
// reaped child's status and records the run's Duration in out.
func (r *Runner) watch(ctx context.Context, c *child, out *output) exitStatus {
	g := c.g
	stopCtx := context.AfterFunc(ctx, func() { g.kill(KilledCanceled, ctx.Err()) })
	defer stopCtx()
	wt := watcher{g: g, pfd: [3]pollFd{{fd: c.outR}, {fd: c.errR}, {fd: c.exitFd}}}
	if r.Timeout > 0 {
		wt.timeoutAt = c.start.Add(r.Timeout)
	}
	defer wt.stopTimer()
	buf := make([]byte, readBufSize)
	var st exitStatus
	for wt.busy() {
		timeout, over := wt.nextTimeout()
		if over {
			break // WaitDelay is over
		}
		n, err := pollFds(wt.pfd[:], timeout)
		if err != nil {
			n = wt.pollFailed()
		}
		if n == 0 && wt.exited {
			break // WaitDelay is over
		}
		wt.readReady(buf, out)
		if wt.pfd[2].ready && !wt.exited {
			wt.exited = true
			wt.pfd[2].fd = -1
			st = g.reap(c.watched())
			out.res.Duration = time.Since(c.start)
			wt.deadline = time.Now().Add(r.waitDelay())
		}
	}
	return st
}

// watcher is the state of watch's loop.
type watcher struct {
	g *group
	// pfd polls stdout, stderr and the exit descriptor, in that order;
	// each fd is -1 once it is done with.
	pfd       [3]pollFd
	timeoutAt time.Time   // when Runner.Timeout expires; zero if none or once it has
	timer     *time.Timer // enforces timeoutAt once the loop no longer can
	exited    bool        // the child has exited and is reaped
	deadline  time.Time   // once exited: the end of WaitDelay
}

// busy reports whether an output pipe is still open or the child still
// runs.
func (wt *watcher) busy() bool {
	return wt.pfd[0].fd >= 0 || wt.pfd[1].fd >= 0 || !wt.exited
}

// nextTimeout is the timeout of the next poll in milliseconds (-1: none):
// the time left until the run's timeout while the child runs, or until the
// end of WaitDelay once it has exited. It kills the group once the timeout
// has passed, and reports over once WaitDelay has.
func (wt *watcher) nextTimeout() (ms int, over bool) {
	if wt.exited {
		left := time.Until(wt.deadline)
		if left <= 0 {
			return 0, true
		}
		return pollTimeout(left), false
	}
	if wt.timeoutAt.IsZero() {
		return -1, false
	}
	left := time.Until(wt.timeoutAt)
	if left <= 0 {
		wt.g.kill(KilledTimeout, ErrTimeout)
		wt.timeoutAt = time.Time{} // killed; wait for the exit
		return -1, false
	}
	return pollTimeout(left), false
}

// pollFailed handles a poll error, which is not expected (EINTR is
// retried): rather than spin, it gives up on the pipes and blocks until
// the child has exited, with a timer enforcing the timeout meanwhile. It
// returns the number of ready descriptors to go on with: the exit
// descriptor, unless the child had already exited.
func (wt *watcher) pollFailed() int {
	wt.pfd[0].fd, wt.pfd[1].fd = -1, -1
	if wt.exited {
		return 0
	}
	if !wt.timeoutAt.IsZero() {
		g := wt.g
		wt.timer = time.AfterFunc(time.Until(wt.timeoutAt), func() { g.kill(KilledTimeout, ErrTimeout) })
	}
	waitFd(wt.pfd[2].fd)
	wt.pfd[2].ready = true
	return 1
}

// stopTimer stops the timer pollFailed may have started.
func (wt *watcher) stopTimer() {
	if wt.timer != nil {
		wt.timer.Stop()
	}
}

// readReady reads once from each output pipe the last poll found ready
// and hands the bytes to out; a pipe at end-of-file (or failing) is
// dropped from the poll.
func (wt *watcher) readReady(buf []byte, out *output) {
	for i := range 2 {
		if !wt.pfd[i].ready {
			continue
		}
		p := readOnce(wt.pfd[i].fd, buf)
		switch {
		case len(p) == 0:
			wt.pfd[i].fd = -1
		case i == 0:
			out.fromStdout(p)
		default:
			out.fromStderr(p)
		}
	}
}

// output receives the child's output and becomes the run's Result. It
// keeps stderr, and stdout unless it streams stdout to w, each under its
// cap; an exceeded cap, or a failed write under CancelOnWriteError, kills
// the group.
type output struct {
	g              *group
	res            *Result
	stdout, stderr capBuffer // stdout counts, but keeps nothing, when streaming
	w              io.Writer // the stream writer; nil for Output
	policy         WriteErrorPolicy
}

// fromStdout takes bytes the child wrote to stdout. Once a write to w has
// failed, the rest of stdout is counted and discarded.
func (o *output) fromStdout(p []byte) {
	if o.w == nil {
		if !o.stdout.write(p) {
			o.g.kill(KilledStdoutCap, &CapError{Stream: "stdout", Limit: o.stdout.limit})
		}
		return
	}
	o.stdout.n += int64(len(p))
	if o.res.WriteErr != nil {
		return
	}
	if _, err := o.w.Write(p); err != nil {
		o.res.WriteErr = err
		if o.policy == CancelOnWriteError {
			o.g.kill(KilledWriteError, &WriteError{Err: err})
		}
	}
}

// fromStderr takes bytes the child wrote to stderr.
func (o *output) fromStderr(p []byte) {
	if !o.stderr.write(p) {
		o.g.kill(KilledStderrCap, &CapError{Stream: "stderr", Limit: o.stderr.limit})
	}
}

// collect completes the Result once the child is reaped, with its output
// and how it ended, and decides the run's error. The engine's kill reason
// comes first, then a failed wait, then a non-zero exit or a signal the
// engine did not send.
func (o *output) collect(st exitStatus) (*Result, error) {
	res := o.res
	res.Stdout = o.stdout.buf.Bytes()
	res.StdoutBytes = o.stdout.n
	res.Stderr = o.stderr.buf.Bytes()
	res.StderrBytes = o.stderr.n
	res.ExitCode = -1
	if st.err == nil {
		if st.ws.Exited() {
			res.ExitCode = st.ws.ExitStatus()
		} else if st.ws.Signaled() {
			res.Signal = st.ws.Signal()
		}
	}
	reason, cause := o.g.get()
	res.Killed = reason
	if reason != NotKilled {
		return res, &Error{Argv: res.Argv, Result: res, Err: cause}
	}
	if st.err != nil {
		return res, &Error{Argv: res.Argv, Result: res, Err: fmt.Errorf("wait: %w", st.err)}
	}
	if res.ExitCode != 0 || res.Signal != 0 {
		return res, &Error{Argv: res.Argv, Result: res, Err: &ExitError{
			ExitCode: res.ExitCode, Signal: res.Signal, Stderr: string(res.Stderr),
		}}
	}
	return res, nil
}

// pollTimeout is d in poll(2)'s whole milliseconds, rounded up so that a
// wait never ends before d.
func pollTimeout(d time.Duration) int {
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// readOnce reads what fd has (poll said it is readable, so the read does
// not block); it returns nothing at end-of-file or on an error.
func readOnce(fd int, buf []byte) []byte {
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if n > 0 {
			return buf[:n]
		}
		return nil
	}
}

// fdSet owns the raw descriptors of one run and closes those still open.
type fdSet struct {
	held []int
}

// pipe returns a new pipe's read and write ends, both close-on-exec and
// blocking.
func (s *fdSet) pipe() (r, w int, err error) {
	var p [2]int
	if err := pipeCloexec(&p); err != nil {
		return -1, -1, err
	}
	s.held = append(s.held, p[0], p[1])
	return p[0], p[1], nil
}

// openRead opens path read-only, close-on-exec.
func (s *fdSet) openRead(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		s.held = append(s.held, fd)
		return fd, nil
	}
}

// add hands fd to the set.
func (s *fdSet) add(fd int) { s.held = append(s.held, fd) }

// close closes fd now, if the set holds it.
func (s *fdSet) close(fd int) {
	for i, o := range s.held {
		if o == fd {
			_ = syscall.Close(fd)
			s.held = append(s.held[:i], s.held[i+1:]...)
			return
		}
	}
}

func (s *fdSet) closeAll() {
	for _, fd := range s.held {
		_ = syscall.Close(fd)
	}
	s.held = nil
}

// pollFd is one descriptor of the run loop's poll; fd < 0 is skipped.
type pollFd struct {
	fd    int
	ready bool // readable, at end-of-file or in error after the last poll
}

// pollFds waits until one of fds is ready or timeoutMs passes (-1: no
// limit), retrying on EINTR, and returns the number that are.
func pollFds(fds []pollFd, timeoutMs int) (int, error) {
	var p [3]unix.PollFd
	for i, f := range fds {
		p[i] = unix.PollFd{Fd: int32(f.fd), Events: unix.POLLIN}
		fds[i].ready = false
	}
	for {
		n, err := unix.Poll(p[:len(fds)], timeoutMs)
		if err == unix.EINTR {
			continue // the timeout restarts: only WaitDelay uses one
		}
		if err != nil {
			return 0, err
		}
		for i := range fds {
			fds[i].ready = fds[i].fd >= 0 && p[i].Revents != 0
		}
		return n, nil
	}
}

// waitFd blocks until fd is readable.
func waitFd(fd int) {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(p, -1); err != unix.EINTR {
			return
		}
	}
}

// started is a started child.
type started struct {
	pid   int
	pidfd int // -1 when the platform or kernel gives none
}

// exitFd returns a descriptor that becomes readable once the child has
// exited, held by fds, and the function that returns the child's status
// when the watcher had to reap it (nil otherwise; call it only once the
// descriptor is readable). It is the pidfd when there is one; otherwise a
// goroutine waits for the exit and closes a pipe.
func (c started) exitFd(g *group, fds *fdSet) (int, func() *exitStatus, error) {
	none := func() *exitStatus { return nil }
	if c.pidfd >= 0 {
		fds.add(c.pidfd)
		return c.pidfd, none, nil
	}
	r, w, err := fds.pipe()
	if err != nil {
		return -1, none, err
	}
	// The goroutine owns w from here on.
	fds.held = slices.DeleteFunc(fds.held, func(fd int) bool { return fd == w })
	done := make(chan *exitStatus, 1)
	go func() {
		st := waitExited(c.pid)
		done <- st
		_ = syscall.Close(w)
	}()
	return r, func() *exitStatus { return <-done }, nil
}

// capBuffer keeps at most limit bytes and counts everything written.
type capBuffer struct {
	buf   bytes.Buffer
	n     int64
	limit int64
}

// write keeps what fits under the limit and reports whether p fitted.
func (b *capBuffer) write(p []byte) bool {
	b.n += int64(len(p))
	room := b.limit - int64(b.buf.Len())
	if room <= 0 {
		return len(p) == 0
	}
	if int64(len(p)) > room {
		b.buf.Write(p[:room])
		return false
	}
	b.buf.Write(p)
	return true
}
