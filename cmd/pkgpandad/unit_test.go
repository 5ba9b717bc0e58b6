package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/procpanda/procpanda/libprocess"
)

// shippedUnit is dcos-pkgpanda-api.service as systemd reads it: its
// directives, ExecStart's words with the variables of pkgpandad.env
// substituted as systemd does (${X} one word, $X split on white space).
type shippedUnit struct {
	directives map[string][]string
	argv       []string
}

func readShippedUnit(t *testing.T, env map[string]string) shippedUnit {
	t.Helper()
	b, err := os.ReadFile("dcos-pkgpanda-api.service")
	if err != nil {
		t.Fatal(err)
	}
	u := shippedUnit{directives: map[string][]string{}}
	var lines []string
	cont := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cont += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	braced := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		u.directives[k] = append(u.directives[k], v)
		if k != "ExecStart" {
			continue
		}
		for _, w := range strings.Fields(v) {
			if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
				u.argv = append(u.argv, strings.Fields(env[w[1:]])...)
				continue
			}
			u.argv = append(u.argv, braced.ReplaceAllStringFunc(w, func(m string) string { return env[m[2:len(m)-1]] }))
		}
	}
	return u
}

// envFileMap reads pkgpandad.env with the daemon's own parser.
func envFileMap(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("pkgpandad.env")
	if err != nil {
		t.Fatal(err)
	}
	kvs, err := parseEnvFile(b)
	if err != nil {
		t.Fatalf("pkgpandad.env: %v", err)
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// TestShippedUnit runs pkgpandad exactly as dcos-pkgpanda-api.service
// with pkgpandad.env starts it (paths moved into the test's directory):
// it serves Admin Router's socket and no TCP port, mutations on the
// socket need no credentials (Admin Router authenticates), the CLI gets
// the variables of /opt/mesosphere/environment, and the unit carries
// DC/OS' descriptor limit. Turning the port on without credentials is
// refused with exit 2, which the unit does not restart.
func TestShippedUnit(t *testing.T) {
	bin, standin := build(t)
	dir := t.TempDir()
	env := envFileMap(t)
	unit := readShippedUnit(t, env)
	for k, want := range map[string]string{"LimitNOFILE": "16384", "RestartPreventExitStatus": "2", "KillMode": "mixed", "Restart": "always"} {
		if got := unit.directives[k]; !slices.Equal(got, []string{want}) {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if !slices.Contains(unit.directives["EnvironmentFile"], "-/opt/mesosphere/environment") {
		t.Errorf("the unit does not load /opt/mesosphere/environment: %q", unit.directives["EnvironmentFile"])
	}
	trace := filepath.Join(dir, "trace")
	mesosEnv := filepath.Join(dir, "environment")
	if err := os.WriteFile(mesosEnv, []byte("PATH=/usr/bin:/bin\nPKGPANDA_STANDIN_TRACE="+trace+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "pkgpanda-api.sock")
	moved := strings.NewReplacer(
		"/opt/mesosphere/bin/pkgpandad", bin,
		env["PKGPANDA_CLI"], standin,
		"/opt/mesosphere/environment", mesosEnv,
		"/var/lib/pkgpandad", state,
		"/run/dcos/pkgpanda-api.sock", sock,
		"dcos_adminrouter", strconv.Itoa(os.Getgid()),
	)
	var argv []string
	for _, a := range unit.argv {
		argv = append(argv, moved.Replace(a))
	}
	argv = append(argv, "--demo", filepath.Join(dir, "demo"))
	if argv[0] != bin || env["PKGPANDAD_TCP"] != "false" {
		t.Fatalf("ExecStart %q with PKGPANDAD_TCP=%q", argv, env["PKGPANDAD_TCP"])
	}

	// As shipped: the socket only.
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=" + dir, "LIBPROCESS_IP=127.0.0.1", "LIBPROCESS_PORT=0"} // TMPDIR: nothing a (killed) daemon leaves outlives the test
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("no UPID line: %v\n%s", err, stderr.String())
	}
	upid, err := libprocess.ParseUPID(strings.TrimSpace(line))
	if err != nil || upid.Port != 0 {
		t.Fatalf("UPID %q (%v): want port 0, no TCP listener", line, err)
	}
	c := unixClient(sock)
	var active []string
	if err := json.Unmarshal(expectCall(t, c, "GET", "/active/", nil, 200), &active); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(active)
	expectCall(t, c, "PUT", "/active/", body, 204) // a mutation, no credentials: Admin Router's job
	if b, err := os.ReadFile(trace); err != nil || !strings.Contains(string(b), " activate ") {
		t.Fatalf("the CLI did not get /opt/mesosphere/environment's variables (trace %q, %v)", b, err)
	}
	if ents, _ := os.ReadDir(state); len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "pkgpanda-uploads-") {
		t.Fatalf("the upload directory is not under the unit's state directory: %v", ents)
	}

	// The port turned on without credentials: refused, exit 2.
	bad := exec.Command(argv[0], append(slices.Clone(argv[1:]), "--tcp=true")...)
	bad.Env = cmd.Env
	msg, err := bad.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(msg), "--http-credentials") {
		t.Fatalf("--tcp=true without credentials: %v\n%s", err, msg)
	}
}
