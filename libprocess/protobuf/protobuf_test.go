package protobuf_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/types"
	"github.com/mesos/mesos-go/api/v0/messenger/testmessage"
	"github.com/procpanda/procpanda/internal/runtimetest"
	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/libprocess/protobuf"
	"github.com/rs/zerolog"
)

// startRuntime starts a loopback runtime logging to logs.
func startRuntime(t *testing.T, logs *runtimetest.LogBuffer) *libprocess.Runtime {
	t.Helper()
	return runtimetest.Start(t, func(c *libprocess.Config) { c.Logger = zerolog.New(logs) })
}

func spawn(t *testing.T, rt *libprocess.Runtime, p *libprocess.Process) libprocess.UPID {
	t.Helper()
	pid, err := rt.Spawn(p)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no message reached the handler")
		var zero T
		return zero
	}
}

// A registered type travels under its full name with Send and needs no
// extra name to be installed; the handler learns the sender.
func TestSendRegisteredType(t *testing.T) {
	rt := startRuntime(t, &runtimetest.LogBuffer{})
	type got struct {
		from  libprocess.UPID
		value string
	}
	ch := make(chan got, 1)
	recv := libprocess.NewProcess("recv")
	if err := protobuf.Install(recv, func() *types.StringValue { return new(types.StringValue) },
		func(from libprocess.UPID, msg *types.StringValue) { ch <- got{from, msg.Value} }); err != nil {
		t.Fatal(err)
	}
	to := spawn(t, rt, recv)
	sender := libprocess.NewProcess("sender")
	from := spawn(t, rt, sender)
	if err := protobuf.Send(sender, to, &types.StringValue{Value: "hello"}); err != nil {
		t.Fatal(err)
	}
	if g := receive(t, ch); g.from != from || g.value != "hello" {
		t.Fatalf("handler got %q from %s, want %q from %s", g.value, g.from, "hello", from)
	}
}

// A body that does not decode is logged and dropped; the next good one is
// handled.
func TestUndecodableBodyDropped(t *testing.T) {
	logs := &runtimetest.LogBuffer{}
	rt := startRuntime(t, logs)
	ch := make(chan string, 2)
	recv := libprocess.NewProcess("recv")
	if err := protobuf.Install(recv, func() *types.StringValue { return new(types.StringValue) },
		func(_ libprocess.UPID, msg *types.StringValue) { ch <- msg.Value }); err != nil {
		t.Fatal(err)
	}
	to := spawn(t, rt, recv)
	sender := libprocess.NewProcess("sender")
	spawn(t, rt, sender)
	// 0xff starts a varint that never ends.
	if err := sender.Send(to, "google.protobuf.StringValue", []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	if err := protobuf.Send(sender, to, &types.StringValue{Value: "good"}); err != nil {
		t.Fatal(err)
	}
	// Local messages from one sender are handled in send order, so the
	// bad one has been handled (and logged) when the good one arrives.
	if v := receive(t, ch); v != "good" {
		t.Fatalf("handler got %q, want only the good message", v)
	}
	if l := logs.String(); !strings.Contains(l, "body does not decode") || !strings.Contains(l, `"process":"recv"`) {
		t.Fatalf("no warning naming the process for the undecodable body; log:\n%s", l)
	}
	select {
	case v := <-ch:
		t.Fatalf("a second message %q reached the handler", v)
	default:
	}
}

// A type missing from the registry needs a name to be installed and to be
// sent; given one, it travels under it.
func TestUnregisteredTypeNeedsName(t *testing.T) {
	rt := startRuntime(t, &runtimetest.LogBuffer{})
	newSmall := func() *testmessage.SmallMessage { return new(testmessage.SmallMessage) }
	p := libprocess.NewProcess("p")
	if err := protobuf.Install(p, newSmall, func(libprocess.UPID, *testmessage.SmallMessage) {}); err == nil {
		t.Fatal("Install of an unregistered type without a name succeeded")
	}
	ch := make(chan []string, 1)
	if err := protobuf.Install(p, newSmall, func(_ libprocess.UPID, msg *testmessage.SmallMessage) { ch <- msg.Values },
		"a.Small", "b.Small"); err != nil {
		t.Fatal(err)
	}
	to := spawn(t, rt, p)
	if err := protobuf.Send(p, to, &testmessage.SmallMessage{Values: []string{"x"}}); err == nil {
		t.Fatal("Send of an unregistered type succeeded")
	}
	for _, name := range []string{"a.Small", "b.Small"} {
		if err := protobuf.SendAs(p, to, name, &testmessage.SmallMessage{Values: []string{name}}); err != nil {
			t.Fatal(err)
		}
		if v := receive(t, ch); len(v) != 1 || v[0] != name {
			t.Fatalf("message sent as %s reached the handler as %v", name, v)
		}
	}
}

// Sending from a process that is not spawned fails as Process.Send does.
func TestSendUnspawned(t *testing.T) {
	p := libprocess.NewProcess("idle")
	to := libprocess.UPID{ID: "x", Host: "127.0.0.1", Port: 1}
	if err := protobuf.Send(p, to, &types.StringValue{}); !errors.Is(err, libprocess.ErrTerminated) {
		t.Fatalf("Send from an unspawned process: %v, want ErrTerminated", err)
	}
}
