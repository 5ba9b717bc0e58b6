package libprocess

import (
	"bytes"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The access log (Config.AccessLog) is one zerolog line at info level per
// HTTP request the runtime answers, whatever the answer (routes, 404, 400,
// 403 from the firewall, 503, 504), written when the response head is
// ready:
//
//	{"level":"info","method":"GET","path":"/pkgpanda/repository/",
//	 "status":200,"bytes":312,"duration_ms":4.21,"principal":"ops",
//	 "message":"http request"}
//
// plus the logger's own fields (time, component). path is the request's
// path as received, without its query (which may carry secrets); bytes is
// the body length as sent (after gzip), or -1 for a streamed body whose
// length is not known yet; duration_ms runs from the arrival of the
// request head to the response being ready; principal is the principal
// that authenticated (Request.Principal, or the one a route reported with
// Request.SetPrincipal), empty for none. Messages are not logged here.

// logAccess writes the access-log line of one HTTP request. req is nil
// when the request was answered before it reached a process.
func (s *server) logAccess(ctx *fasthttp.RequestCtx, req *Request, start time.Time) {
	ev := s.rt.log.Info()
	if ev == nil {
		return
	}
	path := ctx.URI().PathOriginal()
	if q := bytes.IndexByte(path, '?'); q >= 0 {
		path = path[:q]
	}
	n := int64(len(ctx.Response.Body()))
	if ctx.Response.IsBodyStream() {
		n = -1
	}
	principal := ""
	if req != nil {
		principal = req.principal()
	}
	ev.Bytes("method", ctx.Method()).
		Bytes("path", path).
		Int("status", ctx.Response.StatusCode()).
		Int64("bytes", n).
		Float64("duration_ms", float64(time.Since(start))/float64(time.Millisecond)).
		Str("principal", principal).
		Msg("http request")
}

// reportedPrincipal holds a principal a route reported with SetPrincipal.
type reportedPrincipal struct{ p atomic.Pointer[string] }

// SetPrincipal records the principal a route authenticated by itself (not
// through an authentication realm), so that the access log names it. It
// is safe to call from any goroutine, before or after responding; the
// last call before the response is ready counts.
func (r *Request) SetPrincipal(principal string) {
	r.reported.p.Store(&principal)
}

// principal is the principal the access log shows.
func (r *Request) principal() string {
	if p := r.reported.p.Load(); p != nil {
		return *p
	}
	return r.Principal
}
