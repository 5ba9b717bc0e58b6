package libprocess

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/mesos/mesos-go/api/v0/messenger"
	"github.com/mesos/mesos-go/api/v0/messenger/testmessage"
	"github.com/mesos/mesos-go/api/v0/upid"
)

// mesos-go sends and dispatches by "mesos.internal.<Go type name>" (docs/libprocess-wire.md
// §11.1).
const mesosGoSmall = "mesos.internal.SmallMessage"

// startMesosGo starts a real mesos-go v0.0.11 messenger on loopback whose
// handler for SmallMessage forwards to the returned channel.
func startMesosGo(t testing.TB, id string) (*messenger.MesosMessenger, chan *testmessage.SmallMessage) {
	t.Helper()
	m := messenger.NewHttpWithBindingAddress(upid.UPID{ID: id, Host: "127.0.0.1", Port: "0"}, net.ParseIP("127.0.0.1"))
	got := make(chan *testmessage.SmallMessage, 20000)
	err := m.Install(func(from *upid.UPID, msg proto.Message) {
		got <- msg.(*testmessage.SmallMessage)
	}, &testmessage.SmallMessage{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatalf("starting mesos-go messenger: %v", err)
	}
	t.Cleanup(func() { m.Stop() })
	return m, got
}

func toMesosGo(u UPID) *upid.UPID {
	return &upid.UPID{ID: u.ID, Host: u.Host, Port: strconv.Itoa(int(u.Port))}
}

func fromMesosGo(t testing.TB, u upid.UPID) UPID {
	t.Helper()
	p, err := ParseUPID(u.String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// echo replies to every SmallMessage with the same values plus a marker.
// It decodes and encodes by hand: the runtime is under test here, package
// protobuf's helpers have tests of their own.
func spawnEcho(t testing.TB, rt *Runtime) *Process {
	t.Helper()
	p := NewProcess("echo")
	p.Install(mesosGoSmall, func(m *Message) {
		var msg testmessage.SmallMessage
		if err := proto.Unmarshal(m.Body, &msg); err != nil {
			t.Errorf("decoding %s: %v", m.Name, err)
			return
		}
		reply, err := proto.Marshal(&testmessage.SmallMessage{Values: append(msg.Values, "echoed")})
		if err != nil {
			t.Errorf("encoding the reply: %v", err)
			return
		}
		if err := p.Send(m.From, mesosGoSmall, reply); err != nil {
			t.Errorf("reply: %v", err)
		}
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// A mesos-go messenger sends a protobuf to a runtime process and receives
// the reply at its own UPID.
func TestMesosGoRoundTrip(t *testing.T) {
	rt := startRuntime(t)
	echo := spawnEcho(t, rt)
	m, got := startMesosGo(t, "mgo")
	for i := 0; i < 20; i++ {
		msg := &testmessage.SmallMessage{Values: []string{fmt.Sprint(i)}}
		if err := m.Send(context.Background(), toMesosGo(echo.Self()), msg); err != nil {
			t.Fatalf("mesos-go send %d: %v", i, err)
		}
	}
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		select {
		case r := <-got:
			if len(r.Values) != 2 || r.Values[1] != "echoed" {
				t.Fatalf("reply %v", r.Values)
			}
			seen[r.Values[0]] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of 20 replies reached the mesos-go messenger", i)
		}
	}
	if len(seen) != 20 {
		t.Fatalf("distinct replies %d, want 20", len(seen))
	}
}

// A runtime process sends to a mesos-go messenger and its handler runs,
// for many messages over one persistent connection.
func TestSendToMesosGo(t *testing.T) {
	rt := startRuntime(t)
	m, got := startMesosGo(t, "mgo")
	to := fromMesosGo(t, m.UPID())
	sender, _ := spawnSender(t, rt, "source")
	const n = 500
	for i := 0; i < n; i++ {
		b, _ := proto.Marshal(&testmessage.SmallMessage{Values: []string{strconv.Itoa(i)}})
		if err := sender.Send(to, mesosGoSmall, b); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		select {
		case r := <-got:
			if r.Values[0] != strconv.Itoa(i) {
				t.Fatalf("message %d arrived as %v: order broken", i, r.Values)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d messages reached mesos-go", i, n)
		}
	}
	if c := rt.Snapshot()["libprocess/connect_failures"]; c != 0 {
		t.Fatalf("connect failures: %v", c)
	}
}
