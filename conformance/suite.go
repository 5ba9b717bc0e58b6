// Package conformance is a black-box conformance suite for libprocess
// endpoints (the actor runtime of Apache Mesos) and for the Pkgpanda HTTP
// API. It talks to a target over the network only, so it can check procpanda,
// a C++ libprocess program or any other implementation.
//
// Every case has a stable id and cites the section of
// docs/libprocess-wire.md (or, for the pkgpanda section,
// docs/pkgpanda-cli.md §6) it checks. Run executes the selected cases in order and
// returns a Report; cmd/libprocess-conformance is the command-line front end.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Status is the outcome of one case.
type Status string

// Outcomes of a case.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Groups of cases; the optional groups run only when enabled in Options.
const (
	GroupLibprocess = "libprocess"
	GroupMesosGo    = "mesos-go"
	GroupPkgpanda   = "pkgpanda"
)

// DefaultTimeout bounds one case when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Options tells the suite where the target is and what it may assume.
type Options struct {
	// Target is the host:port of the libprocess endpoint under test.
	Target string
	// Process is the id of a process that exists on the target.
	Process string
	// Ping and Pong, when both set, promise that Process answers a message
	// named Ping by sending a message named Pong, with the same body, to the
	// sender's UPID. Round-trip cases SKIP without them.
	Ping, Pong string
	// MesosGo enables the mesos-go section; it promises that Process answers
	// mesos.internal.SmallMessage with mesos.internal.SmallMessage carrying
	// the same body, sent back to the sender.
	MesosGo bool
	// Pkgpanda enables the Pkgpanda HTTP API section.
	Pkgpanda bool
	// PkgpandaID is the id of the pkgpanda process; "pkgpanda" when empty.
	PkgpandaID string
	// Fixture is the directory of the pkgpanda fixture the target's tool
	// started from (a pristine copy of the shared pkgpanda fixture shared/fixtures/pkgpanda/http);
	// the suite derives expected state from it and fetches from
	// file://<Fixture>/remote_repo/. Cases needing it SKIP when empty.
	Fixture string
	// PkgpandaRoundTrip is the hook for a message round trip through the
	// pkgpanda process; the case SKIPs while it is nil.
	PkgpandaRoundTrip *RoundTrip
	// PkgpandaClientList is the hook for a typed client of the pkgpanda
	// process (processes/pkgpanda/client): it lists the repository of
	// process pid over libprocess messages, from a runtime of its own.
	// The case comparing it with GET /repository/ SKIPs while it is nil.
	PkgpandaClientList func(ctx context.Context, pid string) ([]string, error)
	// Listen is the ip:port the suite's own libprocess peer listens on; by
	// default the local address the suite uses to reach Target, port 0.
	Listen string
	// Timeout bounds each case; DefaultTimeout when zero.
	Timeout time.Duration
	// Run, when set, selects the cases whose ids it matches.
	Run *regexp.Regexp
	// OnResult, when set, is called after each case with its result.
	OnResult func(Result)
}

// RoundTrip describes a message the target answers with another message,
// for the pkgpanda round-trip hook.
type RoundTrip struct {
	// Name and Body are the message the suite sends to the process.
	Name string
	Body []byte
	// ReplyName is the name of the message the process sends back.
	ReplyName string
	// Check validates the reply body; nil accepts any body.
	Check func(body []byte) error
}

// Case is one conformance check.
type Case struct {
	// ID is stable across versions, e.g. "route.dotdot".
	ID string
	// Section cites the sections checked: "§n.m" of docs/libprocess-wire.md, "pkgpanda-cli §n" of docs/pkgpanda-cli.md.
	Section string
	// Group is GroupLibprocess, GroupMesosGo or GroupPkgpanda.
	Group string
	// Title says in a few words what is checked.
	Title string
	// Mutates, when not empty, says how the case changes the target's state.
	Mutates string
	// After names a case that must PASS earlier in the same run; otherwise
	// this case SKIPs (mutating cases form such chains).
	After string
	// Run performs the check.
	Run func(*T)
}

// Result is the outcome of one case.
type Result struct {
	ID       string
	Section  string
	Title    string
	Status   Status
	Expected string
	Seen     string
	Elapsed  time.Duration
}

// Line formats the result as one report line.
func (r Result) Line() string {
	switch r.Status {
	case Skip:
		return fmt.Sprintf("SKIP %s (%s): %s", r.ID, r.Section, r.Seen)
	default:
		return fmt.Sprintf("%s %s (%s): expected %s; seen %s", r.Status, r.ID, r.Section, r.Expected, r.Seen)
	}
}

// Report is the outcome of a run.
type Report struct {
	Results []Result
}

