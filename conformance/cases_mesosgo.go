package conformance

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/gogo/protobuf/proto"
	"github.com/mesos/mesos-go/api/v0/messenger"
	"github.com/mesos/mesos-go/api/v0/messenger/testmessage"
	"github.com/mesos/mesos-go/api/v0/upid"
)

// mesosGoName is the name mesos-go v0.0.11 sends testmessage.SmallMessage
// under (docs/libprocess-wire.md §11.1).
const mesosGoName = "mesos.internal.SmallMessage"

// recordingTransporter reports the outcome of every send of the wrapped
// mesos-go transporter (the messenger itself only logs failures).
type recordingTransporter struct {
	messenger.Transporter
	sent chan error
}

// Send sends msg and reports the outcome.
func (r *recordingTransporter) Send(ctx context.Context, msg *messenger.Message) error {
	err := r.Transporter.Send(ctx, msg)
	select {
	case r.sent <- err:
	default:
	}
	return err
}

// mesosGoClient is a started mesos-go messenger with SmallMessage
// installed, in this process or in a helper process (Options.MesosGoHelper).
type mesosGoClient struct {
	// sendTo queues a SmallMessage with values to id@host:port and
	// returns the transporter's outcome.
	sendTo  func(ctx context.Context, id, host, port string, values []string) error
	replies chan reply
	// died is closed when the helper process ended (never in-process);
	// reason then says how.
	died   <-chan struct{}
	reason func() string
}

// reply is one SmallMessage the target sent back.
type reply struct {
	From   string   `json:"from"`
	Values []string `json:"values"`
}

// startMesosGo starts a mesos-go messenger on the suite's local address,
// in a helper process when Options.MesosGoHelper is set; it ends when the
// case ends.
func startMesosGo(t *T) *mesosGoClient {
	o := t.Options()
	addr := o.Listen
	if addr == "" {
		var err error
		if addr, err = localAddrToward(t.Context(), o.Target); err != nil {
			t.Fatalf("%v", err)
		}
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("bad listen address %q: %v", addr, err)
	}
	if len(o.MesosGoHelper) > 0 {
		return startMesosGoHelper(t, o.MesosGoHelper, host)
	}
	c := &mesosGoClient{replies: make(chan reply, 64), reason: func() string { return "" }}
	m, tr, err := newMesosGoMessenger(host, func(r reply) {
		select {
		case c.replies <- r:
		default:
		}
	})
	if err != nil {
		t.Fatalf("%v", err)
	}
	// In this process a request reaching the messenger while it stops
	// makes mesos-go v0.0.11 panic in a goroutine of its own (Hijack
	// called after ServeHTTP finished), which ends the run: cases wait
	// for the replies they provoked before this cleanup, and
	// MesosGoHelper removes the risk.
	t.Cleanup(func() { _ = m.Stop() })
	c.sendTo = func(ctx context.Context, id, host, port string, values []string) error {
		return sendSmall(ctx, m, tr, id, host, port, values)
	}
	return c
}

// newMesosGoMessenger starts a mesos-go messenger listening on host (any
// port) that passes every SmallMessage it receives to onReply.
func newMesosGoMessenger(host string, onReply func(reply)) (*messenger.MesosMessenger, *recordingTransporter, error) {
	tr := &recordingTransporter{
		Transporter: messenger.NewHTTPTransporter(upid.UPID{ID: PeerID + "-mesos-go", Host: host, Port: "0"}, net.ParseIP(host)),
		sent:        make(chan error, 64),
	}
	m := messenger.New(tr)
	err := m.Install(func(from *upid.UPID, msg proto.Message) {
		sm, _ := msg.(*testmessage.SmallMessage)
		onReply(reply{From: from.String(), Values: sm.GetValues()})
	}, &testmessage.SmallMessage{})
	if err != nil {
		return nil, nil, fmt.Errorf("mesos-go install: %w", err)
	}
	if err := m.Start(); err != nil {
		return nil, nil, fmt.Errorf("mesos-go start: %w", err)
	}
	return m, tr, nil
}

// sendSmall queues a SmallMessage on m and waits for the transporter's
// outcome.
func sendSmall(ctx context.Context, m *messenger.MesosMessenger, tr *recordingTransporter, id, host, port string, values []string) error {
	to := &upid.UPID{ID: id, Host: host, Port: port}
	if err := m.Send(ctx, to, &testmessage.SmallMessage{Values: values}); err != nil {
		return fmt.Errorf("queue send: %w", err)
	}
	select {
	case err := <-tr.sent:
		return err
	case <-ctx.Done():
		return fmt.Errorf("send did not complete: %w", ctx.Err())
	}
}

