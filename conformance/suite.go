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
	// Unmet is the outcome of a case beyond libprocess (Case.Beyond) the
	// target did not pass: shown with what was seen, not a failure
	// (unless Options.RequireBeyond), since C++ libprocess does not pass
	// it either.
	Unmet Status = "UNMET"
)

// Categories of cases, as the report counts them.
const (
	// CategoryRequired: what C++ libprocess itself does; every
	// libprocess implementation must pass these.
	CategoryRequired = "required"
	// CategoryBeyond: what procpanda promises beyond C++ libprocess
	// (Case.Beyond cites the C++ source that does less).
	CategoryBeyond = "beyond libprocess"
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
	// RequireBeyond makes the cases beyond libprocess (Case.Beyond)
	// FAIL instead of UNMET when the target does not pass them: for
	// targets that make procpanda's promises, such as procpanda itself.
	RequireBeyond bool
	// MesosGoHelper, when set, is the command (argv) of a process that
	// runs the mesos-go messenger for each mesos-go case: the program
	// running the suite, which calls RunHelper first in main. A panic in
	// one of mesos-go's own goroutines (which no recover can catch) then
	// ends that process and fails the case, instead of ending the run.
	// Empty: the messenger runs in this process.
	MesosGoHelper []string
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
	// Beyond, when set, marks a case that checks more than C++ libprocess
	// does (CategoryBeyond) and says what C++ libprocess does instead,
	// citing its source; such a case is UNMET rather than FAIL when the
	// target does not pass it, unless Options.RequireBeyond.
	Beyond string
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
	// Beyond is the case's Case.Beyond: set for cases beyond libprocess.
	Beyond  string
	Elapsed time.Duration
}

// Category is CategoryBeyond for a case beyond libprocess, otherwise
// CategoryRequired.
func (r Result) Category() string {
	if r.Beyond != "" {
		return CategoryBeyond
	}
	return CategoryRequired
}

// Line formats the result as one report line. A case beyond libprocess
// says so after its section, and when not passed, what C++ libprocess
// does instead.
func (r Result) Line() string {
	section := r.Section
	if r.Beyond != "" {
		section += "; " + CategoryBeyond
	}
	switch {
	case r.Status == Skip:
		return fmt.Sprintf("SKIP %s (%s): %s", r.ID, section, r.Seen)
	case r.Beyond != "" && r.Status != Pass:
		return fmt.Sprintf("%s %s (%s): expected %s; seen %s; C++ libprocess: %s", r.Status, r.ID, section, r.Expected, r.Seen, r.Beyond)
	default:
		return fmt.Sprintf("%s %s (%s): expected %s; seen %s", r.Status, r.ID, section, r.Expected, r.Seen)
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

// Failed reports whether any case failed (UNMET cases beyond libprocess
// are no failures).
func (r Report) Failed() bool { return r.Count(Fail) > 0 }

// countIn returns how many results of category cat have status s.
func (r Report) countIn(cat string, s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Category() == cat && res.Status == s {
			n++
		}
	}
	return n
}

// Result returns the result of the case with the given id.
func (r Report) Result(id string) (Result, bool) {
	for _, res := range r.Results {
		if res.ID == id {
			return res, true
		}
	}
	return Result{}, false
}

// Summary is the closing line, one part per category: "required: N
// passed, N failed, N skipped; beyond libprocess: N passed, N unmet, N
// skipped" (", N failed" too when Options.RequireBeyond failed some).
func (r Report) Summary() string {
	beyond := fmt.Sprintf("%d passed, %d unmet", r.countIn(CategoryBeyond, Pass), r.countIn(CategoryBeyond, Unmet))
	if n := r.countIn(CategoryBeyond, Fail); n > 0 {
		beyond += fmt.Sprintf(", %d failed", n)
	}
	return fmt.Sprintf("%s: %d passed, %d failed, %d skipped; %s: %s, %d skipped",
		CategoryRequired, r.countIn(CategoryRequired, Pass), r.countIn(CategoryRequired, Fail), r.countIn(CategoryRequired, Skip),
		CategoryBeyond, beyond, r.countIn(CategoryBeyond, Skip))
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
	ID       string `json:"id"`
	Section  string `json:"section"`
	Title    string `json:"title"`
	Category string `json:"category"`
	Outcome  Status `json:"outcome"`
	Detail   string `json:"detail"`
	Beyond   string `json:"beyond,omitempty"`
}

// WriteJSON writes one JSON object per result, one per line in run order
// (JSON Lines), so reports of runs against different targets can be diffed
// line by line: {"id", "section", "title", "category" ("required" or
// "beyond libprocess"), "outcome" (PASS, FAIL, UNMET or SKIP), "detail",
// "beyond" (what C++ libprocess does instead; cases beyond libprocess
// only)}; detail is "expected …; seen …", or a skip's reason.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, res := range r.Results {
		detail := res.Seen
		if res.Status != Skip {
			detail = fmt.Sprintf("expected %s; seen %s", res.Expected, res.Seen)
		}
		rec := record{ID: res.ID, Section: res.Section, Title: res.Title, Category: res.Category(), Outcome: res.Status, Detail: detail, Beyond: res.Beyond}
		if err := enc.Encode(rec); err != nil {
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
	return runCases(ctx, opts, Cases()), nil
}

// runCases runs the cases enabled by opts (defaults filled in) in order.
// Whatever a case does, the run goes on to the next and ends with a
// report of every case it ran.
func runCases(ctx context.Context, opts Options, cases []Case) Report {
	s := &suite{opts: opts, passed: map[string]bool{}}
	defer s.close()
	var rep Report
	for _, c := range cases {
		if c.Group == GroupMesosGo && !opts.MesosGo || c.Group == GroupPkgpanda && !opts.Pkgpanda {
			continue
		}
		if opts.Run != nil && !opts.Run.MatchString(c.ID) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		res := s.runContained(ctx, c)
		if res.Status == Pass {
			s.passed[c.ID] = true
		}
		rep.Results = append(rep.Results, res)
		if opts.OnResult != nil {
			opts.OnResult(res)
		}
	}
	return rep
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

// runContained runs one case and turns a panic of the suite's own
// bookkeeping into the case's failure, so that the run always reaches
// its summary. (Panics of the case itself are caught in run; panics in
// goroutines a peer library owns cannot be caught in-process: see
// Options.MesosGoHelper.)
func (s *suite) runContained(ctx context.Context, c Case) (res Result) {
	defer func() {
		if v := recover(); v != nil {
			res = Result{ID: c.ID, Section: c.Section, Title: c.Title, Beyond: c.Beyond, Status: Fail, Expected: "the case to run", Seen: fmt.Sprintf("the suite panicked running it: %v", v)}
		}
	}()
	return s.run(ctx, c)
}

// run executes one case with its timeout.
func (s *suite) run(parent context.Context, c Case) Result {
	res := Result{ID: c.ID, Section: c.Section, Title: c.Title, Beyond: c.Beyond}
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
	if res.Status == Fail && c.Beyond != "" && !s.opts.RequireBeyond {
		res.Status = Unmet
	}
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
