package libprocess_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

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

	// Handlers go in before Spawn.
	target := libprocess.NewProcess("target")
	target.Install("ping", func(m *libprocess.Message) { _ = target.Send(m.From, "pong", nil) })
	targetPID, err := rtB.Spawn(target)
	if err != nil {
		log.Fatal(err)
	}

	exited := make(chan libprocess.UPID, 1)
	pong := make(chan struct{})
	watcher := libprocess.NewProcess("watcher")
	watcher.OnExited(func(pid libprocess.UPID) { exited <- pid })
	watcher.Install("pong", func(*libprocess.Message) { close(pong) })
	if _, err := rtA.Spawn(watcher); err != nil {
		log.Fatal(err)
	}
	if err := watcher.Link(targetPID); err != nil {
		log.Fatal(err)
	}
	// A ping's pong shows the link's connection is up before the target
	// goes.
	if err := watcher.Send(targetPID, "ping", nil); err != nil {
		log.Fatal(err)
	}
	<-pong

	shutdown(rtB)
	pid := <-exited
	fmt.Println("exited:", pid.ID)
	// Output: exited: target
}