// send sends a SmallMessage with values to process id on the target and
// returns the transporter's outcome.
func (c *mesosGoClient) send(t *T, id string, values ...string) error {
	host, port, err := net.SplitHostPort(t.Options().Target)
	if err != nil {
		t.Fatalf("bad target: %v", err)
	}
	return c.sendTo(t.Context(), id, host, port, values)
}

// next returns the next reply, failing the case when the case's time is
// up (what said what was awaited) or the helper process died.
func (c *mesosGoClient) next(t *T, what func() string) reply {
	select {
	case r := <-c.replies:
		return r
	case <-c.died:
		t.Fatalf("%s: the mesos-go messenger's process ended: %s", what(), c.reason())
	case <-t.Context().Done():
		t.Fatalf("%s within the case's time limit", what())
	}
	return reply{}
}

// awaitReply waits for a SmallMessage carrying values.
func (c *mesosGoClient) awaitReply(t *T, values []string) reply {
	want := strings.Join(values, "\x00")
	for {
		r := c.next(t, func() string { return fmt.Sprintf("no %s reply with values %q", mesosGoName, values) })
		if strings.Join(r.Values, "\x00") == want {
			return r
		}
	}
}

// mesosGoCases use the real mesos-go v0.0.11 messenger as a client (docs/libprocess-wire.md §11).
func mesosGoCases() []Case {
	return []Case{
		{ID: "mesosgo.send", Section: "§2.5, §11.2", Group: GroupMesosGo,
			Title: "mesos-go messenger's message is accepted", Run: func(t *T) {
				c := startMesosGo(t)
				t.Expect("Send of %s to %s completes without error (202)", mesosGoName, t.Options().Process)
				v := t.unique()
				if err := c.send(t, t.Options().Process, v); err != nil {
					t.Fatalf("%v", err)
				}
				// Wait for the reply before the messenger stops: mesos-go v0.0.11
				// panics (Hijack after ServeHTTP finished) when a request arrives
				// while it stops.
				c.awaitReply(t, []string{v})
				t.Seen("accepted")
			}},
		{ID: "mesosgo.reply", Section: "§11.1, §11.3", Group: GroupMesosGo,
			Title: "the target's reply reaches the mesos-go messenger", Run: func(t *T) {
				c := startMesosGo(t)
				values := []string{t.unique(), "second value"}
				t.Expect("%s with values %q from %s@…", mesosGoName, values, t.Options().Process)
				if err := c.send(t, t.Options().Process, values...); err != nil {
					t.Fatalf("%v", err)
				}
				r := c.awaitReply(t, values)
				if !strings.HasPrefix(r.From, t.Options().Process+"@") {
					t.Fatalf("reply from %q", r.From)
				}
				t.Seen("reply from %s", r.From)
			}},
		{ID: "mesosgo.sequence", Section: "§3.2, §11.2", Group: GroupMesosGo,
			Title: "several messages from one messenger are all answered", Run: func(t *T) {
				c := startMesosGo(t)
				const n = 5
				// The sends share one connection, but the replies need not:
				// C++ libprocess sends to a peer it is not linked to over a
				// connection per burst (docs/libprocess-wire.md §3.2), and mesos-go serves each
				// connection on its own goroutine, so replies are matched as
				// a set; order is checked where one connection promises it
				// (peer.outbound.order).
				t.Expect("%d sends accepted and a reply to each (in any order: they may come over several connections)", n)
				want := map[string]bool{}
				for i := 0; i < n; i++ {
					v := t.unique()
					if err := c.send(t, t.Options().Process, v); err != nil {
						t.Fatalf("send %d: %v", i+1, err)
					}
					want[v] = true
				}
				for got := 0; got < n; {
					r := c.next(t, func() string { return fmt.Sprintf("%d of %d replies, missing %q", got, n, sortedSet(want)) })
					if len(r.Values) == 1 && want[r.Values[0]] {
						delete(want, r.Values[0])
						got++
					}
				}
				t.Seen("%d replies", n)
			}},
		{ID: "mesosgo.unknown-process", Section: "§2.4", Group: GroupMesosGo,
			Title: "mesos-go message to an unknown process is rejected with 404", Run: func(t *T) {
				c := startMesosGo(t)
				t.Expect("Send fails with status 404")
				err := c.send(t, noSuchProcess, t.unique())
				if err == nil || !strings.Contains(err.Error(), "404") {
					t.Fatalf("send outcome %v", err)
				}
				t.Seen("%v", err)
			}},
	}
}

// sortedSet returns the keys of set in order.
func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
