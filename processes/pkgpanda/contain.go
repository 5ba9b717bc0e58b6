package pkgpanda

import (
	"fmt"
	"net/http"
	"runtime/debug"

	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// Failure containment. A panic in pkgpanda's own code, on any goroutine
// the process runs it on, is recovered where that goroutine begins, as
// libprocess recovers one per event: it is logged with its stack and
// counted (pkgpanda/panics), the request being served is answered 500 (a
// message with a PkgpandaResponse 500), what the request held is released
// by the deferred releases on the way out (locks, the actor's turn,
// uploads), and the goroutine's owner goes on (an actor with its next
// call). The goroutines are: the route actors (call.execute), the upload,
// body-reading and staging goroutines (goTracked), the libprocess handler
// of PkgpandaCall messages, and the caller that leads a shared run of
// `list`/`active` (resultCache.get hands its waiters a 500 before the
// panic goes on to the leader's own recovery).

// internalError is the answer to a request whose serving panicked.
const internalError = "internal error in pkgpanda while serving this request; its log has the details"

// recovered logs a panic recovered while doing what, with its stack, and
// counts it.
func (p *Process) recovered(v any, what string) {
	if p.m.panics != nil {
		p.m.panics.Inc()
	}
	p.log.Error().Str("panic", fmt.Sprint(v)).Str("while", what).Bytes("stack", debug.Stack()).
		Msg("pkgpanda recovered a panic; the request is answered 500 and the process goes on")
}

// contain runs f, recovering a panic in it: the panic is logged and
// counted and answer, if set, answers the request f served (it must be
// safe to call after an answer was already given: every answer path
// counts only its first call). A panic in answer itself is logged too.
func (p *Process) contain(what string, answer func(), f func()) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		p.recovered(v, what)
		if answer != nil {
			p.contain(what+" (answering 500)", nil, answer)
		}
	}()
	f()
}

// goTracked runs f on a new goroutine that Drain waits for; the caller
// has already counted it in uploadsDone. A panic in f is contained, and
// onPanic answers the request f was serving.
func (p *Process) goTracked(what string, onPanic func(), f func()) {
	go func() {
		defer p.uploadsDone.Done()
		p.contain(what, onPanic, f)
	}()
}

// failInternal is the PkgpandaResponse of a request whose serving
// panicked.
func failInternal() *pb.PkgpandaResponse {
	return failed(http.StatusInternalServerError, "%s", internalError)
}
