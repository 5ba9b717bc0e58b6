package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCapture prints a session of the built tool against the test
// cluster (eight pkgpandad on loopback, a draining agent, an unreachable
// one, and one agent whose repository holds a broken copy of the target
// package), for the README. It runs only with PKGPANDA_FLEET_CAPTURE=1.
func TestCapture(t *testing.T) {
	if os.Getenv("PKGPANDA_FLEET_CAPTURE") != "1" {
		t.Skip("set PKGPANDA_FLEET_CAPTURE=1 to print a session")
	}
	resetCluster(t)
	broken := filepath.Join(daemons[4].demo, "packages", "mesos--1.13.0")
	os.MkdirAll(broken, 0o755)
	os.WriteFile(filepath.Join(broken, "pkginfo.json"), []byte(`{"requires": ["no-such-package"]}`), 0o644)
	t.Cleanup(func() { os.RemoveAll(broken) })
	fm := newFakeMaster(t)
	follower := newFakeMaster(t)
	follower.setRedirect(fm.hostport())
	fm.setAgents(append(clusterAgents(),
		drainingAgent("S9", "agent-09", "127.0.0.30"),
		mesosAgent("S10", "agent-10", "127.0.0.31")))
	dir := t.TempDir()
	flags := credFlags(t, follower)
	state := filepath.Join(dir, "mesos-1.13.state")
	var b strings.Builder
	short := func(s string) string {
		for _, r := range [][2]string{{dir, "."}, {workDir, "/srv"}, {filepath.Dir(flags[5]), "/etc/fleet"}} {
			s = strings.ReplaceAll(s, r[0], r[1])
		}
		return s
	}
	common := strings.Join(flags, " ")
	fmt.Fprintf(&b, "$ FLEET=\"%s\"\n\n", short(common))
	show := func(args ...string) {
		tl := startTool(t, args...)
		code := tl.wait(t)
		cmd := short(strings.ReplaceAll("pkgpanda-fleet "+strings.Join(args, " "), common, "$FLEET"))
		out := tl.out.String()
		out = strings.ReplaceAll(out, dir, ".")
		fmt.Fprintf(&b, "$ %s\n%s[exit %d]\n\n", cmd, out, code)
	}
	show(append([]string{"status"}, flags...)...)
	rollout := []string{"rollout", "--target", "mesos--1.13.0", "--repository-url", remote, "--state", state, "--batch", "3", "--progress", "plain"}
	show(append(append([]string{"rollout", "--dry-run"}, rollout[1:]...), flags...)...)
	rollout = append(rollout, flags...)
	show(rollout...)
	show(append([]string{"status", "--target", "mesos--1.13.0"}, flags...)...)
	if _, err := agentClient(t, 4).Remove(t.Context(), "mesos--1.13.0"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "# (the broken mesos--1.13.0 removed from agent-05's repository)\n\n")
	show(rollout...)
	audit, _ := os.ReadFile(state + ".audit")
	lines := strings.Split(strings.TrimSpace(string(audit)), "\n")
	fmt.Fprintf(&b, "$ tail -n 3 mesos-1.13.state.audit\n%s\n", short(strings.Join(lines[len(lines)-3:], "\n")))
	t.Logf("capture:\n%s", b.String())
	if p := os.Getenv("PKGPANDA_FLEET_CAPTURE_OUT"); p != "" {
		os.WriteFile(p, []byte(b.String()), 0o644)
	}
}
