package conformance

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/procpanda/procpanda/internal/runtimetest"
	"github.com/procpanda/procpanda/libprocess"
)

// procpandaSkips are the cases allowed to SKIP against procpanda, and why.
var procpandaSkips = map[string]string{
	"resp.gzip": "only when no built-in JSON body reaches 1024 bytes",
}

// startProcpanda starts a procpanda runtime on loopback with an "echo"
// process answering conformance.Ping with conformance.Pong and
// mesos.internal.SmallMessage with itself, both to the sender.
func startProcpanda(t *testing.T) string {
	t.Helper()
	rt := runtimetest.Start(t)
	p := libprocess.NewProcess("echo")
	p.Install("conformance.Ping", func(m *libprocess.Message) { _ = p.Send(m.From, "conformance.Pong", m.Body) })
	p.Install(mesosGoName, func(m *libprocess.Message) { _ = p.Send(m.From, mesosGoName, m.Body) })
	p.Route("status", libprocess.Help{TLDR: "Status of the echo process.", Description: "Answers ok."},
		func(_ *libprocess.Request, respond libprocess.Responder) {
			respond(libprocess.TextResponse(200, "ok"))
		})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	return rt.Addr().HostPort()
}

// TestProcpanda runs every non-pkgpanda case against the procpanda runtime;
// each must PASS, or SKIP for a reason listed in procpandaSkips.
func TestProcpanda(t *testing.T) {
	addr := startProcpanda(t)
	rep, err := Run(context.Background(), Options{
		Target:  addr,
		Process: "echo",
		Ping:    "conformance.Ping",
		Pong:    "conformance.Pong",
		MesosGo: true,
		Timeout: 10 * time.Second,
		// procpanda makes the promises beyond libprocess: they must pass.
		RequireBeyond: true,
		MesosGoHelper: []string{testExecutable()},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		switch {
		case r.Status == Fail || r.Status == Skip && procpandaSkips[r.ID] == "":
			t.Errorf("%s", r.Line())
		}
	}
	if t.Failed() || testing.Verbose() {
		var b bytes.Buffer
		_ = rep.WriteText(&b)
		t.Log("\n" + b.String())
	}
}
