package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Environment of a helper process: helperEnv names the helper to run,
// helperHostEnv the IP its messenger listens on.
const (
	helperEnv     = "LIBPROCESS_CONFORMANCE_HELPER"
	helperHostEnv = "LIBPROCESS_CONFORMANCE_HELPER_HOST"
	helperMesosGo = "mesos-go"
)

// helperExitGrace bounds how long a helper may take to exit once its
// standard input closed, before it is killed.
const helperExitGrace = 5 * time.Second

// RunHelper makes the process the suite's mesos-go helper when the suite
// started it as such (Options.MesosGoHelper), and then exits; otherwise
// it returns at once. A program that names itself in
// Options.MesosGoHelper calls it first in main (a test binary: in
// TestMain).
func RunHelper() {
	if os.Getenv(helperEnv) != helperMesosGo {
		return
	}
	// mesos-go logs through glog, which otherwise writes files to the
	// temporary directory.
	_ = flag.Set("logtostderr", "true")
	os.Exit(serveMesosGoHelper(os.Getenv(helperHostEnv), os.Stdin, os.Stdout))
}

// helperCommand is what the suite asks of its helper: send one
// SmallMessage.
type helperCommand struct {
	ID, Host, Port string
	Values         []string
	Timeout        time.Duration
}

// helperEvent is one line the helper writes: exactly one field set.
type helperEvent struct {
	Ready string  `json:"ready,omitempty"` // the messenger's UPID
	Fatal string  `json:"fatal,omitempty"` // it could not start
	Sent  *string `json:"sent,omitempty"`  // a send's outcome ("" when it succeeded)
	Reply *reply  `json:"reply,omitempty"` // a SmallMessage received
}

// serveMesosGoHelper runs a mesos-go messenger on host, sends what the
// commands read from in ask for and writes events to out, until in ends.
// It returns without stopping the messenger: mesos-go v0.0.11 panics when
// a request reaches it while it stops, and the process' exit closes its
// sockets anyway.
func serveMesosGoHelper(host string, in io.Reader, out io.Writer) int {
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(ev helperEvent) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
	}
	m, tr, err := newMesosGoMessenger(host, func(r reply) { emit(helperEvent{Reply: &r}) })
	if err != nil {
		emit(helperEvent{Fatal: err.Error()})
		return 1
	}
	up := m.UPID()
	emit(helperEvent{Ready: up.String()})
	dec := json.NewDecoder(in)
	for {
		var c helperCommand
		if err := dec.Decode(&c); err != nil {
			return 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		outcome := ""
		if err := sendSmall(ctx, m, tr, c.ID, c.Host, c.Port, c.Values); err != nil {
			outcome = err.Error()
		}
		cancel()
		emit(helperEvent{Sent: &outcome})
	}
}

// stderrCatcher keeps a helper's standard error bounded: its first panic
// line and the last stderrTail bytes.
type stderrCatcher struct {
	mu    sync.Mutex
	panic string
	tail  []byte
	line  []byte // the line being written, while it may be a panic line
}

const stderrTail = 4096

func (s *stderrCatcher) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tail = append(s.tail, p...)
	if len(s.tail) > stderrTail {
		s.tail = append(s.tail[:0], s.tail[len(s.tail)-stderrTail:]...)
	}
	if s.panic == "" {
		for _, b := range p {
			if b == '\n' {
				if l := string(s.line); strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
					s.panic = l
				}
				s.line = s.line[:0]
				continue
			}
			if len(s.line) < 512 {
				s.line = append(s.line, b)
			}
		}
	}
	return len(p), nil
}

// summary says how the helper ended, given Wait's error.
func (s *stderrCatcher) summary(waitErr error) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	how := "it exited"
	if waitErr != nil {
		how = waitErr.Error()
	}
	switch {
	case s.panic != "":
		return fmt.Sprintf("%s after %q", how, s.panic)
	case len(bytes.TrimSpace(s.tail)) > 0:
		lines := strings.Split(strings.TrimSpace(string(s.tail)), "\n")
		return fmt.Sprintf("%s; last output %q", how, lines[len(lines)-1])
	}
	return how
}

// startMesosGoHelper starts argv as the case's mesos-go helper, listening
// on host, and returns a client talking to it. When the case ends the
// helper's standard input is closed and the helper exits; a helper that
// died of a panic fails the case with the panic's message.
func startMesosGoHelper(t *T, argv []string, host string) *mesosGoClient {
	if os.Getenv(helperEnv) != "" {
		t.Fatalf("this process was started as a helper but runs the suite: its main does not call conformance.RunHelper")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"="+helperMesosGo, helperHostEnv+"="+host)
	stderr := &stderrCatcher{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("mesos-go helper: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("mesos-go helper: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the mesos-go helper %q: %v", argv, err)
	}
	died := make(chan struct{})
	var how string
	ready := make(chan string, 1)
	sent := make(chan string, 1)
	c := &mesosGoClient{replies: make(chan reply, 64), died: died}
	c.reason = func() string {
		<-died
		return how
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var ev helperEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				continue // not ours: the helper's program wrote to stdout
			}
			switch {
			case ev.Ready != "":
				ready <- ev.Ready
			case ev.Fatal != "":
				stderr.mu.Lock()
				stderr.panic = "could not start: " + ev.Fatal
				stderr.mu.Unlock()
			case ev.Sent != nil:
				sent <- *ev.Sent
			case ev.Reply != nil:
				select {
				case c.replies <- *ev.Reply:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		how = stderr.summary(cmd.Wait())
		close(died)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		timer := time.NewTimer(helperExitGrace)
		defer timer.Stop()
		select {
		case <-died:
		case <-timer.C:
			_ = cmd.Process.Kill()
			<-died
		}
		if cmd.ProcessState != nil && !cmd.ProcessState.Success() {
			t.record(Fail, "the mesos-go messenger's process ended badly: "+how)
		}
	})
	select {
	case <-ready:
	case <-died:
		t.Fatalf("the mesos-go helper %q ended before it was ready: %s", argv, how)
	case <-t.Context().Done():
		t.Fatalf("the mesos-go helper %q was not ready in time (does its program call conformance.RunHelper first?)", argv)
	}
	enc := json.NewEncoder(stdin)
	c.sendTo = func(ctx context.Context, id, host, port string, values []string) error {
		timeout := DefaultTimeout
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		if err := enc.Encode(helperCommand{ID: id, Host: host, Port: port, Values: values, Timeout: timeout}); err != nil {
			return fmt.Errorf("asking the mesos-go helper to send: %w", err)
		}
		select {
		case outcome := <-sent:
			if outcome != "" {
				return errors.New(outcome)
			}
			return nil
		case <-died:
			return fmt.Errorf("the mesos-go messenger's process ended: %s", how)
		case <-ctx.Done():
			return fmt.Errorf("send did not complete: %w", ctx.Err())
		}
	}
	return c
}
