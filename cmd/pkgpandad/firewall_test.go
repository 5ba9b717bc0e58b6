package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --firewall-rules disables /pkgpanda/add and the PkgpandaCall message
// API: both answer 403 on the wire, other routes and messages still work.
func TestFirewallRulesDisableEndpoints(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "firewall.json")
	if err := os.WriteFile(rules, []byte(`{"disabled_endpoints":{"paths":["/pkgpanda/add","/pkgpanda/mesos.internal.PkgpandaCall"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--firewall-rules", rules)
	resp, err := http.Post(d.base+"/pkgpanda/add", "application/octet-stream", strings.NewReader("not a tarball"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || string(body) != "Endpoint '/pkgpanda/add' is disabled" {
		t.Fatalf("POST /pkgpanda/add: %d %q, want 403", resp.StatusCode, body)
	}
	resp, err = http.Get(d.base + "/pkgpanda/repository/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("enabled GET /pkgpanda/repository/: %d", resp.StatusCode)
	}

	c, err := net.Dial("tcp", d.upid.HostPort())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	msg := func(name string) string {
		if _, err := io.WriteString(c, "POST /pkgpanda/"+name+" HTTP/1.1\r\nUser-Agent: libprocess/client@127.0.0.1:1\r\nLibprocess-From: client@127.0.0.1:1\r\nConnection: Keep-Alive\r\nHost: \r\nContent-Length: 0\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Status
	}
	if got := msg("mesos.internal.PkgpandaCall"); got != "403 Forbidden" {
		t.Fatalf("PkgpandaCall message: %q, want 403 Forbidden", got)
	}
	// Another message name still reaches the process (no handler: 202).
	if got := msg("mesos.internal.Other"); got != "202 Accepted" {
		t.Fatalf("other message: %q, want 202 Accepted", got)
	}

	resp, err = http.Get(d.base + "/metrics/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	var snap map[string]float64
	err = json.NewDecoder(resp.Body).Decode(&snap)
	resp.Body.Close()
	if err != nil || snap["libprocess/firewall_denied"] != 2 {
		t.Fatalf("libprocess/firewall_denied = %v (%v), want 2", snap["libprocess/firewall_denied"], err)
	}
}

func TestFirewallRulesParsing(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(file, []byte(`{"disabled_endpoints":{"paths":["/a/b"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{`{"disabled_endpoints":{"paths":["/a/b"]}}`, " " + file, "file://" + file} {
		paths, err := firewallRules(v)
		if err != nil || len(paths) != 1 || paths[0] != "/a/b" {
			t.Errorf("%q: %q %v", v, paths, err)
		}
	}
	if paths, err := firewallRules(`{}`); err != nil || paths != nil {
		t.Errorf("empty rules: %q %v", paths, err)
	}
	for _, bad := range [][]string{
		{"--firewall-rules", `{"disabled_endpoint":{"paths":["/pkgpanda/add"]}}`},
		{"--firewall-rules", `{"disabled_endpoints":{"path":["/pkgpanda/add"]}}`},
		{"--firewall-rules", `{"disabled_endpoints":{"paths":["pkgpanda/add"]}}`},
		{"--firewall-rules", `{"disabled_endpoints":{"paths":["/pkgpanda/add\r\n"]}}`},
		{"--firewall-rules", `{"disabled_endpoints":{"paths":["/pkgpanda/add"]}} {}`},
		{"--firewall-rules", `{"disabled_endpoints":`},
		{"--firewall-rules", filepath.Join(t.TempDir(), "missing.json")},
	} {
		var out, errb strings.Builder
		args := append([]string{"--pkgpanda", "/bin/true"}, bad...)
		if code := run(args, func(string) (string, bool) { return "", false }, &out, &errb, nil); code != 2 || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing", bad, code, out.String())
		}
	}
}

// FuzzFirewallRules feeds arbitrary inline JSON to the --firewall-rules
// parser: it never panics, and what it accepts round-trips through the
// Mesos shape unchanged.
func FuzzFirewallRules(f *testing.F) {
	for _, s := range []string{
		`{"disabled_endpoints":{"paths":["/pkgpanda/add"]}}`,
		`{"disabled_endpoints":{"paths":[]}}`,
		`{"disabled_endpoints":null}`,
		`{}`,
		`{"disabled_endpoint":{}}`,
		`{"disabled_endpoints":{"paths":["/a","/b"]}} x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		v := "{" + strings.TrimPrefix(body, "{")
		paths, err := firewallRules(v)
		if err != nil {
			return
		}
		b, err := json.Marshal(map[string]any{"disabled_endpoints": map[string][]string{"paths": paths}})
		if err != nil {
			t.Fatal(err)
		}
		again, err := firewallRules(string(b))
		if err != nil || strings.Join(again, "\x00") != strings.Join(paths, "\x00") {
			t.Fatalf("%q parsed to %q, which round-trips to %q (%v)", v, paths, again, err)
		}
	})
}
