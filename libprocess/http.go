package libprocess

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request is an HTTP request routed to a process. Handlers may keep it
// after they return (for responses finished later).
type Request struct {
	Method string
	URL    *url.URL // path as received (percent-decoded in URL.Path), with query
	// Body is the request body when it is at most
	// Config.BufferedBodyLimit bytes; larger bodies leave Body nil and
	// arrive as BodyStream.
	Body []byte
	// BodyStream, when non-nil, streams a large body from the socket. Read
	// it from a goroutine of your own (never on the process' goroutine)
	// and before calling the Responder; reads past
	// Config.MaxRequestBodySize fail with ErrBodyTooLarge, and reads wait
	// for the client no longer than the route's deadline.
	BodyStream io.Reader
	RemoteAddr net.Addr
	// Route is the installed route name that matched, e.g. "repository".
	Route string
	// Principal is the authenticated principal when the route has a realm
	// with an authenticator (docs/libprocess-wire.md §7); empty otherwise.
	Principal string

	st       *reqState         // header and cancellation; nil for a zero Request
	reported reportedPrincipal // SetPrincipal
}

// NewRequest returns a request with the given method, URL path and
// header, for code that hands a Request to an Authenticator or a handler
// itself. Its Context is context.Background().
func NewRequest(method, path string, header http.Header) *Request {
	return &Request{Method: method, URL: &url.URL{Path: path}, st: &reqState{header: header, made: true}}
}

// Header returns the request's header, with canonical keys. It is made on
// first use from the head as received; the same map is returned after.
func (r *Request) Header() http.Header {
	if r.st == nil {
		return nil
	}
	return r.st.headerMap()
}

// limitedBody fails reads past its limit instead of truncating silently.
type limitedBody struct {
	r    io.Reader
	left int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Probe for one more byte: a body of exactly the limit is fine.
		var one [1]byte
		if n, err := l.r.Read(one[:]); n > 0 {
			return 0, ErrBodyTooLarge
		} else if err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// Context is cancelled when the client resets its connection (detected
// while the request is pending), when the response has been sent, at the
// route's deadline (Config.RouteTimeout, Process.SetRouteTimeout), or when
// the runtime shuts down. A client that only shut down its sending side
// still gets its answer.
func (r *Request) Context() context.Context {
	if r.st == nil || r.st.base == nil {
		return context.Background()
	}
	return r.st.context()
}

// err is Context().Err() without making the context.
func (r *Request) err() error {
	if r.st == nil || r.st.base == nil {
		return nil
	}
	return r.st.err()
}

// reqState is what a Request makes only when asked: its header map
// (Request.Header) and its context (Request.Context). A route that never
// looks at them costs neither a map nor a context registered with the
// server's base context, whose cancellation at shutdown the request's
// context inherits.
type reqState struct {
	base context.Context // nil for a request the runtime did not route

	// raw is the head's fields as the codec restated them: "Name: value"
	// lines, each ended by CRLF (wire.Head.AppendCanonical).
	raw string

	mu        sync.Mutex
	made      bool // header is made (a flag beside mu packs routed)
	cancelled bool
	header    http.Header     // made on first use unless made is already set
	ctx       context.Context // made on first use
	stop      context.CancelFunc
}

// headerMap returns the header, making it on first use from raw.
func (c *reqState) headerMap() http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.made {
		return c.header
	}
	c.made = true
	n := strings.Count(c.raw, "\r\n")
	h := make(http.Header, n)
	vals := make([]string, 0, n)
	for rest := c.raw; rest != ""; {
		line, after, _ := strings.Cut(rest, "\r\n")
		rest = after
		name, value, _ := strings.Cut(line, ":")
		key := textproto.CanonicalMIMEHeaderKey(name)
		vals = append(vals, strings.TrimLeft(value, " "))
		if prev, ok := h[key]; ok {
			h[key] = append(prev, vals[len(vals)-1])
			continue
		}
		h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	c.header = h
	return h
}

// context returns the request's context, making it on first use.
func (c *reqState) context() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		c.ctx, c.stop = context.WithCancel(c.base)
		if c.cancelled {
			c.stop()
		}
	}
	return c.ctx
}

