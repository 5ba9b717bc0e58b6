// Package subprocess runs one external program per call, the way the
// pkgpanda process runs the pkgpanda command-line tool: an argv (never a
// shell), a clean environment, stdout and stderr drained concurrently,
// bounded memory, and a child process group that never outlives the run.
//
// Every run puts the child in a new process group (Setpgid). A timeout,
// a cancelled context, an exceeded output cap or (on request) a failed
// stream write sends SIGTERM to the whole group, then SIGKILL after
// Runner.KillGrace. When the child exits, for whatever reason, anything
// still left in its process group is sent SIGKILL before the child is
// reaped, so grandchildren die with it. The child's exit is observed with
// waitid(WNOWAIT) so the group id cannot be recycled while it is signalled.
//
// On Linux the child also gets SIGKILL when the process running it dies
// (a parent-death signal), so a crashed or SIGKILLed caller leaves no
// child behind to overlap its successor (see start in
// subprocess_linux.go). Linux is the supported platform; elsewhere the
// package builds for development, without the parent-death signal and with
// the group killed only after the child is reaped.
package subprocess

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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

// readBufSize is the size of the buffer each drain goroutine reads with.
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

// reap runs once the child has exited (waitid with WNOWAIT returned): it
// sends SIGKILL to whatever is left in the group, then reaps the child.
func (g *group) reap(cmd *exec.Cmd) error {
	if !waitsWithoutReaping {
		// The child is still unreaped only on Linux; elsewhere wait
		// first (not under g.mu, so kill keeps working meanwhile) and
		// never signal the group afterwards, as its id may be reused.
		err := cmd.Wait()
		g.mu.Lock()
		defer g.mu.Unlock()
		g.exited, g.reaped = true, true
		if g.graceTimer != nil {
			g.graceTimer.Stop()
		}
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.exited = true
	_ = syscall.Kill(-g.pid, syscall.SIGKILL)
	err := cmd.Wait()
	g.reaped = true
	if g.graceTimer != nil {
		g.graceTimer.Stop()
	}
	return err
}

func (g *group) get() (KillReason, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reason, g.cause
}

func (r *Runner) run(ctx context.Context, argv []string, w io.Writer, policy WriteErrorPolicy) (*Result, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, &Error{Argv: argv, Err: errors.New("empty argv")}
	}
	argv = append([]string(nil), argv...)
	env := make([]string, 0, len(r.Env))
	for _, kv := range r.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, &Error{Argv: argv, Err: fmt.Errorf("malformed environment entry %q", kv)}
		}
		env = append(env, kv)
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		return nil, &Error{Argv: argv, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Argv: argv, Err: err}
	}

	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, &Error{Argv: argv, Err: fmt.Errorf("stdout pipe: %w", err)}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, &Error{Argv: argv, Err: fmt.Errorf("stderr pipe: %w", err)}
	}

	cmd := &exec.Cmd{
		Path:        path,
		Args:        argv,
		Env:         env, // non-nil: exec never falls back to os.Environ
		Dir:         r.Dir,
		Stdout:      outW, // *os.File: handed to the child, no copy goroutine
		Stderr:      errW,
		ExtraFiles:  r.ExtraFiles,
		SysProcAttr: childAttr(),
	}
	start := time.Now()
	// The OS thread stays locked until the child is reaped: see start.
	unlock, err := startChild(cmd)
	defer unlock()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, &Error{Argv: argv, Err: fmt.Errorf("start: %w", err)}
	}
	pid := cmd.Process.Pid // also the process group id

	res := &Result{Argv: argv}
	g := &group{pid: pid, grace: r.killGrace()}

	// Drain both pipes concurrently; the last drain to finish closes
	// drained.
	var stdout, stderr capBuffer
	stderr.limit = r.stderrLimit()
	drained := make(chan struct{})
	var running atomic.Int32
	running.Store(2)
	drainDone := func() {
		if running.Add(-1) == 0 {
			close(drained)
		}
	}
	go func() {
		defer drainDone()
		drain(errR, func(p []byte) {
			if !stderr.write(p) {
				g.kill(KilledStderrCap, &CapError{Stream: "stderr", Limit: stderr.limit})
			}
		})
	}()
	go func() {
		defer drainDone()
		if w == nil {
			stdout.limit = r.stdoutLimit()
			drain(outR, func(p []byte) {
				if !stdout.write(p) {
					g.kill(KilledStdoutCap, &CapError{Stream: "stdout", Limit: stdout.limit})
				}
			})
			return
		}
		drain(outR, func(p []byte) {
			stdout.n += int64(len(p))
			if res.WriteErr != nil {
				return
			}
			if _, err := w.Write(p); err != nil {
				res.WriteErr = err
				if policy == CancelOnWriteError {
					g.kill(KilledWriteError, &WriteError{Err: err})
				}
			}
		})
	}()

	// A timeout or a cancelled context kills the group from a timer or
	// context callback, so this goroutine only has to wait for the exit:
	// after the child exits nothing but this goroutine has to run (no
	// goroutine hand-offs on the way out).
	if r.Timeout > 0 {
		t := time.AfterFunc(r.Timeout, func() { g.kill(KilledTimeout, ErrTimeout) })
		defer t.Stop()
	}
	stopCtx := context.AfterFunc(ctx, func() { g.kill(KilledCanceled, ctx.Err()) })
	defer stopCtx()

	// Wait for the child to exit without reaping it, so its pid (= the
	// group id) stays reserved until the group has been sent SIGKILL.
	waitErr := waitExited(pid)
	reapErr := g.reap(cmd)
	res.Duration = time.Since(start)
	if waitErr != nil && reapErr == nil {
		reapErr = waitErr
	}

	// Wait for the drains, bounded: a process that left the group may hold
	// the pipes open. Closing the read ends unblocks the readers. The
	// pipes normally reach end-of-file when the child exits, so the timer
	// is only needed when they have not yet.
	select {
	case <-drained:
	default:
		t := time.NewTimer(r.waitDelay())
		select {
		case <-drained:
			t.Stop()
		case <-t.C:
			outR.Close()
			errR.Close()
			<-drained
		}
	}
	outR.Close()
	errR.Close()

	res.Stdout = stdout.buf.Bytes()
	res.StdoutBytes = stdout.n
	res.Stderr = stderr.buf.Bytes()
	res.StderrBytes = stderr.n
	res.ExitCode = -1
	if ps := cmd.ProcessState; ps != nil {
		res.ExitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Signal = ws.Signal()
		}
	}
	reason, cause := g.get()
	res.Killed = reason
	if reason != NotKilled {
		return res, &Error{Argv: argv, Result: res, Err: cause}
	}
	if res.ExitCode != 0 || res.Signal != 0 {
		return res, &Error{Argv: argv, Result: res, Err: &ExitError{
			ExitCode: res.ExitCode, Signal: res.Signal, Stderr: string(res.Stderr),
		}}
	}
	var ee *exec.ExitError
	if reapErr != nil && !errors.As(reapErr, &ee) {
		return res, &Error{Argv: argv, Result: res, Err: fmt.Errorf("wait: %w", reapErr)}
	}
	return res, nil
}

// drain reads r until EOF or error, handing each chunk to sink.
func drain(r io.Reader, sink func([]byte)) {
	buf := make([]byte, readBufSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			sink(buf[:n])
		}
		if err != nil {
			return
		}
	}
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