// Count returns how many results have status s.
func (r Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Failed reports whether any case failed.
func (r Report) Failed() bool { return r.Count(Fail) > 0 }

// Result returns the result of the case with the given id.
func (r Report) Result(id string) (Result, bool) {
	for _, res := range r.Results {
		if res.ID == id {
			return res, true
		}
	}
	return Result{}, false
}

// Summary is the closing line "N passed, N failed".
func (r Report) Summary() string {
	return fmt.Sprintf("%d passed, %d failed", r.Count(Pass), r.Count(Fail))
}

// WriteText writes one line per result and the closing summary line.
func (r Report) WriteText(w io.Writer) error {
	for _, res := range r.Results {
		if _, err := fmt.Fprintln(w, res.Line()); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if _, err := fmt.Fprintln(w, r.Summary()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// record is one result as WriteJSON writes it.
type record struct {
	ID      string `json:"id"`
	Section string `json:"section"`
	Title   string `json:"title"`
	Outcome Status `json:"outcome"`
	Detail  string `json:"detail"`
}

// WriteJSON writes one JSON object per result, one per line in run order
// (JSON Lines), so reports of runs against different targets can be diffed
// line by line: {"id", "section", "title", "outcome" (PASS, FAIL or SKIP),
// "detail"}; detail is "expected …; seen …", or a skip's reason.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, res := range r.Results {
		detail := res.Seen
		if res.Status != Skip {
			detail = fmt.Sprintf("expected %s; seen %s", res.Expected, res.Seen)
		}
		if err := enc.Encode(record{ID: res.ID, Section: res.Section, Title: res.Title, Outcome: res.Status, Detail: detail}); err != nil {
			return fmt.Errorf("write JSON report: %w", err)
		}
	}
	return nil
}

// Cases returns every case of the suite in run order, optional groups
// included.
func Cases() []Case {
	var cs []Case
	cs = append(cs, messageCases()...)
	cs = append(cs, httpCases()...)
	cs = append(cs, builtinCases()...)
	cs = append(cs, peerCases()...)
	cs = append(cs, mesosGoCases()...)
	cs = append(cs, pkgpandaCases()...)
	return cs
}

// Run executes the cases enabled by opts in order. Failures of the target are
// results, never errors; the error reports unusable options.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.Target == "" {
		return Report{}, errors.New("conformance: Options.Target is required")
	}
	if _, _, err := net.SplitHostPort(opts.Target); err != nil {
		return Report{}, fmt.Errorf("conformance: bad Options.Target: %w", err)
	}
	if opts.Process == "" {
		return Report{}, errors.New("conformance: Options.Process is required")
	}
	if (opts.Ping == "") != (opts.Pong == "") {
		return Report{}, errors.New("conformance: Options.Ping and Options.Pong go together")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.PkgpandaID == "" {
		opts.PkgpandaID = "pkgpanda"
	}
	s := &suite{opts: opts, passed: map[string]bool{}}
	defer s.close()
	var rep Report
	for _, c := range Cases() {
		if c.Group == GroupMesosGo && !opts.MesosGo || c.Group == GroupPkgpanda && !opts.Pkgpanda {
			continue
		}
		if opts.Run != nil && !opts.Run.MatchString(c.ID) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		res := s.run(ctx, c)
		if res.Status == Pass {
			s.passed[c.ID] = true
		}
		rep.Results = append(rep.Results, res)
		if opts.OnResult != nil {
			opts.OnResult(res)
		}
	}
	return rep, nil
}

// suite holds what cases of one run share.
type suite struct {
	opts   Options
	passed map[string]bool
	seq    atomic.Int64

	mu      sync.Mutex // guards peer, help and their errors
	peer    *Peer
	peerErr error

	help    *helpIndex
	helpErr error
}

// close releases the run's resources.
func (s *suite) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peer != nil {
		_ = s.peer.Close()
	}
}

// abort is the panic value T uses to end a case early.
type abort struct{}

// run executes one case with its timeout.
func (s *suite) run(parent context.Context, c Case) Result {
	res := Result{ID: c.ID, Section: c.Section, Title: c.Title}
	if c.After != "" && !s.passed[c.After] {
		res.Status, res.Seen = Skip, fmt.Sprintf("needs %s to pass earlier in this run (state unknown otherwise)", c.After)
		return res
	}
	ctx, cancel := context.WithTimeout(parent, s.opts.Timeout)
	defer cancel()
	t := &T{ctx: ctx, s: s, id: c.ID, status: Pass}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer t.cleanup()
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(abort); !ok {
					t.record(Fail, fmt.Sprintf("case panicked: %v", v))
				}
			}
		}()
		c.Run(t)
	}()
	grace := time.NewTimer(s.opts.Timeout + time.Second)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		t.record(Fail, fmt.Sprintf("case did not finish within %s", s.opts.Timeout))
	}
	res.Elapsed = time.Since(start)
	res.Status, res.Expected, res.Seen = t.result()
	return res
}

