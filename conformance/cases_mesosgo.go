package conformance

import (
	"context"
	"fmt"
	"net"
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

// mesosGoClient is a started mesos-go messenger with SmallMessage installed.
type mesosGoClient struct {
	m       *messenger.MesosMessenger
	tr      *recordingTransporter
	replies chan reply
}

// reply is one SmallMessage the target sent back.
type reply struct {
	from   string
	values []string
}

// startMesosGo starts a mesos-go messenger on the suite's local address; it is
// stopped when the case ends.
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
	tr := &recordingTransporter{
		Transporter: messenger.NewHTTPTransporter(upid.UPID{ID: PeerID + "-mesos-go", Host: host, Port: "0"}, net.ParseIP(host)),
		sent:        make(chan error, 64),
	}
	c := &mesosGoClient{m: messenger.New(tr), tr: tr, replies: make(chan reply, 64)}
	err = c.m.Install(func(from *upid.UPID, msg proto.Message) {
		sm, _ := msg.(*testmessage.SmallMessage)
		select {
		case c.replies <- reply{from: from.String(), values: sm.GetValues()}:
		default:
		}
	}, &testmessage.SmallMessage{})
	if err != nil {
		t.Fatalf("mesos-go install: %v", err)
	}
	if err := c.m.Start(); err != nil {
		t.Fatalf("mesos-go start: %v", err)
	}
	t.Cleanup(func() { _ = c.m.Stop() })
	return c
}

// send sends a SmallMessage with values to process id on the target and
// returns the transporter's outcome.
func (c *mesosGoClient) send(t *T, id string, values ...string) error {
	host, port, err := net.SplitHostPort(t.Options().Target)
	if err != nil {
		t.Fatalf("bad target: %v", err)
	}
	to := &upid.UPID{ID: id, Host: host, Port: port}
	if err := c.m.Send(t.Context(), to, &testmessage.SmallMessage{Values: values}); err != nil {
		return fmt.Errorf("queue send: %w", err)
	}
	select {
	case err := <-c.tr.sent:
		return err
	case <-t.Context().Done():
		return fmt.Errorf("send did not complete: %w", t.Context().Err())
	}
}

// awaitReply waits for a SmallMessage carrying values.
func (c *mesosGoClient) awaitReply(t *T, values []string) reply {
	want := strings.Join(values, "\x00")
	for {
		select {
		case r := <-c.replies:
			if strings.Join(r.values, "\x00") == want {
				return r
			}
		case <-t.Context().Done():
			t.Fatalf("no %s reply with values %q", mesosGoName, values)
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
				if !strings.HasPrefix(r.from, t.Options().Process+"@") {
					t.Fatalf("reply from %q", r.from)
				}
				t.Seen("reply from %s", r.from)
			}},
		{ID: "mesosgo.sequence", Section: "§3.2, §11.2", Group: GroupMesosGo,
			Title: "several messages from one messenger are all answered, in order", Run: func(t *T) {
				c := startMesosGo(t)
				const n = 5
				t.Expect("%d sends accepted and %d replies in order", n, n)
				var sent [][]string
				for i := 0; i < n; i++ {
					v := []string{t.unique()}
					if err := c.send(t, t.Options().Process, v...); err != nil {
						t.Fatalf("send %d: %v", i+1, err)
					}
					sent = append(sent, v)
				}
				for i, v := range sent {
					select {
					case r := <-c.replies:
						if strings.Join(r.values, ",") != strings.Join(v, ",") {
							t.Fatalf("reply %d carries %q, want %q", i+1, r.values, v)
						}
					case <-t.Context().Done():
						t.Fatalf("%d of %d replies", i, n)
					}
				}
				t.Seen("%d replies in order", n)
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
