package runtimetest

import (
	"strings"
	"testing"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/rs/zerolog"
)

// Start gives a started runtime on loopback with a port of its own, whose
// logs reach a LogBuffer set as its logger.
func TestStartOnLoopbackWithLogs(t *testing.T) {
	var logs LogBuffer
	rt := Start(t, func(c *libprocess.Config) { c.Logger = zerolog.New(&logs) })
	addr := rt.Addr()
	if addr.Host != "127.0.0.1" || addr.Port == 0 {
		t.Fatalf("runtime address %v, want 127.0.0.1 with a port", addr)
	}
	if _, err := rt.Spawn(libprocess.NewProcess("probe")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "probe@127.0.0.1") {
		t.Fatalf("the runtime's log does not name the spawned process:\n%s", logs.String())
	}
}
