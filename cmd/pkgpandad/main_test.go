package main

import (
	"bufio"
	"encoding/json"
	"github.com/procpanda/procpanda/internal/testlog"
	"io"
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
	"github.com/procpanda/procpanda/libprocess"
	"github.com/rs/zerolog"
)

// stampedVersion is the version build stamps into the binaries, as make
// build does with git describe.
const stampedVersion = "v0.0.0-test-stamp"

// build compiles pkgpandad and the stand-in CLI into a temp dir.
func build(t *testing.T) (daemon, standin string) {
	t.Helper()
	dir := t.TempDir()
	for _, pkg := range []string{"pkgpandad", "pkgpanda-standin"} {
		if _, err := testfixture.Build(dir, pkg, "-X main.version="+stampedVersion); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "pkgpandad"), filepath.Join(dir, "pkgpanda-standin")
}

// TestDemoServesAndSIGTERMExitsZero starts the daemon as `make run` does
// (stand-in CLI, --demo), reads its UPID line, queries the API, then
// sends SIGTERM and expects exit status 0.
func TestDemoServesAndSIGTERMExitsZero(t *testing.T) {
	d := startDaemon(t, "--queue", "list.json=4", "--timeout", "fetch=1m", "--log-level", "debug")
	demo, stderr := d.demo, d.stderr
	resp, err := http.Get(d.base + "/pkgpanda/repository/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ids []string
	if resp.StatusCode != 200 || json.Unmarshal(body, &ids) != nil || len(ids) == 0 {
		t.Fatalf("GET /pkgpanda/repository/: %d %s", resp.StatusCode, body)
	}
	// The demo repository is what the stand-in created under --demo.
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(demo, "packages", id, "pkginfo.json")); err != nil {
			t.Errorf("listed %s is not in the demo repository: %v", id, err)
		}
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
		if err := d.err; err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pkgpandad did not exit after SIGTERM")
	}
	// A clean exit leaves nothing in the temp dir: its upload directory
	// is gone.
	if left, _ := os.ReadDir(d.tmp); len(left) != 0 {
		t.Errorf("pkgpandad left %d entries in its temp dir after a clean exit, the first %s", len(left), left[0].Name())
	}
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
	}
}

func TestBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"--pkgpanda", "/bin/true", "--pkgpanda-arg=--bogus"},
		{"--pkgpanda", "/bin/true", "--pkgpanda-arg=--root"},
		{"--pkgpanda", "/bin/true", "--timeout", "nosuchroute=1s"},
		{"--pkgpanda", "/bin/true", "--queue", "list.json=0"},
		{"--pkgpanda", "/bin/true", "--log-level", "loud"},
		{"--nosuchflag"},
		{"--pkgpanda", "/bin/true", "extra"},
	} {
		var out, errb strings.Builder
		code := run(args, func(string) (string, bool) { return "", false }, &out, &errb, nil)
		if code != 2 || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing", args, code, out.String())
		}
	}
}

// daemon is a running pkgpandad.
type daemon struct {
	cmd    *exec.Cmd
	upid   libprocess.UPID
	base   string // http://ip:port
	demo   string // the --demo directory
	tmp    string // the daemon's TMPDIR
	stderr *strings.Builder
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, set before done closes
}

// startDaemon runs pkgpandad over a demo repository with extra flags, as
// `make run` does, and reads its UPID line; it is killed when the test
// ends unless it has exited.
func startDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	bin, standin := build(t)
	d := &daemon{demo: filepath.Join(t.TempDir(), "demo"), tmp: t.TempDir(), stderr: &strings.Builder{}, done: make(chan struct{})}
	args := []string{"--pkgpanda", standin, "--demo", d.demo}
	if !slices.ContainsFunc(extra, func(a string) bool {
		return strings.HasPrefix(a, "--http-credentials") || strings.HasPrefix(a, "--jwt-secret-key") || a == "--tcp=false"
	}) {
		// These tests are about other things than authentication.
		args = append(args, "--insecure-allow-unauthenticated-mutations")
	}
	d.cmd = exec.Command(bin, append(args, extra...)...)
	d.cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=" + d.tmp, "LIBPROCESS_IP=127.0.0.1", "LIBPROCESS_PORT=0"} // TMPDIR: nothing a (killed) daemon leaves outlives the test
	d.cmd.Stderr = d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	if err != nil {
		t.Fatalf("reading the UPID line: %v; stderr:\n%s", err, d.stderr.String())
	}
	if d.upid, err = libprocess.ParseUPID(strings.TrimSpace(line)); err != nil || d.upid.ID != "pkgpanda" {
		t.Fatalf("first stdout line %q is not a pkgpanda UPID: %v", line, err)
	}
	d.base = "http://" + d.upid.HostPort()
	return d
}

