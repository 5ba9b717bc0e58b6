// Package testlog keeps test binaries from writing log files where the
// test does not control them.
package testlog

import "flag"

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
