package main

import (
	"bufio"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestUnixSocketReplacesOnlyStaleSockets(t *testing.T) {
	dir := t.TempDir()

	// A regular file is never replaced.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (unixSocket{path: file, mode: 0o660}).listen(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen over a regular file: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Fatalf("the regular file was touched: %q", b)
	}
	// Nor a directory.
	if _, err := (unixSocket{path: dir, mode: 0o660}).listen(); err == nil {
		t.Fatal("listen over a directory succeeded")
	}

	// A socket something listens on is refused, and keeps serving.
	live := filepath.Join(dir, "live.sock")
	other, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := (unixSocket{path: live, mode: 0o660}).listen(); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("listen over a live socket: %v, want a refusal", err)
	}
	if c, err := net.Dial("unix", live); err != nil {
		t.Fatalf("the live socket was broken: %v", err)
	} else {
		c.Close()
	}

	// A stale socket (its listener gone, the file left) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close()
	if _, err := os.Lstat(stale); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}
	gid := os.Getgid()
	ln, err := (unixSocket{path: stale, mode: 0o640, group: strconv.Itoa(gid)}).listen()
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	fi, err := os.Lstat(stale)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o640 || int(fi.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Fatalf("new socket: mode %v gid %d, want 0640 and %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid, gid)
	}
	// It serves, and closing removes the file.
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hi\n"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || l != "hi\n" {
		t.Fatalf("reading from the new socket: %q %v", l, err)
	}
	c.Close()
	ln.Close()
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}
}

func TestUnixSocketFlagsValidated(t *testing.T) {
	for _, m := range []string{"0660", "660", "0600", "0777"} {
		if _, err := parseSocketMode(m); err != nil {
			t.Errorf("mode %q refused: %v", m, err)
		}
	}
	for _, m := range []string{"", "0999", "01777", "rw-rw----", "-1"} {
		if _, err := parseSocketMode(m); err == nil {
			t.Errorf("mode %q accepted", m)
		}
	}
	if _, err := lookupGID("no-such-group-for-pkgpandad"); err == nil {
		t.Error("an unknown group name was accepted")
	}
	if g, err := lookupGID("0"); err != nil || g != 0 {
		t.Errorf("gid 0: %d %v", g, err)
	}
	// Bad socket flags exit 2 before anything starts.
	var out, errb strings.Builder
	if code := run([]string{"--pkgpanda", "/bin/true", "--unix-socket", filepath.Join(t.TempDir(), "s"), "--unix-socket-mode", "999"}, func(string) (string, bool) { return "", false }, &out, &errb, nil); code != 2 {
		t.Errorf("bad --unix-socket-mode: exit %d, want 2", code)
	}
}

func TestVersionFlag(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"--version"}, func(string) (string, bool) { return "", false }, &out, &errb, nil); code != 0 {
		t.Fatalf("--version: exit %d: %s", code, errb.String())
	}
	// Not stamped in a test binary: the module version go records.
	if got := strings.TrimSpace(out.String()); !strings.HasPrefix(got, "pkgpandad ") || len(got) <= len("pkgpandad ") {
		t.Fatalf("--version printed %q", got)
	}
}

// unitDirectives reads a systemd unit's Key=Value lines (continuations
// joined); repeated keys keep every value.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	var cont string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if cont != "" {
			l = cont + " " + l
			cont = ""
		}
		if strings.HasSuffix(l, "\\") {
			cont = strings.TrimSuffix(l, "\\")
			continue
		}
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("unit line %q is not Key=Value", l)
		}
		out[k] = append(out[k], strings.Join(strings.Fields(v), " "))
	}
	return out
}

// TestSystemdUnitMatchesDCOS checks the shipped unit against what
// dcos-pkgpanda-api.service needs, and that its ExecStart, with the
// shipped environment file expanded, is a command line pkgpandad accepts.
func TestSystemdUnitMatchesDCOS(t *testing.T) {
	u := unitDirectives(t, "dcos-pkgpanda-api.service")
	for k, want := range map[string]string{"KillMode": "mixed", "Restart": "always", "KillSignal": "SIGTERM"} {
		if len(u[k]) != 1 || u[k][0] != want {
			t.Errorf("%s = %v, want %s", k, u[k], want)
		}
	}
	if len(u["RestartSec"]) != 1 || !slicesContainsPrefix(u["EnvironmentFile"], "/opt/mesosphere/etc/pkgpandad.env") {
		t.Errorf("RestartSec %v, EnvironmentFile %v", u["RestartSec"], u["EnvironmentFile"])
	}
	env := map[string]string{}
	b, err := os.ReadFile("pkgpandad.env")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l == "" || l[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	exec := strings.Fields(os.Expand(u["ExecStart"][0], func(k string) string { return env[k] }))
	if exec[0] != "/opt/mesosphere/bin/pkgpandad" {
		t.Fatalf("ExecStart runs %q", exec[0])
	}
	o, err := parseFlags(exec[1:], &strings.Builder{})
	if err != nil {
		t.Fatalf("ExecStart flags: %v", err)
	}
	if o.unixSocket != "/run/dcos/pkgpanda-api.sock" || o.socketMode != "0660" || o.socketGroup != "dcos_adminrouter" || o.delegate != "pkgpanda" {
		t.Errorf("socket %q mode %q group %q delegate %q", o.unixSocket, o.socketMode, o.socketGroup, o.delegate)
	}
	if !strings.Contains(strings.Join(o.toolArgs, " "), "--no-block-systemd") {
		t.Errorf("activation does not run with --no-block-systemd: %v", o.toolArgs)
	}
	stop, err := time.ParseDuration(strings.Replace(u["TimeoutStopSec"][0], "min", "m", 1))
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: %v", u["TimeoutStopSec"][0], err)
	}
	// Drain, then up to 10 s of runtime shutdown, must end before SIGKILL.
	if stop <= o.drainTimeout+10*time.Second {
		t.Errorf("TimeoutStopSec %v does not exceed --drain-timeout %v plus the runtime shutdown", stop, o.drainTimeout)
	}
}

func slicesContainsPrefix(s []string, prefix string) bool {
	for _, v := range s {
		if strings.HasPrefix(strings.TrimPrefix(v, "-"), prefix) {
			return true
		}
	}
	return false
}

// FuzzSocketMode checks that --unix-socket-mode never yields more than
// permission bits.
func FuzzSocketMode(f *testing.F) {
	for _, s := range []string{"0660", "777", "01777", "", "-0", "0x1ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseSocketMode(s)
		if err == nil && m&^0o777 != 0 {
			t.Fatalf("parseSocketMode(%q) = %v: more than permission bits", s, m)
		}
	})
}