func TestHTTPCredentialsGuardRoutes(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(creds, []byte(`{"credentials":[{"principal":"ops","secret":"s3cret"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := startDaemon(t, "--http-credentials", creds).base
	get := func(user, pass string) *http.Response {
		req, _ := http.NewRequest("GET", base+"/pkgpanda/repository/", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, c := range [][2]string{{"", ""}, {"ops", "wrong"}, {"eve", "s3cret"}} {
		resp := get(c[0], c[1])
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="pkgpanda"` {
			t.Fatalf("credentials %q: %d %q", c, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if resp := get("ops", "s3cret"); resp.StatusCode != 200 {
		t.Fatalf("valid credentials: %d", resp.StatusCode)
	}
	// The runtime's endpoints follow Mesos' rule: with reads
	// authenticated, the metrics need credentials (the read-only realm),
	// while /help and /__processes__ stay open.
	for path, want := range map[string]int{"/metrics/snapshot": 401, "/metrics/prometheus": 401, "/help": 200, "/help/pkgpanda": 200, "/__processes__": 200} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s without credentials: %d, want %d", path, resp.StatusCode, want)
		}
	}
	req, _ := http.NewRequest("GET", base+"/metrics/snapshot", nil)
	req.SetBasicAuth("ops", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics/snapshot with credentials: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestKilledDaemonLeavesNoChild: SIGKILL of the daemon during a mutation
// takes the CLI child with it (parent-death signal), so nothing is left to
// overlap a restarted daemon.
func TestKilledDaemonLeavesNoChild(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace")
	d := startDaemon(t, "--env", "PKGPANDA_STANDIN_DELAY=1h", "--env", "PKGPANDA_STANDIN_TRACE="+trace)
	ents, err := os.ReadDir(filepath.Join(d.demo, "packages"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("demo repository: %v", err)
	}
	go func() {
		resp, err := http.Post(d.base+"/pkgpanda/activate?id="+ents[0].Name(), "text/plain", nil)
		if err == nil {
			resp.Body.Close()
		}
	}()
	pid := 0
	deadline := time.Now().Add(20 * time.Second)
	for pid == 0 {
		b, _ := os.ReadFile(trace)
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 4 && f[0] == "start" && f[2] == "activate" {
				pid, _ = strconv.Atoi(f[1])
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the activation never started; stderr:\n%s", d.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !processAlive(pid) {
		t.Fatalf("the activate child %d is not running", pid)
	}
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.done
	deadline = time.Now().Add(20 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the activate child %d outlived the SIGKILLed daemon", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// processAlive reports whether pid runs (a zombie counts as gone).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func TestBadAuthorizationFlagsExit2(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials.json")
	if err := os.WriteFile(creds, []byte(`{"credentials":[{"principal":"ops","secret":"s3cret"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"read": {"type": "ANY"}, "mutate": {"principals": ["ops"]}}`)
	for _, args := range [][]string{
		{"--acls", good}, // no authenticator
		{"--http-credentials", creds, "--acls", write("unknown.json", `{"read": {"type": "ANY"}, "admin": {}}`)},
		{"--http-credentials", creds, "--acls", write("bad.json", `{"read": `)},
		{"--http-credentials", creds, "--acls", filepath.Join(dir, "missing.json")},
		{"--max-uploads", "-1"},
		{"--lock-timeout", "-1s"},
	} {
		var out, errb strings.Builder
		code := run(append([]string{"--pkgpanda", "/bin/true"}, args...), func(string) (string, bool) { return "", false }, &out, &errb, nil)
		if code != 2 || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing", args, code, out.String())
		}
	}
}

// TestCacheFlag: reuse of read results is on by default and --cache=false
// turns it off in the process configuration.
func TestCacheFlag(t *testing.T) {
	for _, c := range []struct {
		args    []string
		disable bool
	}{
		{nil, false},
		{[]string{"--cache=true"}, false},
		{[]string{"--cache=false"}, true},
	} {
		o, err := parseFlags(append([]string{"--pkgpanda", "/bin/true", "--insecure-allow-unauthenticated-mutations"}, c.args...), io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		cfg, err := buildConfig(o, func(string) (string, bool) { return "", false }, zerolog.Nop())
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if cfg.DisableCache != c.disable {
			t.Errorf("%q: DisableCache = %v, want %v", c.args, cfg.DisableCache, c.disable)
		}
	}
}

// TestExposurePolicy: pkgpandad refuses, at start and with exit 2, to
// serve its TCP port without authentication unless asked to by name, to
// serve nothing, and a credentials or environment file that is missing
// or broken, naming it. Nothing is started.
func TestExposurePolicy(t *testing.T) {
	dir := t.TempDir()
	badCreds := filepath.Join(dir, "creds.json")
	if err := os.WriteFile(badCreds, []byte(`{"credentials":[{"secret":"x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	badEnv := filepath.Join(dir, "environment")
	if err := os.WriteFile(badEnv, []byte("PATH=/bin\nnot a line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--http-credentials FILE"},
		{[]string{"--tcp=false"}, "--tcp=false needs --unix-socket"},
		{[]string{"--insecure-allow-unauthenticated-mutations", "--http-credentials", badCreds}, badCreds},
		{[]string{"--http-credentials", filepath.Join(dir, "absent")}, "reading --http-credentials"},
		{[]string{"--http-credentials", badCreds}, "has no principal"},
		{[]string{"--insecure-allow-unauthenticated-mutations", "--env-file", badEnv}, badEnv + ": line 2"},
	} {
		var stderr strings.Builder
		code := run(append([]string{"--pkgpanda", "/bin/true"}, c.args...), func(string) (string, bool) { return "", false },
			io.Discard, &stderr, make(chan os.Signal))
		if code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %s; want exit 2 mentioning %q", c.args, code, stderr.String(), c.want)
		}
	}
}

// TestInsecureOpenWarns: a daemon run open on purpose says so at start
// and in every route's /help.
func TestInsecureOpenWarns(t *testing.T) {
	_, standin := build(t)
	var stderr testlog.Buffer
	pr, pw := io.Pipe()
	sigs := make(chan os.Signal, 1)
	exited := make(chan int, 1)
	env := map[string]string{"PATH": "/usr/bin:/bin", "LIBPROCESS_IP": "127.0.0.1", "LIBPROCESS_PORT": "0"}
	go func() {
		exited <- run([]string{"--pkgpanda", standin, "--demo", filepath.Join(t.TempDir(), "demo"), "--insecure-allow-unauthenticated-mutations"},
			func(k string) (string, bool) { v, ok := env[k]; return v, ok }, pw, &stderr, sigs)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no UPID line: %v\n%s", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	upid, err := libprocess.ParseUPID(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	// The start-up lines were written before the UPID line.
	if !strings.Contains(stderr.String(), "authentication is OFF on the TCP port") {
		t.Errorf("no warning at start:\n%s", stderr.String())
	}
	for path, want := range map[string]string{"/help/pkgpanda/active": "WARNING: none.", "/help/pkgpanda": "UNAUTHENTICATED: "} {
		resp, err := http.Get("http://" + upid.HostPort() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not warn (%q):\n%s", path, want, b)
		}
	}
	sigs <- syscall.SIGTERM
	if code := <-exited; code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}
