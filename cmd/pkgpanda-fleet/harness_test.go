package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/maintenance"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/procpanda/procpanda/internal/testfixture"
	"github.com/procpanda/procpanda/processes/pkgpanda/client"
)

// The test cluster: pkgpandad instances on 127.0.0.2, .3, … all on one
// port, each over its own demo repository, built and started once for
// the package and reset to the demo's active set by each test.
const (
	nAgents    = 8
	principal  = "ops"
	secret     = "s3cret"
	credsJSON  = `{"credentials":[{"principal":"ops","secret":"s3cret"}]}`
	masterUser = "fleet"
	masterPass = "m4ster"
)

// baseline is the demo's active set (cmd/pkgpanda-standin demo-init).
var baseline = []string{"marathon--1.10.0", "mesos--1.11.0", "mesos-config--demo"}

var (
	binDir  string // the built binaries
	workDir string // daemons' demo folders, the remote repository, secrets
	tcPort  int    // every agent's pkgpanda port
	daemons []*daemon
	remote  string // file:// URL of the remote repository
)

type daemon struct {
	ip   string
	demo string
	lock string // the daemon's --lock-file
	cmd  *exec.Cmd
	errb *bytes.Buffer
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	if binDir, err = os.MkdirTemp("", "pkgpanda-fleet-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	workDir = filepath.Join(binDir, "work")
	for _, name := range []string{"pkgpandad", "pkgpanda-standin", "pkgpanda-fleet"} {
		if _, err := testfixture.Build(binDir, name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := writeRemote(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := startCluster(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		stopCluster()
		return 1
	}
	defer stopCluster()
	return m.Run()
}

// writeRemote lays out a remote repository as pkgpanda fetch reads it:
// <url>/packages/<name>/<id>.tar.xz (an uncompressed tar: the stand-in
// sniffs the compression).
func writeRemote() error {
	dir := filepath.Join(workDir, "remote")
	for id, info := range map[string]string{
		"mesos--1.13.0":    `{"state_directory": true}`,
		"marathon--1.11.0": `{"requires": ["mesos"]}`,
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "pkginfo.json", Mode: 0o644, Size: int64(len(info)), Typeflag: tar.TypeReg, ModTime: time.Unix(1e9, 0)})
		tw.Write([]byte(info))
		tw.Close()
		p := filepath.Join(dir, "packages", nameOf(id), id+".tar.xz")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	remote = "file://" + dir
	return nil
}

// agentIPFor is the loopback address of agent i (0-based).
func agentIPFor(i int) string { return "127.0.0." + strconv.Itoa(i+2) }

func startCluster() error {
	creds := filepath.Join(workDir, "credentials.json")
	if err := os.WriteFile(creds, []byte(credsJSON), 0o600); err != nil {
		return err
	}
	for attempt := 0; attempt < 5; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		tcPort = l.Addr().(*net.TCPAddr).Port
		l.Close()
		daemons = make([]*daemon, nAgents)
		errs := make([]error, nAgents)
		var wg sync.WaitGroup
		for i := range nAgents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				daemons[i], errs[i] = startDaemon(agentIPFor(i), tcPort, creds, fmt.Sprintf("agent%02d-%d", i+1, attempt))
			}()
		}
		wg.Wait()
		var failed error
		for _, e := range errs {
			if e != nil {
				failed = e
			}
		}
		if failed == nil {
			return nil
		}
		stopCluster()
		if attempt == 4 {
			return failed
		}
	}
	return nil
}

func startDaemon(ip string, port int, creds, name string) (*daemon, error) {
	d := &daemon{ip: ip, demo: filepath.Join(workDir, name, "demo"), lock: filepath.Join(workDir, name, "lock"), errb: &bytes.Buffer{}}
	if err := os.MkdirAll(filepath.Dir(d.demo), 0o755); err != nil {
		return nil, err
	}
	d.cmd = exec.Command(filepath.Join(binDir, "pkgpandad"), "--pkgpanda", filepath.Join(binDir, "pkgpanda-standin"),
		"--demo", d.demo, "--http-credentials", creds, "--lock-file", d.lock, "--lock-timeout", "2m",
		"--tmp-dir", filepath.Join(workDir, name), "--log-level", "warn", "--access-log=false")
	d.cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=" + workDir, "LIBPROCESS_IP=" + ip, "LIBPROCESS_PORT=" + strconv.Itoa(port)} // TMPDIR: nothing a (killed) daemon leaves outlives the test
	d.cmd.Stderr = d.errb
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "pkgpanda@"+ip+":") {
		d.cmd.Process.Kill()
		d.cmd.Wait()
		return nil, fmt.Errorf("pkgpandad on %s:%d did not start (%q, %v): %s", ip, port, line, err, d.errb.String())
	}
	return d, nil
}