// cancel cancels the request's context, now or when it is made.
func (c *reqState) cancel() {
	c.mu.Lock()
	c.cancelled = true
	stop := c.stop
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// err is the context's Err, whether or not it has been made.
func (c *reqState) err() error {
	c.mu.Lock()
	ctx, cancelled := c.ctx, c.cancelled
	c.mu.Unlock()
	switch {
	case ctx != nil:
		return ctx.Err()
	case cancelled:
		return context.Canceled
	}
	return c.base.Err()
}

// Response is what a route handler answers. Exactly one of Body and Stream
// carries the body. A streamed body is sent with chunked transfer coding
// while it is read; the runtime closes Stream when done, when the client
// goes away, or at the route's deadline — then possibly while a Read is
// blocked, as pipes and files allow.
type Response struct {
	Status int
	// ContentType is the body's media type, sent as Content-Type unless
	// Header has one. The helpers (TextResponse, JSONResponse, …) set it
	// and leave Header nil, which saves allocating a map per response.
	ContentType string
	// Header holds the other header fields to send; it may be nil. Set
	// fields with SetHeader, which makes it when needed.
	Header http.Header
	Body   []byte
	Stream io.ReadCloser
}

// SetHeader sets the header field key to value, making Header first if
// it is nil.
func (r *Response) SetHeader(key, value string) {
	if r.Header == nil {
		r.Header = make(http.Header, 1)
	}
	r.Header.Set(key, value)
}

// Responder finishes an HTTP request. It may be called from any goroutine,
// at any later time; only the first call counts.
type Responder func(Response)

// RouteHandler serves one HTTP request, one event of its process at a
// time: on the process' goroutine, or on the request's connection
// goroutine when the request found the process idle (see Process). It
// must eventually call respond exactly once, either before returning or
// later from another goroutine (a future response: the process goes on
// handling events meanwhile, docs/libprocess-wire.md §10.2). It must not block: the route
// deadline answers 504 for a response that comes late, but not for a
// handler that does not return. Work that waits (a command, a peer) runs
// on a goroutine of the handler's own, which answers when it is done.
type RouteHandler func(req *Request, respond Responder)

// Help documents a route for /help (docs/libprocess-wire.md §6.1). TLDR is one line; Usage
// defaults to the route's path.
type Help struct {
	TLDR           string
	Usage          string
	Description    string
	Authentication string
	Authorization  string
}

type route struct {
	name    string // without leading '/': "" is the root route
	realm   string // authentication realm; "" uses the process' realm
	help    Help
	handler RouteHandler
	// answers, when set on a root route, names the other routes it
	// serves, computed at lookup: the help process answers /help/<id> for
	// every process with documented routes, as C++' Help installs one
	// route per such id.
	answers func(name string) bool
	timeout time.Duration // the route's deadline; 0 means Config.RouteTimeout
}

// Route installs handler for the route name (e.g. "list.json",
// "repository"; "" or "/" is the process' root route /<id>) with help text
// shown under /help. Requests reach the longest installed route that is a
// prefix of their path at a segment boundary (docs/libprocess-wire.md §4.3).
func (p *Process) Route(name string, help Help, handler RouteHandler) {
	p.AuthenticatedRoute(name, "", help, handler)
}

// AuthenticatedRoute is Route for a route in an authentication realm
// (docs/libprocess-wire.md §7): when the runtime has an authenticator for realm, requests
// without valid credentials get 401 with a WWW-Authenticate challenge, and
// an authorizer's refusal gets 403. An empty realm means the process'
// realm (SetRealm).
func (p *Process) AuthenticatedRoute(name, realm string, help Help, handler RouteHandler) {
	name = strings.Trim(name, "/")
	r := &route{name: name, realm: realm, help: help, handler: handler}
	p.routes[name] = r
	if p.rt != nil {
		p.rt.help.add(p, r)
	}
}

// SetRouteTimeout gives the installed route name its own deadline instead
// of Config.RouteTimeout, for routes whose work takes long (installing or
// fetching packages): a request to it that has no response d after its
// head arrived is answered 504 and its context cancelled, and a streamed
// response from it ends d after the request arrived. Call it after Route
// and before Spawn; it fails if no route of that name is installed or d
// is not positive.
func (p *Process) SetRouteTimeout(name string, d time.Duration) error {
	name = strings.Trim(name, "/")
	r := p.routes[name]
	if r == nil {
		return fmt.Errorf("route timeout: process %q has no route %q", p.id, name)
	}
	if d <= 0 {
		return fmt.Errorf("route timeout for %q: %v is not positive", name, d)
	}
	r.timeout = d
	return nil
}

// SetRealm puts every route of the process that names no realm of its own
// into realm, like the readwrite/readonly realms libprocess is initialized
// with. Call it before Spawn.
func (p *Process) SetRealm(realm string) { p.realm = realm }

func (r *route) effectiveRealm(p *Process) string {
	if r.realm != "" {
		return r.realm
	}
	return p.realm
}

// lookupRoute finds the route for a path below /<id> (docs/libprocess-wire.md §4.3), as
// ProcessBase::consume does: try the whole remainder without its leading and
// trailing '/', then drop trailing segments ("a/b/c", "a/b", "a"). The root
// route answers only an empty remainder (/<id> and /<id>/): a nested path
// never falls back to it.
func (p *Process) lookupRoute(rest string) *route {
	name := strings.Trim(rest, "/")
	root := p.routes[""]
	for {
		if r := p.routes[name]; r != nil {
			return r
		}
		if name == "" {
			return nil
		}
		if root != nil && root.answers != nil && root.answers(name) {
			return root
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return nil
		}
		name = name[:i]
	}
}

// httpEvent carries one request into a mailbox and its response back.
// The response goes back one of two ways, decided under mu: one given
// before the request's goroutine starts waiting (a route answering at
// once, the common case) is left in slot, the connection's, for that
// goroutine to collect without a channel operation; one given after it
// started waiting is sent on response.
type httpEvent struct {
	req      *Request
	rest     string        // path after /<id>
	response chan Response // capacity 1; empty once the request is done
	slot     *Response     // where an early response is left; nil: always use response
	// timeout is the matched route's own deadline (ns), set when routed.
	timeout atomic.Int64

	mu      sync.Mutex
	done    bool // answered, or abandoned at the deadline
	waiting bool // the request's goroutine waits on response
	held    bool // slot holds the response, not yet collected
}

// respond delivers the first response; later ones, and any response after
// the request was abandoned at its deadline, are dropped, their streams
// closed.
func (h *httpEvent) respond(r Response) {
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		if r.Stream != nil {
			_ = r.Stream.Close()
		}
		return
	}
	h.done = true
	if !h.waiting && h.slot != nil {
		*h.slot, h.held = r, true
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	h.response <- r
}

// collect takes a response left in the slot (true). Otherwise, with wait
// set, the caller waits on response from now on.
func (h *httpEvent) collect(wait bool) (Response, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		r := *h.slot
		*h.slot, h.held = Response{}, false
		return r, true
	}
	if wait {
		h.waiting = true
	}
	return Response{}, false
}

