package pkgpanda

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	"github.com/procpanda/procpanda/processes/pkgpanda/subprocess"
)

// The audit log is one info-level line per mutation asked for, from any
// front-end, written when its outcome is known:
//
//	{"level":"info","component":"pkgpanda","log":"audit",
//	 "operation":"activate","ids":["mesos--1.2"],"principal":"ops",
//	 "from":"","peer":"10.0.0.5:41234","outcome":"ok","status":204,"exit_codes":[0],
//	 "duration_ms":812.5,"message":"pkgpanda audit"}
//
// operation is the operation's name (operations.go); ids are the package
// ids handed to the pkgpanda tool; principal is the authenticated
// principal (empty without credentials), from the sender UPID of a
// message; outcome is "ok" (every tool run exited 0), "failed" (a tool
// run failed, or the operation failed before running the tool: status
// says how), "refused" (401/403: authentication or authorization) or
// "rejected" (503: queue full, draining, repository lock busy);
// exit_codes lists the tool's exit status per run (-1: killed by a
// signal); duration_ms runs from the request reaching dispatch to the
// outcome.

// auditRecord follows one mutation from dispatch to its outcome.
type auditRecord struct {
	p     *Process
	op    string
	who   caller
	start time.Time

	// Filled by the actor's goroutine while the mutation runs.
	ids      []string
	exits    []int
	fail     bool
	depth    int  // mutation operations entered and not yet returned
	answered bool // a mutation operation answered: status, errMsg
	status   int
	errMsg   string

	once sync.Once
}

// auditStart begins the record of a mutation; nil for read-only
// operations.
func (p *Process) auditStart(spec opSpec, c caller) *auditRecord {
	if !spec.mutates {
		return nil
	}
	return &auditRecord{p: p, op: spec.name, who: c, start: time.Now()}
}

// auditReject wraps a front-end's reject so that a mutation rejected
// anywhere (refused, queue full, draining, lock busy, failed download)
// is audited once.
func (p *Process) auditReject(r *auditRecord, reject func(status int, msg string)) func(status int, msg string) {
	if r == nil {
		return reject
	}
	return func(status int, msg string) {
		outcome := "failed"
		switch status {
		case http.StatusUnauthorized, http.StatusForbidden:
			outcome = "refused"
		case http.StatusServiceUnavailable:
			outcome = "rejected"
		}
		p.auditEnd(r, outcome, status, msg)
		reject(status, msg)
	}
}

// addRun notes one tool run of the mutation being executed.
func (r *auditRecord) addRun(argv []string, res *subprocess.Result, err error) {
	for _, a := range argv {
		if len(a) > 0 && a[0] != '-' && cli.ValidID(a) == nil {
			r.ids = append(r.ids, a)
		}
	}
	code := -1
	if res != nil {
		code = res.ExitCode
	}
	r.exits = append(r.exits, code)
	if err != nil {
		r.fail = true
	}
}

// auditRan ends the record of a mutation that was executed.
func (p *Process) auditRan(r *auditRecord) {
	if r == nil {
		return
	}
	outcome := "ok"
	if r.answered && r.status >= 400 || !r.answered && r.fail {
		outcome = "failed"
	}
	p.auditEnd(r, outcome, r.status, r.errMsg)
}

// auditEnd writes the record's line, once.
func (p *Process) auditEnd(r *auditRecord, outcome string, status int, msg string) {
	r.once.Do(func() {
		from := ""
		if r.who.from != (libprocess.UPID{}) {
			from = r.who.from.String()
		}
		exits := make([]int, len(r.exits))
		copy(exits, r.exits)
		ev := p.log.Info().Str("log", "audit").Str("operation", r.op).Strs("ids", r.ids).
			Str("principal", r.who.principal).Str("from", from).Str("peer", r.who.peer).
			Str("outcome", outcome).Int("status", status).Ints("exit_codes", exits).
			Float64("duration_ms", float64(time.Since(r.start))/float64(time.Millisecond))
		if msg != "" {
			ev = ev.Str("error", msg)
		}
		ev.Msg("pkgpanda audit")
	})
}

// countExit counts a tool run's exit status under
// pkgpanda/<route>/exit_status/<code> ("signal" when a signal ended it,
// "not_started" when it never ran).
func (a *actor) countExit(res *subprocess.Result) {
	if a.metrics == nil {
		return
	}
	key := "not_started"
	switch {
	case res == nil:
	case res.ExitCode == 0 && a.exit0 != nil:
		a.exit0.Inc() // the usual case, without building the name
		return
	case res.ExitCode < 0:
		key = "signal"
	default:
		key = strconv.Itoa(res.ExitCode)
	}
	a.metrics.Counter("pkgpanda/" + a.route + "/exit_status/" + key).Inc()
}

// enterOp marks the start of a mutation operation on the actor (nested
// operations count once); it returns nothing of use and is evaluated by
// the operation's deferred noteOutcome.
func (a *actor) enterOp() struct{} {
	if a.audit != nil {
		a.audit.depth++
	}
	return struct{}{}
}

// noteOutcome records the answer of the mutation being run (deferred by
// the mutation operations) and, when the outermost operation returns,
// writes the audit line: before the answer reaches the client.
func (a *actor) noteOutcome(_ struct{}, r **PkgpandaResponse) {
	if a.audit == nil {
		return
	}
	a.audit.depth--
	if a.audit.depth > 0 || *r == nil {
		return
	}
	a.audit.answered = true
	a.audit.status = int((*r).Status)
	a.audit.errMsg = (*r).Error
	a.audit.p.auditRan(a.audit)
}
