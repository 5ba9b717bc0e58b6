package libprocess_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/mesos/mesos-go/api/v0/messenger"
	"github.com/mesos/mesos-go/api/v0/messenger/testmessage"
	"github.com/mesos/mesos-go/api/v0/upid"
	"github.com/procpanda/procpanda/libprocess"
)

// startLoopback starts a runtime on a free loopback port.
func startLoopback() *libprocess.Runtime {
	cfg := libprocess.DefaultConfig()
	cfg.IP, cfg.Port = "127.0.0.1", 0
	rt, err := libprocess.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		log.Fatal(err)
	}
	return rt
}

func shutdown(rt *libprocess.Runtime) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
}

// Two processes on two runtimes play ping/pong: each message is a POST
// over a real connection, and a handler answers by sending to m.From.
func Example_pingPong() {
	rtA, rtB := startLoopback(), startLoopback()
	defer shutdown(rtA)
	defer shutdown(rtB)

	ponger := libprocess.NewProcess("ponger")
	ponger.Install("ping", func(m *libprocess.Message) {
		if err := ponger.Send(m.From, "pong", m.Body); err != nil {
			log.Print(err)
		}
	})
	pongerPID, err := rtB.Spawn(ponger)
	if err != nil {
		log.Fatal(err)
	}

	done := make(chan string)
	pinger := libprocess.NewProcess("pinger")
	pinger.Install("pong", func(m *libprocess.Message) {
		done <- fmt.Sprintf("%s from %s", m.Body, m.From.ID)
	})
	if _, err := rtA.Spawn(pinger); err != nil {
		log.Fatal(err)
	}
	if err := pinger.Send(pongerPID, "ping", []byte("ball")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-done)
	// Output: ball from ponger
}

// A process serves HTTP routes under /<id>/<route> on the runtime's port.
func ExampleProcess_Route() {
	rt := startLoopback()
	defer shutdown(rt)

	p := libprocess.NewProcess("greeter")
	p.Route("hello", libprocess.Help{TLDR: "Says hello."}, func(req *libprocess.Request, respond libprocess.Responder) {
		respond(libprocess.TextResponse(http.StatusOK, "hello, "+req.URL.Query().Get("name")))
	})
	pid, err := rt.Spawn(p)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := http.Get("http://" + pid.HostPort() + "/greeter/hello?name=gopher")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hello, gopher
}

// Link watches a process: when it goes away (here: its runtime shuts
// down, so the connection closes) the watcher gets an exited event.
func ExampleProcess_Link() {
	rtA, rtB := startLoopback(), startLoopback()
	defer shutdown(rtA)

	target := libprocess.NewProcess("target")
	targetPID, err := rtB.Spawn(target)
	if err != nil {
		log.Fatal(err)
	}

	exited := make(chan libprocess.UPID, 1)
	watcher := libprocess.NewProcess("watcher")
	watcher.OnExited(func(pid libprocess.UPID) { exited <- pid })
	if _, err := rtA.Spawn(watcher); err != nil {
		log.Fatal(err)
	}
	if err := watcher.Link(targetPID); err != nil {
		log.Fatal(err)
	}
	// Make sure the link's connection is up before the target goes.
	pong := make(chan struct{})
	watcher.Install("pong", func(*libprocess.Message) { close(pong) })
	target.Install("ping", func(m *libprocess.Message) { _ = target.Send(m.From, "pong", nil) })
	if err := watcher.Send(targetPID, "ping", nil); err != nil {
		log.Fatal(err)
	}
	<-pong

	shutdown(rtB)
	pid := <-exited
	fmt.Println("exited:", pid.ID)
	// Output: exited: target
}

// Protobuf messages travel under their full type name; InstallProto
// decodes them for the handler.
func ExampleInstallProto() {
	rt := startLoopback()
	defer shutdown(rt)

	got := make(chan []string)
	receiver := libprocess.NewProcess("receiver")
	err := libprocess.InstallProto(receiver,
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
	if err := sender.SendProtoAs(to, "mesos.internal.SmallMessage", msg); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	// Output: [a b]
}

// A mesos-go (v0.0.11) messenger and a libprocess process talk to each
// other: mesos-go sends "mesos.internal.<Go type name>", and so must the
// reply.
func Example_mesosGoMessenger() {
	rt := startLoopback()
	defer shutdown(rt)

	const name = "mesos.internal.SmallMessage"
	echo := libprocess.NewProcess("echo")
	err := libprocess.InstallProto(echo,
		func() *testmessage.SmallMessage { return &testmessage.SmallMessage{} },
		func(from libprocess.UPID, msg *testmessage.SmallMessage) {
			reply := &testmessage.SmallMessage{Values: append(msg.Values, "echoed")}
			if err := echo.SendProtoAs(from, name, reply); err != nil {
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