func stopCluster() {
	for _, d := range daemons {
		if d != nil {
			d.cmd.Process.Kill()
			d.cmd.Wait()
		}
	}
}

// agentClient is a pkgpanda client for daemon i, with the credentials.
func agentClient(t testing.TB, i int) *client.Client {
	t.Helper()
	c, err := client.NewHTTP(fmt.Sprintf("http://%s:%d/pkgpanda", agentIPFor(i), tcPort), client.WithBasicAuth(principal, secret), client.WithTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// resetCluster puts the demo's active set back on every daemon and
// removes packages tests fetched or planted.
func resetCluster(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for i := range daemons {
		c := agentClient(t, i)
		if err := c.Activate(ctx, baseline...); err != nil {
			t.Fatalf("resetting agent %d: %v", i+1, err)
		}
		repo, err := c.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"mesos--1.13.0", "marathon--1.11.0"} {
			if slices.Contains(repo, id) {
				if _, err := c.Remove(ctx, id); err != nil {
					t.Fatalf("resetting agent %d: %v", i+1, err)
				}
			}
		}
	}
}

// activeOf reads daemon i's active set.
func activeOf(t *testing.T, i int) []string {
	t.Helper()
	ids, err := agentClient(t, i).Active(context.Background())
	if err != nil {
		t.Fatalf("agent %d: %v", i+1, err)
	}
	return sortedCopy(ids)
}

// fakeMaster answers the Mesos v1 operator API's GET_AGENTS as a master
// does, with mesos-go's own types and encodings (protobuf or JSON, by
// the request's Accept), requiring Basic credentials.
type fakeMaster struct {
	srv *httptest.Server

	mu       sync.Mutex
	agents   []master.Response_GetAgents_Agent
	recover  []mesos.AgentInfo
	redirect string        // when set: answer 307 to this host:port (not the leader)
	garbage  bool          // answer 200 with a body that is no Response
	calls    atomic.Int64  // GET_AGENTS calls
	onCall   func(n int64) // called (unlocked) before each GET_AGENTS is answered
	schedule maintenance.Schedule
	updates  []maintenance.Schedule // every UPDATE_MAINTENANCE_SCHEDULE, in order
}

func newFakeMaster(t testing.TB) *fakeMaster {
	t.Helper()
	fm := &fakeMaster{}
	fm.srv = httptest.NewServer(http.HandlerFunc(fm.serve))
	t.Cleanup(fm.srv.Close)
	return fm
}

func (fm *fakeMaster) url() string      { return fm.srv.URL }
func (fm *fakeMaster) hostport() string { return strings.TrimPrefix(fm.srv.URL, "http://") }

func (fm *fakeMaster) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != masterUser || p != masterPass {
		w.Header().Set("WWW-Authenticate", `Basic realm="mesos"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var call master.Call
	var err error
	switch r.Header.Get("Content-Type") {
	case "application/x-protobuf":
		err = call.Unmarshal(body)
	case "application/json":
		err = json.Unmarshal(body, &call)
	default:
		http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
		return
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("Failed to parse body into Call: %v", err), http.StatusBadRequest)
		return
	}
	fm.mu.Lock()
	redirect := fm.redirect
	fm.mu.Unlock()
	if redirect != "" {
		// As Master::Http::redirect: a protocol-relative URL to the leader.
		w.Header().Set("Location", "//"+redirect+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	var resp master.Response
	switch call.Type {
	case master.Call_GET_AGENTS:
		n := fm.calls.Add(1)
		if fm.onCall != nil {
			fm.onCall(n)
		}
		fm.mu.Lock()
		resp = master.Response{Type: master.Response_GET_AGENTS, GetAgents: &master.Response_GetAgents{
			Agents: slices.Clone(fm.agents), RecoveredAgents: slices.Clone(fm.recover)}}
		fm.mu.Unlock()
	case master.Call_GET_MAINTENANCE_SCHEDULE:
		fm.mu.Lock()
		resp = master.Response{Type: master.Response_GET_MAINTENANCE_SCHEDULE, GetMaintenanceSchedule: &master.Response_GetMaintenanceSchedule{Schedule: fm.schedule}}
		fm.mu.Unlock()
	case master.Call_UPDATE_MAINTENANCE_SCHEDULE:
		s := call.UpdateMaintenanceSchedule.Schedule
		seen := map[string]bool{}
		for _, win := range s.Windows {
			for _, m := range win.MachineIDs {
				k := m.GetHostname() + "/" + m.GetIP()
				if seen[k] {
					// As the master's maintenance validation does.
					http.Error(w, "Machine '"+k+"' appears more than once in the schedule", http.StatusBadRequest)
					return
				}
				seen[k] = true
			}
		}
		fm.mu.Lock()
		fm.schedule = s
		fm.updates = append(fm.updates, s)
		fm.mu.Unlock()
		w.WriteHeader(http.StatusOK) // no body, as Mesos answers OK()
		return
	default:
		http.Error(w, "unexpected call "+call.Type.String(), http.StatusNotImplemented)
		return
	}
	fm.mu.Lock()
	garbage := fm.garbage
	fm.mu.Unlock()
	accept := r.Header.Get("Accept")
	if garbage {
		w.Header().Set("Content-Type", accept)
		w.Write([]byte("<html>not a master</html>"))
		return
	}
	var b []byte
	if accept == "application/json" {
		b, err = json.Marshal(&resp)
	} else {
		accept = "application/x-protobuf"
		b, err = resp.Marshal()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", accept)
	w.Write(b)
}

// setAgents replaces the master's agents.
func (fm *fakeMaster) setAgents(agents []master.Response_GetAgents_Agent, recovered ...mesos.AgentInfo) {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	fm.agents, fm.recover = agents, recovered
}

func (fm *fakeMaster) setGarbage(on bool) {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	fm.garbage = on
}

func (fm *fakeMaster) setRedirect(hostport string) {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	fm.redirect = hostport
}

// removeAgent drops an agent from the master (it is gone).
func (fm *fakeMaster) removeAgent(id string) {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	fm.agents = slices.DeleteFunc(fm.agents, func(a master.Response_GetAgents_Agent) bool { return a.AgentInfo.ID.Value == id })
}

// mesosAgent is a registered agent as GET_AGENTS reports it.
func mesosAgent(id, hostname, ip string) master.Response_GetAgents_Agent {
	pid := "slave(1)@" + ip + ":5051"
	return master.Response_GetAgents_Agent{
		AgentInfo: mesos.AgentInfo{ID: &mesos.AgentID{Value: id}, Hostname: hostname, Port: proto32(5051)},
		Active:    true, Version: "1.11.0", PID: &pid,
	}
}

func proto32(v int32) *int32 { return &v }

// clusterAgents are the eight daemons as active agents S1…S8.
func clusterAgents() []master.Response_GetAgents_Agent {
	var out []master.Response_GetAgents_Agent
	for i := range nAgents {
		out = append(out, mesosAgent(fmt.Sprintf("S%d", i+1), fmt.Sprintf("agent-%02d", i+1), agentIPFor(i)))
	}
	return out
}

// draining, deactivated and inactive variants.
func drainingAgent(id, host, ip string) master.Response_GetAgents_Agent {
	a := mesosAgent(id, host, ip)
	a.DrainInfo = &mesos.DrainInfo{State: mesos.DrainState_DRAINING}
	a.Active = false
	return a
}

func deactivatedAgent(id, host, ip string) master.Response_GetAgents_Agent {
	a := mesosAgent(id, host, ip)
	yes := true
	a.Deactivated, a.Active = &yes, false
	return a
}

// guard is a listener on an agent address that must never be contacted;
// it counts connections.
type guard struct {
	l     net.Listener
	conns atomic.Int64
}

func newGuard(t *testing.T, ip string) *guard {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(tcPort)))
	if err != nil {
		t.Fatal(err)
	}
	g := &guard{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			g.conns.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return g
}

// blackhole is an agent address that accepts and never answers.
func blackhole(t testing.TB, ip string) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(tcPort)))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
}

// secrets writes the credential files and returns the flags using them.
func credFlags(t testing.TB, fm *fakeMaster) []string {
	t.Helper()
	dir := t.TempDir()
	ms, as := filepath.Join(dir, "master-secret"), filepath.Join(dir, "agent-secret")
	os.WriteFile(ms, []byte(masterPass+"\n"), 0o600)
	os.WriteFile(as, []byte(secret+"\n"), 0o600)
	return []string{"--master", fm.url(), "--master-principal", masterUser, "--master-secret-file", ms,
		"--agent-principal", principal, "--agent-secret-file", as, "--pkgpanda-port", strconv.Itoa(tcPort)}
}

// runTool runs the tool in-process and returns its exit status and output.
func runTool(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb, nil)
	return code, out.String(), errb.String()
}

// listenOn listens on ip at the agents' port.
func listenOn(t *testing.T, ip string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(tcPort)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