// abandon gives the request up at its deadline. If a response came first
// it returns that instead (true). The caller waits on response already.
func (h *httpEvent) abandon() (Response, bool) {
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		return <-h.response, true
	}
	h.done = true
	h.mu.Unlock()
	return Response{}, false
}

func (p *Process) serveHTTP(h *httpEvent) {
	if err := h.req.err(); err != nil {
		// Answered 504 (or the client reset) while it waited in the
		// mailbox: do not start work nobody waits for.
		h.respond(TextResponse(http.StatusServiceUnavailable, "request abandoned before it was served: "+err.Error()))
		return
	}
	r := p.lookupRoute(h.rest)
	if r == nil {
		h.respond(notFound())
		return
	}
	if realm := r.effectiveRealm(p); realm != "" {
		principal, deny := p.rt.auth.check(realm, h.req)
		if deny != nil {
			p.rt.log.Info().Str("process", p.id).Str("route", r.name).Str("realm", realm).Int("status", deny.Status).Msg("HTTP request refused by authentication")
			h.respond(*deny)
			return
		}
		h.req.Principal = principal
	}
	if r.timeout > 0 {
		h.timeout.Store(int64(r.timeout))
	}
	h.req.Route = r.name
	p.rt.metrics.httpRequests.Add(1)
	r.handler(h.req, h.respond)
}

// JSONResponse returns a response with v encoded as JSON and Content-Type
// application/json. It ignores a jsonp query parameter; a route that honours
// one answers with JSONPResponse.
func JSONResponse(status int, v any) Response {
	b, err := json.Marshal(v)
	if err != nil {
		return ErrorResponse(http.StatusInternalServerError, "encoding response: "+err.Error())
	}
	return Response{Status: status, ContentType: "application/json", Body: b}
}

// JSONPResponse is JSONResponse for a route that honours the jsonp query
// parameter (docs/libprocess-wire.md §5.4), as C++ routes do by passing
// request.url.query.get("jsonp") to OK(json, jsonp): with a non-empty
// callback the body becomes "<callback>(<json>)" with Content-Type
// text/javascript. Pass req.URL.Query().Get("jsonp").
func JSONPResponse(status int, v any, callback string) Response {
	r := JSONResponse(status, v)
	if callback == "" || r.Status != status {
		return r
	}
	b := make([]byte, 0, len(callback)+len(r.Body)+2)
	b = append(append(append(append(b, callback...), '('), r.Body...), ')')
	r.Body = b
	r.ContentType = "text/javascript"
	return r
}

// ErrorResponse returns the JSON error body API routes answer with:
// {"error": msg}.
func ErrorResponse(status int, msg string) Response {
	return JSONResponse(status, map[string]string{"error": msg})
}

// notFoundBody is the body of C++ libprocess' NotFound() (docs/libprocess-wire.md §4.5).
const notFoundBody = "404 Not Found."

// notFound is the answer to an HTTP request no route takes (docs/libprocess-wire.md §4.5).
func notFound() Response { return TextResponse(http.StatusNotFound, notFoundBody) }

// TextResponse returns a text/plain response.
func TextResponse(status int, body string) Response {
	return Response{Status: status, ContentType: "text/plain; charset=utf-8", Body: []byte(body)}
}
