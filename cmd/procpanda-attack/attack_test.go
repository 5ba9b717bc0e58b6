package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestAttackSmoke builds pkgpandad and the stand-in CLI and runs one small
// round of every attack against a real daemon, as `make attack` does at
// full size: each attack must leave the daemon alive and answering /help,
// and the unread attack's callers must have been answered.
func TestAttackSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pkgpandad and attacks it")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build pkgpandad with")
	}
	bin := t.TempDir()
	build := exec.Command(goTool, "build", "-o", bin+string(filepath.Separator),
		"github.com/procpanda/procpanda/cmd/pkgpandad", "github.com/procpanda/procpanda/cmd/pkgpanda-standin")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the daemon: %v\n%s", err, out)
	}
	t.Setenv("TMPDIR", t.TempDir()) // the daemon's work directory goes here

	var stdout, stderr bytes.Buffer
	err = run([]string{
		"-pkgpandad", filepath.Join(bin, "pkgpandad"), "-standin", filepath.Join(bin, "pkgpanda-standin"),
		"-scale", "0.01", "-hold", "1s", "-drip-hold", "2s", "-drip-interval", "500ms", "-settle", "5s",
	}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, l := range strings.Split(stdout.String(), "\n") {
		if !strings.HasPrefix(l, "| ") || strings.HasPrefix(l, "| attack ") {
			continue
		}
		rows++
		if !strings.HasSuffix(l, "| true |") {
			t.Errorf("the daemon did not survive: %s", l)
		}
		// | attack | RSS | fds | p50 | p99 | max | /help failed | closed | alive |
		if cols := strings.Split(l, "|"); len(cols) != 11 || !strings.HasPrefix(strings.TrimSpace(cols[7]), "0/") {
			t.Errorf("some /help requests failed: %s", l)
		}
	}
	if rows != 6 {
		t.Errorf("%d result rows, want one per attack (6)", rows)
	}
	m := regexp.MustCompile(`unread: (\d+) calls sent; the daemon opened (\d+) connections`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no note from the unread attack")
	}
	sent, _ := strconv.Atoi(m[1])
	opened, _ := strconv.Atoi(m[2])
	if sent == 0 || opened == 0 {
		t.Errorf("unread: %d calls sent, %d connections opened to the callers; want both positive", sent, opened)
	}
	// The note's metrics come from /metrics/snapshot, read with the
	// attack's credentials.
	if r := regexp.MustCompile(`\((\d+) metric readings, (\d+) failed\)`).FindStringSubmatch(stderr.String()); r == nil || r[1] == "0" || r[2] != "0" {
		t.Errorf("unread: metric readings %v; want some, none failed", r)
	}
}
