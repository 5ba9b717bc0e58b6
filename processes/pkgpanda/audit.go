package pkgpanda

import (
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
// signal); duration_ms runs from the call being made to its outcome.

// auditRecord follows one mutation from its call to its outcome.
type auditRecord struct {
	p     *Process
	op    string
	who   caller
	start time.Time

	// Filled by the actor's goroutine while the mutation runs.
	ids   []string
	exits []int

	once sync.Once
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
