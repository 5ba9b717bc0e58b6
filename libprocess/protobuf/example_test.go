package protobuf_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strconv"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/mesos/mesos-go/api/v0/messenger"
	"github.com/mesos/mesos-go/api/v0/messenger/testmessage"
	"github.com/mesos/mesos-go/api/v0/upid"
	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/libprocess/protobuf"
)

// startLoopback starts a runtime on a free loopback port and returns it
// with the function that shuts it down.
func startLoopback() (*libprocess.Runtime, func()) {
	cfg := libprocess.DefaultConfig()
	cfg.IP, cfg.Port = "127.0.0.1", 0
	rt, err := libprocess.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		log.Fatal(err)
	}
	return rt, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			log.Fatal(err)
		}
	}
}

// Protobuf messages travel under their full type name; Install decodes
// them for the handler. SmallMessage is not in the protobuf registry, so
// it is given the name mesos-go uses for it.
func ExampleInstall() {
	rt, shutdown := startLoopback()
	defer shutdown()

	got := make(chan []string)
	receiver := libprocess.NewProcess("receiver")
	err := protobuf.Install(receiver,
		func() *testmessage.SmallMessage { return &testmessage.SmallMessage{} },
		func(from libprocess.UPID, msg *testmessage.SmallMessage) { got <- msg.Values },
		"mesos.internal.SmallMessage")
	if err != nil {
		log.Fatal(err)
	}
	to, err := rt.Spawn(receiver)
	if err != nil {
		log.Fatal(err)
	}
	sender := libprocess.NewProcess("sender")
	if _, err := rt.Spawn(sender); err != nil {
		log.Fatal(err)
	}
	msg := &testmessage.SmallMessage{Values: []string{"a", "b"}}
	if err := protobuf.SendAs(sender, to, "mesos.internal.SmallMessage", msg); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	// Output: [a b]
}

// A mesos-go (v0.0.11) messenger and a libprocess process talk to each
// other: mesos-go sends "mesos.internal.<Go type name>", and so must the
// reply.
func Example_mesosGoMessenger() {
	rt, shutdown := startLoopback()
	defer shutdown()

	const name = "mesos.internal.SmallMessage"
	echo := libprocess.NewProcess("echo")
	err := protobuf.Install(echo,
		func() *testmessage.SmallMessage { return &testmessage.SmallMessage{} },
		func(from libprocess.UPID, msg *testmessage.SmallMessage) {
			reply := &testmessage.SmallMessage{Values: append(msg.Values, "echoed")}
			if err := protobuf.SendAs(echo, from, name, reply); err != nil {
				log.Print(err)
			}
		}, name)
	if err != nil {
		log.Fatal(err)
	}
	echoPID, err := rt.Spawn(echo)
	if err != nil {
		log.Fatal(err)
	}

	m := messenger.NewHttpWithBindingAddress(upid.UPID{ID: "framework", Host: "127.0.0.1", Port: "0"}, net.ParseIP("127.0.0.1"))
	replies := make(chan []string, 1)
	if err := m.Install(func(from *upid.UPID, msg proto.Message) {
		replies <- msg.(*testmessage.SmallMessage).Values
	}, &testmessage.SmallMessage{}); err != nil {
		log.Fatal(err)
	}
	if err := m.Start(); err != nil {
		log.Fatal(err)
	}
	defer m.Stop()

	to := &upid.UPID{ID: echoPID.ID, Host: echoPID.Host, Port: strconv.Itoa(int(echoPID.Port))}
	if err := m.Send(context.Background(), to, &testmessage.SmallMessage{Values: []string{"hi"}}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-replies)
	// Output: [hi echoed]
}