// T is the handle a case uses to talk to the target and record its outcome.
// A case that returns without calling Fatalf or Skipf passes.
type T struct {
	ctx context.Context
	s   *suite
	id  string

	mu       sync.Mutex
	status   Status
	expected string
	seen     string
	cleanups []func()
}

// record sets the outcome unless one was already recorded.
func (t *T) record(s Status, seen string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status != Pass {
		return
	}
	t.status, t.seen = s, seen
}

// result returns the recorded outcome.
func (t *T) result() (Status, string, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.expected, t.seen
}

// Context is the case's context; its deadline is the case timeout.
func (t *T) Context() context.Context { return t.ctx }

// Options returns the run's options (defaults filled in).
func (t *T) Options() Options { return t.s.opts }

// Expect sets the text describing what the case expects.
func (t *T) Expect(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expected = fmt.Sprintf(format, args...)
}

// Seen sets the text describing what the case observed (shown on PASS).
func (t *T) Seen(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status == Pass {
		t.seen = fmt.Sprintf(format, args...)
	}
}

// Fatalf records a failure with what was seen and ends the case.
func (t *T) Fatalf(format string, args ...any) {
	t.record(Fail, fmt.Sprintf(format, args...))
	panic(abort{})
}

// Skipf records a skip with its reason and ends the case.
func (t *T) Skipf(format string, args ...any) {
	t.record(Skip, fmt.Sprintf(format, args...))
	panic(abort{})
}

// Cleanup registers f to run when the case ends.
func (t *T) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// cleanup runs the registered functions in reverse order.
func (t *T) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// unique returns a token unique within the run, for message bodies.
func (t *T) unique() string {
	return fmt.Sprintf("%s#%d", t.id, t.s.seq.Add(1))
}

// dial opens a raw connection to the target, closed when the case ends.
func (t *T) dial() *rawConn {
	c, err := dialRaw(t.ctx, t.s.opts.Target)
	if err != nil {
		t.Fatalf("cannot connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip sends raw request bytes on a fresh connection and reads one
// response.
func (t *T) roundTrip(req []byte) *response {
	c := t.dial()
	r, err := c.roundTrip(req)
	if err != nil {
		t.Fatalf("%s (request %q)", err, abbreviate(req))
	}
	return r
}

// get performs a GET of path on a fresh connection with extra header lines
// ("Name: value").
func (t *T) get(path string, extra ...string) *response {
	return t.roundTrip(httpRequest("GET", path, t.s.opts.Target, nil, extra...))
}

// peer starts (once per run) and returns the suite's libprocess peer.
func (t *T) peer() *Peer {
	p, err := t.s.startPeer(t.ctx)
	if err != nil {
		t.Fatalf("cannot start the suite's peer: %v", err)
	}
	return p
}

// startPeer starts the run's peer on first use.
func (s *suite) startPeer(ctx context.Context) (*Peer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peer == nil && s.peerErr == nil {
		addr := s.opts.Listen
		if addr == "" {
			addr, s.peerErr = localAddrToward(ctx, s.opts.Target)
		}
		if s.peerErr == nil {
			s.peer, s.peerErr = listenPeer(addr)
		}
	}
	return s.peer, s.peerErr
}

// needPing returns the ping/pong names or skips the case.
func (t *T) needPing() (ping, pong string) {
	o := t.s.opts
	if o.Ping == "" {
		t.Skipf("needs --ping/--pong (a message the target answers by sending a message back)")
	}
	return o.Ping, o.Pong
}

// contextWithFraction derives a context whose deadline is 1/n of the time
// left before ctx's deadline.
func contextWithFraction(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, DefaultTimeout/time.Duration(n))
	}
	return context.WithTimeout(ctx, time.Until(d)/time.Duration(n))
}

// localAddrToward returns "ip:0" with the local IP used to reach target.
func localAddrToward(ctx context.Context, target string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp4", target)
	if err != nil {
		return "", fmt.Errorf("find local address toward %s: %w", target, err)
	}
	defer c.Close()
	host, _, err := net.SplitHostPort(c.LocalAddr().String())
	if err != nil {
		return "", fmt.Errorf("local address: %w", err)
	}
	return net.JoinHostPort(host, "0"), nil
}

// httpRequest builds an HTTP/1.1 request with a Host header, extra header
// lines and, when body is not nil, a Content-Length body.
func httpRequest(method, path, host string, body []byte, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return []byte(b.String())
}

// abbreviate shortens bytes for a report line.
func abbreviate(b []byte) string {
	const max = 160
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
