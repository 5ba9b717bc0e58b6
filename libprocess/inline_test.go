package libprocess

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The mailbox lets a caller serve one event inline only while nobody
// serves the process and nothing is queued, and hands what was queued
// meanwhile to the loop, in order.
func TestMailboxInlineHandOff(t *testing.T) {
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
	if err := m.put(event{kind: evTerminate}); err != nil {
		t.Fatal(err)
	}
	if m.tryInline() {
		t.Fatal("tryInline succeeded with a terminate queued")
	}
}

// Routes served on their connection's goroutine are still the process'
// events: DispatchWait from them refuses instead of deadlocking, and
// events they queue run after them.
func TestRouteServedInline(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("svc")
	var inline, onLoop int
	var order []string
	p.Route("wait", Help{TLDR: "DispatchWait from a route"}, func(req *Request, respond Responder) {
		if goroutineID() == p.loopGID.Load() {
			onLoop++
		} else {
			inline++
		}
		err := p.DispatchWait(func() {})
		order = append(order, "route")
		if derr := p.Dispatch(func() { order = append(order, "dispatched") }); derr != nil {
			t.Error(derr)
		}
		if !errors.Is(err, ErrDispatchFromLoop) {
			respond(TextResponse(500, "DispatchWait from a route: "+errorText(err)))
			return
		}
		respond(TextResponse(200, "refused"))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	const n = 20
	for i := 0; i < n; i++ {
		c.write("GET /svc/wait HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read(); r.Status != 200 {
			t.Fatalf("request %d: %q %q", i, r.StatusLine, r.Body)
		}
	}
	var got string
	if err := p.DispatchWait(func() { got = strings.Join(order, ",") }); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(strings.Repeat("route,dispatched,", n), ","); got != want {
		t.Fatalf("order of events: %s", got)
	}
	if inline == 0 {
		t.Fatalf("no request of %d on an idle process was served inline (%d on its goroutine)", n, onLoop)
	}
}

func errorText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
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
