package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/procpanda/procpanda/conformance"
	"github.com/procpanda/procpanda/internal/runtimetest"
	"github.com/procpanda/procpanda/libprocess"
)

func TestMain(m *testing.M) {
	// run names this test binary as the mesos-go helper (--mesos-go).
	conformance.RunHelper()
	os.Exit(m.Run())
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--target", "127.0.0.1:1"},
		{"--target", "127.0.0.1:1", "--process", "p", "--ping", "x"},
		{"--target", "127.0.0.1:1", "--process", "p", "--run", "("},
		{"--no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}

func TestList(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--list"}, &out, &errOut); code != 0 {
		t.Fatalf("--list exited %d: %s", code, errOut.String())
	}
	if !regexp.MustCompile(`(?m)^msg\.pipeline\.half-close\t.*\[beyond libprocess\]$`).MatchString(out.String()) {
		t.Errorf("--list does not mark msg.pipeline.half-close as beyond libprocess")
	}
	for _, id := range []string{"msg.classify.libprocess-from", "route.dotdot", "help.json", "peer.outbound.headers", "mesosgo.reply", "pkgpanda.repository.fetch"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + "\t[^\t]*§").MatchString(out.String()) {
			t.Errorf("--list lacks %s", id)
		}
	}
}

func TestFailureExitsOne(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"--target", "127.0.0.1:1", "--process", "p", "--run", `^route\.root$`, "--timeout", "1s"}, &out, &errOut)
	if code != 1 || !strings.HasPrefix(out.String(), "FAIL route.root (§4.2): expected 404; seen ") ||
		!strings.Contains(out.String(), "\nrequired: 0 passed, 1 failed, 0 skipped; beyond libprocess: 0 passed, 0 unmet, 0 skipped (") {
		t.Errorf("exit %d, output:\n%s", code, out.String())
	}
}

// startEcho starts a runtime on loopback with an "echo" process answering
// conformance.Ping with conformance.Pong.
func startEcho(t *testing.T) *libprocess.Runtime {
	t.Helper()
	rt := runtimetest.Start(t)
	p := libprocess.NewProcess("echo")
	p.Install("conformance.Ping", func(m *libprocess.Message) { _ = p.Send(m.From, "conformance.Pong", m.Body) })
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	return rt
}

// --mesos-go runs the messenger in a child process of the command (this
// test binary, see TestMain), and the cases pass through it.
func TestMesosGoInHelper(t *testing.T) {
	rt := runtimetest.Start(t)
	p := libprocess.NewProcess("echo")
	p.Install("mesos.internal.SmallMessage", func(m *libprocess.Message) { _ = p.Send(m.From, "mesos.internal.SmallMessage", m.Body) })
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"--target", rt.Addr().HostPort(), "--process", "echo", "--mesos-go", "--run", `^mesosgo\.`}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "\nrequired: 4 passed, 0 failed, 0 skipped;") {
		t.Errorf("exit %d, output:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
}

func TestPassExitsZero(t *testing.T) {
	rt := startEcho(t)
	var out, errOut bytes.Buffer
	code := run([]string{"--target", rt.Addr().HostPort(), "--process", "echo", "--ping", "conformance.Ping", "--pong", "conformance.Pong",
		"--run", `^(peer\.|route\.|help\.)`}, &out, &errOut)
	if code != 0 || strings.Contains(out.String(), "FAIL") {
		t.Errorf("exit %d, output:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
}

// reportRecord is one line of a --report file.
type reportRecord struct {
	ID, Section, Title, Outcome, Detail string
}

// readReport parses a --report file, failing on anything but one JSON object
// per line with exactly the documented keys.
func readReport(t *testing.T, path string) []reportRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []reportRecord
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("report line %d %q: %v", i+1, line, err)
		}
		if len(m) != 6 || m["id"] == "" || !strings.Contains(m["section"], "§") || m["title"] == "" || m["detail"] == "" || m["category"] != "required" {
			t.Fatalf("report line %d lacks id, section, title, category (required), outcome or detail: %q", i+1, line)
		}
		recs = append(recs, reportRecord{m["id"], m["section"], m["title"], m["outcome"], m["detail"]})
	}
	return recs
}

// --report writes one record per case, in the order and with the outcomes
// of the text report.
func TestReportFile(t *testing.T) {
	rt := startEcho(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "report.jsonl")
	var out, errOut bytes.Buffer
	code := run([]string{"--target", rt.Addr().HostPort(), "--process", "echo", "--report", path,
		"--run", `^(route\.root|help\.unknown-process|peer\.roundtrip|msg\.answer\.no-leading-slash)$`}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, output:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	recs := readReport(t, path)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(recs) != 4 || len(lines) != 5 {
		t.Fatalf("%d records for %d text lines:\n%s", len(recs), len(lines), out.String())
	}
	for i, r := range recs {
		if want := r.Outcome + " " + r.ID + " (" + r.Section + "): "; !strings.HasPrefix(lines[i], want) || !strings.HasSuffix(lines[i], r.Detail) {
			t.Errorf("record %+v does not match text line %q", r, lines[i])
		}
	}
	if recs[0].ID != "msg.answer.no-leading-slash" || recs[0].Outcome != "PASS" || recs[3].ID != "peer.roundtrip" || recs[3].Outcome != "SKIP" {
		t.Errorf("records %+v", recs)
	}

	// A failing run: the failure is recorded with what was expected and seen.
	out.Reset()
	code = run([]string{"--target", "127.0.0.1:1", "--process", "p", "--run", `^route\.root$`, "--timeout", "1s", "--report", path}, &out, &errOut)
	recs = readReport(t, path)
	if code != 1 || len(recs) != 1 || recs[0].Outcome != "FAIL" || !strings.HasPrefix(recs[0].Detail, "expected 404; seen ") {
		t.Errorf("exit %d, records %+v", code, recs)
	}

	// A report that cannot be written is a usage error, before any case runs.
	out.Reset()
	if code := run([]string{"--target", rt.Addr().HostPort(), "--process", "echo", "--report", filepath.Join(dir, "no", "such", "dir")}, &out, &errOut); code != 2 || out.Len() != 0 {
		t.Errorf("unwritable report: exit %d, output %q", code, out.String())
	}
}
