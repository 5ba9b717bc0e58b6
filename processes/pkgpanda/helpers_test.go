package pkgpanda

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"github.com/procpanda/procpanda/internal/testlog"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procpanda/procpanda/internal/testfixture"
	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	"github.com/rs/zerolog"
)

// standin is the stand-in CLI built by TestMain.
var standin string

func TestMain(m *testing.M) {
	testlog.QuietGlog() // mesos-go's glog, linked by the message tests
	dir, err := os.MkdirTemp("", "pkgpanda-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if standin, err = testfixture.Build(dir, "pkgpanda-standin"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one pkgpanda process on its own runtime over a fresh fixture copy.
type env struct {
	t       testing.TB
	rt      *libprocess.Runtime
	p       *Process
	base    string // http://127.0.0.1:port/pkgpanda
	dir     string // the fixture copy
	fixture string // the pristine fixture
	trace   string // the stand-in's trace file
	tempDir string // Config.TempDir
	client  *http.Client
}

type envOpt struct {
	delay  time.Duration
	limits map[string]RouteLimits
	onRun  func(runInfo)
	// maxAdd is Config.MaxAddSize.
	maxAdd int64
	// noTrace leaves the stand-in's trace hook off (benchmarks).
	noTrace bool
	// authn, acl and openReads are Config.Authenticator, ACL, OpenReads.
	authn     libprocess.Authenticator
	acl       *ACL
	openReads bool
	// maxUploads, maxUploadBytes, lockTimeout: the Config fields.
	maxUploads     int
	maxUploadBytes int64
	lockTimeout    time.Duration
	// shareWith makes the new process serve the same fixture copy (and
	// trace file) as another env, with a TempDir of its own.
	shareWith *env
	// beforeStart runs after New, before Start.
	beforeStart func(e *env)
	// routeTimeout, when set, is the runtime's Config.RouteTimeout.
	routeTimeout time.Duration
	// noCache is Config.DisableCache; cost is PKGPANDA_STANDIN_COST.
	noCache bool
	cost    time.Duration
	// log, when set, receives the process' logs (Config.Logger).
	log io.Writer
}

func fixtureDir(t testing.TB) string {
	t.Helper()
	dir, err := testfixture.Find()
	if err != nil {
		t.Skipf("no pkgpanda fixture: %v", err)
	}
	return dir
}

func newEnv(t testing.TB, o envOpt) *env {
	t.Helper()
	fixture := fixtureDir(t)
	dir := t.TempDir()
	copyDir := filepath.Join(dir, "fixture")
	e := &env{t: t, dir: copyDir, fixture: fixture, trace: filepath.Join(dir, "trace"), tempDir: dir}
	if o.shareWith != nil {
		e.dir, e.trace, copyDir = o.shareWith.dir, o.shareWith.trace, o.shareWith.dir
	} else if err := testfixture.Copy(fixture, copyDir); err != nil {
		t.Fatalf("copying the fixture: %v", err)
	}
	childEnv := []string{"PATH=/usr/bin:/bin"}
	if !o.noTrace {
		childEnv = append(childEnv, "PKGPANDA_STANDIN_TRACE="+e.trace)
	}
	if o.delay > 0 {
		childEnv = append(childEnv, "PKGPANDA_STANDIN_DELAY="+o.delay.String())
	}
	if o.cost > 0 {
		childEnv = append(childEnv, "PKGPANDA_STANDIN_COST="+o.cost.String())
	}
	cfg := Config{
		Tool: cli.Tool{Path: standin, Options: cli.Options{
			Root:          filepath.Join(copyDir, "install"),
			Repository:    filepath.Join(copyDir, "packages"),
			ConfigDir:     filepath.Join(copyDir, "etc"),
			StateDirRoot:  filepath.Join(copyDir, "state"),
			RootedSystemd: true,
			NoSystemd:     true,
		}},
		Env:        childEnv,
		TempDir:    dir,
		Limits:     o.limits,
		KillGrace:  time.Second,
		onRun:      o.onRun,
		MaxAddSize: o.maxAdd,

		Authenticator:  o.authn,
		ACL:            o.acl,
		OpenReads:      o.openReads,
		MaxUploads:     o.maxUploads,
		MaxUploadBytes: o.maxUploadBytes,
		LockTimeout:    o.lockTimeout,
		DisableCache:   o.noCache,
	}
	if o.log != nil {
		cfg.Logger = zerolog.New(o.log)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.p = p
	if o.beforeStart != nil {
		o.beforeStart(e)
	}
	rcfg := libprocess.DefaultConfig()
	rcfg.IP = "127.0.0.1"
	rcfg.Port = 0
	if o.routeTimeout > 0 {
		rcfg.RouteTimeout = o.routeTimeout
	}
	rt, err := libprocess.New(rcfg)
	if err != nil {
		t.Fatalf("libprocess.New: %v", err)
	}
	if err := rt.Start(); err != nil {
		t.Fatalf("runtime Start: %v", err)
	}
	if _, err := p.Start(rt); err != nil {
		t.Fatalf("pkgpanda Start: %v", err)
	}
	e.rt, e.p = rt, p
	e.base = "http://" + rt.Addr().HostPort() + "/" + processID
	e.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	if tally := openAPICheck.Load(); tally != nil { // TestOpenAPIDescribesEveryResponse
		e.client.Transport = &checkingTransport{t: t, p: p, next: e.client.Transport, tally: tally}
	}
	t.Cleanup(func() {
		e.client.CloseIdleConnections()
		http.DefaultClient.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Drain(ctx); err != nil {
			t.Errorf("Drain: %v", err)
		}
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return e
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends one request; path is below /pkgpanda.
func (e *env) do(method, path string, body []byte, header ...string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("request %s %s: %v", method, path, err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// doJSON sends a JSON body, labelled application/json.
func (e *env) doJSON(method, path string, body []byte, header ...string) reply {
	e.t.Helper()
	return e.do(method, path, body, append([]string{"Content-Type", "application/json"}, header...)...)
}

// expect checks a reply's status and, for JSON errors, the error shape.
func expectStatus(t testing.TB, what string, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: got %s, want status %d", what, r, status)
	}
	if status >= 400 {
		var obj map[string]any
		if err := json.Unmarshal(r.body, &obj); err != nil {
			t.Fatalf("%s: error body is not a JSON object: %q", what, r.body)
		}
		if s, ok := obj["error"].(string); !ok || s == "" {
			t.Fatalf("%s: error body lacks an error string: %q", what, r.body)
		}
	}
}

func expectJSON(t testing.TB, what string, r reply, status int, want string) {
	t.Helper()
	expectStatus(t, what, r, status)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
	var got, exp any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", what, r.body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("%s: bad expectation %q: %v", what, want, err)
	}
	gb, _ := json.Marshal(got)
	eb, _ := json.Marshal(exp)
	if !bytes.Equal(gb, eb) {
		t.Fatalf("%s: body %s, want %s", what, gb, eb)
	}
}

// fixtureIDs lists the fixture's valid package ids and active ids, derived
// from its files (so the expectations are not hard-coded).
func fixtureIDs(t testing.TB, dir string) (repo, active []string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "packages"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if cli.ValidID(e.Name()) == nil {
			repo = append(repo, e.Name())
		}
	}
	links, err := os.ReadDir(filepath.Join(dir, "install", "active"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		p := filepath.Join(dir, "install", "active", l.Name())
		target, err := os.Readlink(p)
		if err != nil {
			b, rerr := os.ReadFile(p) // the shared fixture stores links as files
			if rerr != nil {
				t.Fatal(rerr)
			}
			target = strings.TrimSpace(string(b))
		}
		active = append(active, filepath.Base(target))
	}
	sort.Strings(repo)
	sort.Strings(active)
	return repo, active
}

func jsonList(ids []string) string {
	b, _ := json.Marshal(ids)
	return string(b)
}

// span is one stand-in run from the trace file.
type span struct {
	pid        int
	sub        string
	start, end int64
}

// readTrace parses the stand-in's trace file; a run still going has end 0.
func (e *env) readTrace() []span {
	e.t.Helper()
	f, err := os.Open(e.trace)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	byPid := map[int]*span{}
	var order []*span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 {
			e.t.Fatalf("bad trace line %q", sc.Text())
		}
		pid, _ := strconv.Atoi(fs[1])
		ts, _ := strconv.ParseInt(fs[3], 10, 64)
		switch fs[0] {
		case "start":
			s := &span{pid: pid, sub: fs[2], start: ts}
			byPid[pid] = s
			order = append(order, s)
		case "end":
			if s := byPid[pid]; s != nil {
				s.end = ts
			}
		}
	}
	out := make([]span, 0, len(order))
	for _, s := range order {
		out = append(out, *s)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes (used only
// where no signal exists: the stand-in's trace file, queue depth).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) runsStarted(sub string) int {
	n := 0
	for _, s := range e.readTrace() {
		if s.sub == sub {
			n++
		}
	}
	return n
}

// async runs a request on its own goroutine.
func (e *env) async(wg *sync.WaitGroup, out *reply, method, path string, body []byte) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		req, _ := http.NewRequest(method, e.base+path, bytes.NewReader(body))
		if body != nil {
			req.Header.Set("Content-Type", "application/json") // the bodies sent here are JSON
		}
		resp, err := e.client.Do(req)
		if err != nil {
			*out = reply{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		*out = reply{resp.StatusCode, resp.Header, b}
	}()
}

// tarball builds a gzip-compressed package tarball (the stand-in sniffs
// the compression) holding pkginfo.json.
func tarball(t testing.TB) []byte { return tarballWith(t, 0) }

// tarballWith adds a file of extra incompressible bytes.
func tarballWith(t testing.TB, extra int) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	info := []byte(`{"requires": []}`)
	if err := tw.WriteHeader(&tar.Header{Name: "pkginfo.json", Mode: 0o644, Size: int64(len(info)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(info); err != nil {
		t.Fatal(err)
	}
	if extra > 0 {
		blob := make([]byte, extra)
		if _, err := rand.Read(blob); err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: "blob", Mode: 0o644, Size: int64(extra), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(blob); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func cliTool() cli.Tool { return cli.Tool{Path: "/nonexistent/pkgpanda"} }
