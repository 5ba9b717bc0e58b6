package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpmaster"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/mesos/mesos-go/api/v1/lib/master/calls"
)

func TestParseTarget(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "target")
	os.WriteFile(file, []byte("# the release\nmesos--1.12.0   # new mesos\n\nmarathon--1.11.0\n"), 0o600)
	tg, err := parseTarget("mesos-config--demo", file, false)
	if err != nil || !slices.Equal(tg.IDs, []string{"marathon--1.11.0", "mesos--1.12.0", "mesos-config--demo"}) {
		t.Fatalf("%v %v", tg, err)
	}
	for _, bad := range []string{"mesos--1.12.0,mesos--1.13.0", "mesos", "a--b--c"} {
		if _, err := parseTarget(bad, "", false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := parseTarget("", filepath.Join(dir, "missing"), false); err == nil {
		t.Error("a missing target file was accepted")
	}
}

func TestDesiredAndDiff(t *testing.T) {
	active := []string{"marathon--1.10.0", "mesos--1.11.0", "mesos-config--demo"}
	tg := Target{IDs: []string{"mesos--1.12.0", "zk--3"}}
	want := tg.desired(active)
	if !slices.Equal(want, []string{"marathon--1.10.0", "mesos--1.12.0", "mesos-config--demo", "zk--3"}) {
		t.Errorf("desired %v", want)
	}
	if d := diff(active, want); !slices.Equal(d, []string{"mesos 1.11.0→1.12.0", "+zk 3"}) {
		t.Errorf("diff %v", d)
	}
	exact := Target{IDs: []string{"mesos--1.12.0"}, Exact: true}
	if d := diff(active, exact.desired(active)); !slices.Equal(d, []string{"-marathon 1.10.0", "mesos 1.11.0→1.12.0", "-mesos-config demo"}) {
		t.Errorf("exact diff %v", d)
	}
}

func TestMajority(t *testing.T) {
	counts := map[[2]string]int{{"mesos", "1.11.0"}: 5, {"mesos", "1.12.0"}: 3, {"rare", "1"}: 2}
	if m := majority(counts, 8); !slices.Equal(m.IDs, []string{"mesos--1.11.0"}) {
		t.Errorf("majority %v", m.IDs)
	}
}

func TestAgentIPAndRedirect(t *testing.T) {
	for pid, want := range map[string]string{"slave(1)@10.0.0.5:5051": "10.0.0.5", "": "host", "garbage": "host", "slave(1)@[::1]:5051": "::1"} {
		if got := agentIP(pid, "host"); got != want {
			t.Errorf("agentIP(%q) = %q, want %q", pid, got, want)
		}
	}
	for in, want := range map[string]string{
		"http://m:5050":                     "http://m:5050/api/v1",
		"http://m:5050/":                    "http://m:5050/api/v1",
		"https://dcos.example/mesos/":       "https://dcos.example/mesos/api/v1",
		"https://m:5050/api/v1?x=1":         "https://m:5050/api/v1",
		"https://dcos.example/mesos/api/v1": "https://dcos.example/mesos/api/v1",
	} {
		if got, err := apiEndpoint(in); err != nil || got != want {
			t.Errorf("apiEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	got, err := follow("//10.0.0.2:5050/api/v1", "https://10.0.0.1:5050/api/v1")
	if err != nil || got != "https://10.0.0.2:5050/api/v1" {
		t.Errorf("follow: %q %v", got, err)
	}
	if _, err := follow("", "http://m:5050/api/v1"); err == nil {
		t.Error("an empty Location was followed")
	}
}

func TestAuthorizationFlags(t *testing.T) {
	dir := t.TempDir()
	tok, sec := filepath.Join(dir, "tok"), filepath.Join(dir, "sec")
	os.WriteFile(tok, []byte("eyJ.abc.def\n"), 0o600)
	os.WriteFile(sec, []byte("s3cret\n"), 0o600)
	if a, err := authorization("agent", "", "", tok); err != nil || a != "Bearer eyJ.abc.def" {
		t.Errorf("token: %q %v", a, err)
	}
	if a, err := authorization("agent", "ops", sec, ""); err != nil || a != "Basic b3BzOnMzY3JldA==" {
		t.Errorf("basic: %q %v", a, err)
	}
	for _, c := range [][3]string{{"ops", "", ""}, {"", sec, ""}, {"ops", sec, tok}} {
		if _, err := authorization("agent", c[0], c[1], c[2]); err == nil {
			t.Errorf("%q accepted", c)
		}
	}
}

// TestMasterTLSAndToken: a master over TLS verified with --master-ca-file
// and a bearer token.
func TestMasterTLSAndToken(t *testing.T) {
	fm := &fakeMaster{}
	srv := newTLSMaster(t, fm, "Bearer t0ken")
	fm.setAgents([]master.Response_GetAgents_Agent{mesosAgent("S1", "agent-01", agentIPFor(0))})
	dir := t.TempDir()
	ca, tok, sec := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "tok"), filepath.Join(dir, "sec")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	os.WriteFile(tok, []byte("t0ken\n"), 0o600)
	os.WriteFile(sec, []byte(secret), 0o600)
	base := []string{"status", "--master", srv.URL, "--master-token-file", tok, "--agent-principal", principal, "--agent-secret-file", sec, "--pkgpanda-port", strconv.Itoa(tcPort)}
	code, out, errs := runTool(t, append(base, "--master-ca-file", ca)...)
	if code == exitError || !strings.Contains(out, "1 agents, 1 answered") {
		t.Errorf("TLS master with its CA: exit %d\n%s%s", code, out, errs)
	}
	code, _, errs = runTool(t, base...)
	if code != exitError || !strings.Contains(errs, "certificate") {
		t.Errorf("TLS master without its CA: exit %d %q", code, errs)
	}
	// Wrong agent credentials: every agent refuses, each with the reason.
	os.WriteFile(sec, []byte("wrong"), 0o600)
	code, out, _ = runTool(t, append(base, "--master-ca-file", ca)...)
	if code != exitIncomplete || !hasLine(out, "agent-01 (S1)", "refused: 401") {
		t.Errorf("wrong agent credentials: exit %d\n%s", code, out)
	}
}

// newTLSMaster serves fm over TLS, requiring the given Authorization.
func newTLSMaster(t *testing.T, fm *fakeMaster, authz string) *httptest.Server {
	t.Helper()
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != authz {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.SetBasicAuth(masterUser, masterPass)
		fm.serve(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestProgressBar: on a terminal the bar is redrawn in place below the
// agent and batch lines; plain output has no control characters.
func TestProgressBar(t *testing.T) {
	var bar, plain strings.Builder
	for _, c := range []struct {
		w    *strings.Builder
		mode string
	}{{&bar, "bar"}, {&plain, "plain"}} {
		p := newProgressWriter(c.w, c.mode)
		p.agent(1, 4, "agent-01: done")
		p.line("batch 1/2 finished")
		p.agent(2, 4, "agent-02: done")
		p.done()
	}
	if want := "[1/4] agent-01: done\n[#######-----------------------] 1/4 agents\r\x1b[Kbatch 1/2 finished\n[2/4] agent-02: done\n[###############---------------] 2/4 agents\r\x1b[K"; bar.String() != want {
		t.Errorf("bar output %q\nwant %q", bar.String(), want)
	}
	if strings.ContainsAny(plain.String(), "\r\x1b") || !strings.Contains(plain.String(), "batch 1/2 finished\n") {
		t.Errorf("plain output %q", plain.String())
	}
}

func TestUsageAndVersion(t *testing.T) {
	if code, out, _ := runTool(t, "version"); code != exitOK || strings.TrimSpace(out) == "" {
		t.Errorf("version: %d %q", code, out)
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"status"}, {"status", "--nosuch"}, {"rollout", "--master", "http://m:5050"},
		{"rollout", "--master", "http://m:5050", "--state", "s", "--batch", "0", "--target", "a--1"}, {"status", "--master", "ftp://m"}} {
		if code, _, errs := runTool(t, args...); code != exitUsage || errs == "" {
			t.Errorf("%q: exit %d, %q; want usage (2) and a message", args, code, errs)
		}
	}
}

// TestFakeMasterJSON: the fake master answers mesos-go's JSON codec too,
// as a master does for Content-Type application/json.
func TestFakeMasterJSON(t *testing.T) {
	fm := newFakeMaster(t)
	fm.setAgents([]master.Response_GetAgents_Agent{drainingAgent("S1", "agent-01", "10.0.0.1")})
	cli := httpcli.New(httpcli.Endpoint(fm.url()+"/api/v1"), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeJSON]),
		httpcli.Do(httpcli.With(httpcli.WrapRoundTripper(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripper(func(r *http.Request) (*http.Response, error) {
				r = r.Clone(r.Context())
				r.SetBasicAuth(masterUser, masterPass)
				return rt.RoundTrip(r)
			})
		}))))
	resp, err := httpmaster.NewSender(cli.Send).Send(t.Context(), calls.NonStreaming(calls.GetAgents()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	var r master.Response
	if err := resp.Decode(&r); err != nil {
		t.Fatal(err)
	}
	if got := agentsFrom(r.GetAgents); len(got) != 1 || got[0].State != StateDraining || got[0].IP != "10.0.0.1" {
		t.Errorf("agents %+v", got)
	}
}
