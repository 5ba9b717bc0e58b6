// Package runtimetest starts libprocess runtimes for tests of the packages
// built on libprocess, as net/http/httptest starts servers. Only tests
// import it.
package runtimetest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/procpanda/procpanda/libprocess"
)

// shutdownTimeout bounds the shutdown at the end of a test.
const shutdownTimeout = 10 * time.Second

// Start starts a runtime on 127.0.0.1 with a free port, after applying
// mutate to libprocess.DefaultConfig, and shuts it down when the test
// ends; a shutdown that does not finish within 10s fails the test.
func Start(t testing.TB, mutate ...func(*libprocess.Config)) *libprocess.Runtime {
	t.Helper()
	cfg := libprocess.DefaultConfig()
	cfg.IP, cfg.Port = "127.0.0.1", 0
	for _, m := range mutate {
		m(&cfg)
	}
	rt, err := libprocess.New(cfg)
	if err != nil {
		t.Fatalf("starting a test runtime: %v", err)
	}
	if err := rt.Start(); err != nil {
		t.Fatalf("starting a test runtime: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutting down the test runtime: %v", err)
		}
	})
	return rt
}

// LogBuffer is a log sink (for Config.Logger) that the runtime's
// goroutines may write while the test reads it. The zero value is ready.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
