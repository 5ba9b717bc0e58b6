package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procpanda/procpanda/internal/testfixture"
	"github.com/procpanda/procpanda/libprocess"
)

// TestAgainstPkgpandad runs the suite — the libprocess cases and the
// Pkgpanda HTTP API section with its mutating chain and message round trip
// — through this command against the real pkgpandad binary, started on loopback with the
// stand-in CLI over a copy of the shared fixture, as a user would point it
// at a deployed endpoint.
func TestAgainstPkgpandad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs pkgpandad")
	}
	fixture, err := testfixture.Find()
	if err != nil {
		t.Skipf("no pkgpanda fixture: %v", err)
	}
	dir := t.TempDir()
	for _, pkg := range []string{"pkgpandad", "pkgpanda-standin"} {
		if _, err := testfixture.Build(dir, pkg); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "state")
	if err := testfixture.Copy(fixture, state); err != nil {
		t.Fatal(err)
	}
	daemon := exec.Command(filepath.Join(dir, "pkgpandad"),
		"--pkgpanda", filepath.Join(dir, "pkgpanda-standin"),
		"--pkgpanda-arg=--root="+filepath.Join(state, "install"),
		"--pkgpanda-arg=--repository="+filepath.Join(state, "packages"),
		"--pkgpanda-arg=--config-dir="+filepath.Join(state, "etc"),
		"--pkgpanda-arg=--state-dir-root="+filepath.Join(state, "state"),
		"--pkgpanda-arg=--rooted-systemd", "--pkgpanda-arg=--no-systemd",
		// The suite checks the protocol, as an unauthenticated peer does.
		"--insecure-allow-unauthenticated-mutations")
	daemon.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=" + t.TempDir(), "LIBPROCESS_IP=127.0.0.1", "LIBPROCESS_PORT=0"} // TMPDIR: nothing a (killed) daemon leaves outlives the test
	var logs bytes.Buffer
	daemon.Stderr = &logs
	stdout, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = daemon.Process.Kill(); _ = daemon.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading pkgpandad's UPID: %v\n%s", err, logs.String())
	}
	upid, err := libprocess.ParseUPID(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	// pkgpandad is procpanda: the promises beyond libprocess hold too.
	code := run([]string{"--target", upid.HostPort(), "--process", upid.ID, "--pkgpanda", "--fixture", fixture, "--require-beyond"}, &out, &errOut)
	if code != 0 || strings.Contains(out.String(), "\nFAIL ") || strings.Contains(out.String(), "\nUNMET ") || !strings.Contains(out.String(), " passed, ") {
		t.Fatalf("exit %d against pkgpandad:\n%s\n%s", code, out.String(), errOut.String())
	}
	// The mutating chain and the message round trip really ran.
	for _, id := range []string{"pkgpanda.active.restore", "pkgpanda.repository.fetch", "pkgpanda.message.roundtrip", "pkgpanda.message.client", "pkgpanda.jsonp-ignored", "msg.shape.mesos-0.22", "route.dotdot",
		"pkgpanda.http.trailing-slash", "pkgpanda.http.slash-in-id", "pkgpanda.http.allow", "pkgpanda.http.content-type", "pkgpanda.active.put-invalid-elements", "pkgpanda.active.get-inactive"} {
		if !strings.Contains(out.String(), "PASS "+id+" ") {
			t.Errorf("%s did not pass:\n%s", id, out.String())
		}
	}
}
