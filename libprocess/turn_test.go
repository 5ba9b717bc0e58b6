package libprocess

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// The turn passes to an inline caller only while nobody holds it and
// nothing is queued, and what was queued meanwhile goes to the loop, in
// order.
func TestMailboxTurn(t *testing.T) {
	m := newMailbox(8)
	if m.tryInline() {
		t.Fatal("tryInline succeeded before the loop released the process")
	}
	if _, _, ok := m.take(nil); ok {
		t.Fatal("take of an empty mailbox reported events")
	}
	if !m.tryInline() {
		t.Fatal("tryInline failed on an idle, empty mailbox")
	}
	if m.tryInline() {
		t.Fatal("two callers held the process inline at once")
	}
	if err := m.put(event{kind: evDispatch}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.wake: // put signals; the loop must then find nothing to take
	default:
		t.Fatal("put into an empty mailbox did not signal")
	}
	if _, _, ok := m.take(nil); ok {
		t.Fatal("the loop took events while an inline caller held the process")
	}
	m.endInline()
	select {
	case <-m.wake:
	default:
		t.Fatal("endInline with events queued did not wake the loop")
	}
	if batch, _, ok := m.take(nil); !ok || len(batch) != 1 {
		t.Fatalf("take after endInline: %d events, ok %v", len(batch), ok)
	}
	if m.tryInline() {
		t.Fatal("tryInline succeeded while the loop serves a batch")
	}
	if err := m.put(event{kind: evDispatch}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := m.take(nil); !ok {
		t.Fatal("the loop did not take what was queued while it served")
	}
	if _, _, ok := m.take(nil); ok || !m.tryInline() {
		t.Fatal("the process did not become idle once the loop found nothing")
	}
	m.endInline()
	if err := m.put(event{kind: evDispatch}); err != nil {
		t.Fatal(err)
	}
	if m.tryInline() {
		t.Fatal("tryInline succeeded with an event queued: it would overtake it")
	}
	if _, _, ok := m.take(nil); !ok {
		t.Fatal("the loop did not take the queued event")
	}
	if _, _, ok := m.take(nil); ok {
		t.Fatal("take found events in an empty mailbox")
	}
	m.queuedOnly = true
	if m.tryInline() {
		t.Fatal("tryInline succeeded on a mailbox that serves only through the loop")
	}
	m.queuedOnly = false
	if err := m.put(event{kind: evTerminate}); err != nil {
		t.Fatal(err)
	}
	if m.tryInline() {
		t.Fatal("tryInline succeeded with a terminate queued")
	}
}

// Routes served on their connection's goroutine are still the process'
// events: one at a time, and events they queue run after them.
func TestRouteServedInline(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	var modes, order []string
	p.Route("r", Help{TLDR: "records who serves it"}, func(req *Request, respond Responder) {
		modes = append(modes, holderOf(p).String())
		order = append(order, "route")
		if err := p.Dispatch(func() { order = append(order, "dispatched") }); err != nil {
			t.Error(err)
		}
		respond(TextResponse(200, "ok"))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	const n = 20
	for i := 0; i < n; i++ {
		waitIdle(t, p)
		c.write("GET /svc/r HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read(); r.Status != 200 {
			t.Fatalf("request %d: %q %q", i, r.StatusLine, r.Body)
		}
	}
	var got, gotModes string
	if err := p.DispatchWait(func() { got, gotModes = strings.Join(order, ","), strings.Join(modes, ",") }); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(strings.Repeat("route,dispatched,", n), ","); got != want {
		t.Fatalf("order of events: %s", got)
	}
	if want := strings.TrimSuffix(strings.Repeat("inline,", n), ","); gotModes != want {
		t.Fatalf("requests to an idle process were served by %s, want all inline", gotModes)
	}
}

// An HTTP request that finds the loop holding the turn is not served
// inline: it is queued and served by the loop after what came before it.
// Once the process is idle again the next one is served on the caller's
// goroutine, before serveInline returns.
func TestInlineWaitsForTheTurn(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	var order []string
	p.Route("r", Help{TLDR: "records who serves it"}, func(req *Request, respond Responder) {
		order = append(order, "route:"+holderOf(p).String())
		respond(TextResponse(200, "ok"))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	running, release := make(chan struct{}), make(chan struct{})
	if err := p.Dispatch(func() {
		order = append(order, "blocker")
		close(running)
		<-release
	}); err != nil {
		t.Fatal(err)
	}
	<-running
	e, answer := routeEvent("/r")
	if p.serveInline(&e) {
		t.Fatal("a request was served inline while the loop held the turn")
	}
	if err := p.enqueue(e); err != nil {
		t.Fatal(err)
	}
	close(release)
	if r := <-answer; r.Status != 200 {
		t.Fatalf("queued request answered %d", r.Status)
	}

	waitIdle(t, p)
	e, answer = routeEvent("/r")
	if !p.serveInline(&e) {
		t.Fatal("a request to an idle process was not served inline")
	}
	select {
	case r := <-answer:
		if r.Status != 200 {
			t.Fatalf("inline request answered %d", r.Status)
		}
	default:
		t.Fatal("serveInline returned before the route answered")
	}
	var got string
	if err := p.DispatchWait(func() { got = strings.Join(order, ",") }); err != nil {
		t.Fatal(err)
	}
	if want := "blocker,route:loop,route:inline"; got != want {
		t.Fatalf("order of events: %s, want %s", got, want)
	}
}

// Every path an event can take goes through serveAndRecover and its recover: a
// route served inline or by the loop, OnInitialize and OnFinalize. (The
// message, dispatch and exited paths: TestHandlerPanicsAreContained.)
func TestPanicRecoveredOnEveryPath(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("fragile")
	p.OnInitialize(func() { panic("initialize exploded") })
	p.OnFinalize(func() { panic("finalize exploded") })
	p.Route("boom", Help{TLDR: "panics"}, func(req *Request, respond Responder) { panic("route exploded") })
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	// By the loop: queued behind a dispatch that holds the turn.
	running, release := make(chan struct{}), make(chan struct{})
	if err := p.Dispatch(func() { close(running); <-release }); err != nil {
		t.Fatal(err)
	}
	<-running
	e, answer := routeEvent("/boom")
	if err := p.enqueue(e); err != nil {
		t.Fatal(err)
	}
	close(release)
	if r := <-answer; r.Status != 500 {
		t.Fatalf("route panicking on the loop answered %d, want 500", r.Status)
	}
	// Inline.
	waitIdle(t, p)
	e, answer = routeEvent("/boom")
	if !p.serveInline(&e) {
		t.Fatal("not served inline")
	}
	if r := <-answer; r.Status != 500 {
		t.Fatalf("route panicking inline answered %d, want 500", r.Status)
	}
	if err := p.DispatchWait(func() {}); err != nil {
		t.Fatalf("process gone after panics: %v", err)
	}
	p.Terminate()
	<-p.Done()
	if n := rt.Snapshot()["libprocess/handler_panics"]; n != 4 {
		t.Fatalf("libprocess/handler_panics = %v, want 4 (initialize, route twice, finalize)", n)
	}
}

// routeEvent returns an HTTP event for the route at path below the
// process, as server.routeRequest makes one, and the channel its answer comes on.
func routeEvent(path string) (event, <-chan Response) {
	answer := make(chan Response, 1)
	req := &Request{Method: "GET", URL: &url.URL{Path: path}}
	ev := &httpEvent{req: req, rest: path, response: answer}
	return event{kind: evHTTP, http: ev}, answer
}

// holderOf returns who holds p's turn.
func holderOf(p *Process) turn {
	p.mbox.mu.Lock()
	defer p.mbox.mu.Unlock()
	return p.mbox.turn
}

// waitIdle waits, on the mailbox's onFree hook, until nobody holds p's
// turn and nothing is queued, so that the next request is served inline.
func waitIdle(t *testing.T, p *Process) {
	t.Helper()
	freed := make(chan struct{}, 1)
	m := p.mbox
	m.mu.Lock()
	idle := m.turn == turnFree && len(m.pending) == 0
	m.onFree = func() {
		select {
		case freed <- struct{}{}:
		default:
		}
	}
	m.mu.Unlock()
	if idle {
		return
	}
	select {
	case <-freed:
	case <-time.After(10 * time.Second):
		t.Fatal("the process did not become idle")
	}
}

// An armed deadline stands for a later one only while it is at most the
// slack (an eighth of the timeout, at most a second) earlier.
func TestKeepDeadline(t *testing.T) {
	base := time.Unix(1000, 0)
	for _, c := range []struct {
		name    string
		armed   time.Time
		want    time.Time
		timeout time.Duration
		keep    bool
	}{
		{"none armed", time.Time{}, base, time.Minute, false},
		{"same", base, base, time.Minute, true},
		{"just under a second earlier", base, base.Add(999 * time.Millisecond), time.Minute, true},
		{"a second earlier", base, base.Add(time.Second), time.Minute, false},
		{"later than wanted", base.Add(time.Millisecond), base, time.Minute, false},
		{"an eighth of a short timeout", base, base.Add(100 * time.Millisecond), 800 * time.Millisecond, false},
		{"under an eighth of a short timeout", base, base.Add(99 * time.Millisecond), 800 * time.Millisecond, true},
	} {
		if got := keepDeadline(c.armed, c.want, c.timeout); got != c.keep {
			t.Errorf("%s: keepDeadline = %v, want %v", c.name, got, c.keep)
		}
	}
}
