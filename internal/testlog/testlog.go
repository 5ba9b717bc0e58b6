// Package testlog keeps test binaries from writing log files where the
// test does not control them.
package testlog

import (
	"bytes"
	"flag"
	"sync"
)

// QuietGlog sends the logs of glog, which mesos-go logs through, to
// standard error instead of to files in the system temp dir, when glog is
// linked into the binary (it registers its flags on flag.CommandLine);
// otherwise it does nothing. Call it from TestMain before m.Run, or from a
// test helper process' main.
func QuietGlog() {
	if f := flag.Lookup("logtostderr"); f != nil {
		_ = f.Value.Set("true")
	}
}

// Buffer is a log sink that tests read while the code under test writes
// to it from its own goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
