package testlog

import (
	"flag"
	"testing"
)

// With a logtostderr flag registered, as glog registers it, QuietGlog
// sets it; without one it does nothing.
func TestQuietGlog(t *testing.T) {
	QuietGlog() // no such flag in this binary: nothing happens
	v := flag.Bool("logtostderr", false, "as glog's")
	QuietGlog()
	if !*v {
		t.Fatal("logtostderr was not set")
	}
}
