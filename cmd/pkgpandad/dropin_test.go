package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procpanda/procpanda/internal/testfixture"
)

// unixClient talks HTTP to a unix socket, as Admin Router's
// proxy_pass http://unix:/run/dcos/pkgpanda-api.sock does.
func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// send sends one request through c to path (unprefixed, as Admin Router
// forwards it) and returns the status and body.
func send(c *http.Client, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, "http://master.mesos"+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// call is send for the test's goroutine.
func call(t *testing.T, c *http.Client, method, path string, body []byte) (int, []byte) {
	t.Helper()
	status, b, err := send(c, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, b
}

func expectCall(t *testing.T, c *http.Client, method, path string, body []byte, status int) []byte {
	t.Helper()
	got, b := call(t, c, method, path, body)
	if got != status {
		t.Fatalf("%s %s over the unix socket: %d %s, want %d", method, path, got, b, status)
	}
	return b
}

// TestDropInUnixSocketReplaysAdminRouter starts pkgpandad as
// dcos-pkgpanda-api.service does (unix socket, mode, group, --delegate
// pkgpanda) and replays the Pkgpanda API flows over the socket with the
// unprefixed paths Admin Router sends: list, get, active, activate, fetch
// from file://, remove. It also checks the socket's mode and group, that a
// message over it is refused, the access lines, --version, and that the
// socket file is removed on exit.
func TestDropInUnixSocketReplaysAdminRouter(t *testing.T) {
	fixture, err := testfixture.Find()
	if err != nil {
		t.Skipf("no pkgpanda fixture: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "pkgpanda-api.sock")
	gid := os.Getgid()
	d := startDaemon(t, "--unix-socket", sock, "--unix-socket-mode", "0660", "--unix-socket-group", strconv.Itoa(gid), "--delegate", "pkgpanda")

	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != gid {
		t.Fatalf("socket group %d, want %d", st.Gid, gid)
	}

	c := unixClient(sock)
	var repo, active []string
	if err := json.Unmarshal(expectCall(t, c, "GET", "/repository/", nil, 200), &repo); err != nil || len(repo) == 0 {
		t.Fatalf("GET /repository/: %v %v", repo, err)
	}
	expectCall(t, c, "GET", "/repository/"+repo[0], nil, 200)
	if err := json.Unmarshal(expectCall(t, c, "GET", "/active/", nil, 200), &active); err != nil || len(active) == 0 {
		t.Fatalf("GET /active/: %v %v", active, err)
	}
	expectCall(t, c, "GET", "/active/"+active[0], nil, 200)

	// Activate a new set: swap mesos--1.11.0 for mesos--1.12.0.
	next := []string{}
	for _, id := range active {
		if id == "mesos--1.11.0" {
			id = "mesos--1.12.0"
		}
		next = append(next, id)
	}
	slices.Sort(next)
	body, _ := json.Marshal(next)
	expectCall(t, c, "PUT", "/active/", body, 204)
	var now []string
	if err := json.Unmarshal(expectCall(t, c, "GET", "/active/", nil, 200), &now); err != nil || !slices.Equal(now, next) {
		t.Fatalf("active after PUT: %v, want %v (%v)", now, next, err)
	}

	// Fetch a package from a file:// repository, then remove it.
	const fetched = "mesos--0.22.0" // the package of the fixture's remote_repo
	remote, _ := json.Marshal(map[string]string{"repository_url": "file://" + filepath.Join(fixture, "remote_repo") + "/"})
	expectCall(t, c, "POST", "/repository/"+fetched, remote, 204)
	expectCall(t, c, "GET", "/repository/"+fetched, nil, 200)
	expectCall(t, c, "DELETE", "/repository/"+fetched, nil, 204)
	expectCall(t, c, "GET", "/repository/"+fetched, nil, 404)
	// The prefixed path still works on the socket, and the port still
	// serves the API.
	expectCall(t, c, "GET", "/pkgpanda/repository/", nil, 200)
	if resp, err := http.Get(d.base + "/repository/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /repository/ on the port: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// A libprocess message over the socket is refused.
	mc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	_ = mc.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(mc, "POST /pkgpanda/mesos.internal.PkgpandaCall HTTP/1.1\r\nUser-Agent: libprocess/x@127.0.0.1:1\r\nLibprocess-From: x@127.0.0.1:1\r\nHost: \r\nContent-Length: 0\r\n\r\n")
	line, err := bufio.NewReader(mc).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 403 ") {
		t.Fatalf("message over the unix socket: %q %v, want 403", line, err)
	}

	// --version prints the stamp.
	out, err := exec.Command(d.cmd.Path, "--version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "pkgpandad "+stampedVersion {
		t.Fatalf("--version: %q %v", out, err)
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
		if d.err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", d.err, d.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pkgpandad did not exit after SIGTERM")
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket file left after exit: %v", err)
	}

	// One access line per request, paths as the client sent them.
	var paths []string
	audits := 0
	for _, l := range strings.Split(strings.TrimSpace(d.stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		switch m["message"] {
		case "http request":
			paths = append(paths, m["method"].(string)+" "+m["path"].(string)+" "+strconv.Itoa(int(m["status"].(float64))))
		case "pkgpanda audit":
			audits++
		}
	}
	for _, want := range []string{"PUT /active/ 204", "POST /repository/" + fetched + " 204", "DELETE /repository/" + fetched + " 204", "GET /repository/" + fetched + " 404"} {
		if !slices.Contains(paths, want) {
			t.Errorf("no access line %q in %q", want, paths)
		}
	}
	if audits != 3 {
		t.Errorf("%d audit lines, want 3 (activate, fetch, remove)", audits)
	}
}

// TestSIGTERMDuringActivationCompletes is the restart an activation may
// cause: systemd sends SIGTERM to pkgpandad while the activation's CLI
// child still runs. The activation must complete, its client get 204, and
// the daemon then exit 0.
func TestSIGTERMDuringActivationCompletes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "pkgpanda-api.sock")
	trace := filepath.Join(t.TempDir(), "trace")
	d := startDaemon(t, "--unix-socket", sock, "--delegate", "pkgpanda",
		"--env", "PKGPANDA_STANDIN_TRACE="+trace, "--env", "PKGPANDA_STANDIN_DELAY=2s")
	c := unixClient(sock)
	var active []string
	if err := json.Unmarshal(expectCall(t, c, "GET", "/active/", nil, 200), &active); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(active)
	type result struct {
		status int
		body   []byte
		err    error
	}
	res := make(chan result, 1)
	go func() {
		s, b, err := send(c, "PUT", "/active/", body)
		res <- result{s, b, err}
	}()
	// The activation's CLI child has started: the stand-in's trace file
	// (OS-level state, polled with a deadline).
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(trace)
		if bytes.Contains(b, []byte(" activate ")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the activation did not start; trace:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res:
		if r.err != nil || r.status != 204 {
			t.Fatalf("activation interrupted by SIGTERM answered %d %s (%v), want 204", r.status, r.body, r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no answer to the activation")
	}
	select {
	case <-d.done:
		if d.err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", d.err, d.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("pkgpandad did not exit after SIGTERM")
	}
	b, _ := os.ReadFile(trace)
	var started, ended bool
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && f[2] == "activate" {
			started = started || f[0] == "start"
			ended = ended || f[0] == "end"
		}
	}
	if !started || !ended {
		t.Fatalf("activation did not run to its end; trace:\n%s", b)
	}
}
