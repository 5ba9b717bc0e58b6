package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseTarget: any target list or file is parsed or refused, and a
// parsed target holds valid ids, one per name, sorted.
func FuzzParseTarget(f *testing.F) {
	f.Add("mesos--1.12.0,marathon--1.11.0", "# c\nmesos-config--demo\n")
	f.Add("", "a--1 b--2\n")
	f.Add("a--1,a--2", "")
	f.Fuzz(func(t *testing.T, list, file string) {
		p := filepath.Join(t.TempDir(), "target")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		tg, err := parseTarget(list, p, false)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for i, id := range tg.IDs {
			n := nameOf(id)
			if n == "" || names[n] || (i > 0 && tg.IDs[i-1] >= id) {
				t.Fatalf("target %q: bad id %q", tg.IDs, id)
			}
			names[n] = true
		}
	})
}

// FuzzReadState: a state file is decoded or refused, never half-read.
func FuzzReadState(f *testing.F) {
	f.Add([]byte(`{"version":1,"target":{"ids":["mesos--1.12.0"]},"batches":[["S1"]],"agents":{"S1":{"status":"done"}}}`))
	f.Add([]byte(`{"version":2,"agents":{}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := readState(bytes.NewReader(b), "state")
		if err == nil && len(b) > 0 && (st == nil || st.Version != stateVersion || st.Agents == nil) {
			t.Fatalf("accepted %q as %+v", b, st)
		}
	})
}

// FuzzAgentAddress: a PID or a redirect Location never yields an address
// with a port or path smuggled in.
func FuzzAgentAddress(f *testing.F) {
	f.Add("slave(1)@10.0.0.5:5051", "//10.0.0.2:5050/api/v1")
	f.Add("@:1", "http://x")
	f.Fuzz(func(t *testing.T, pid, location string) {
		ip := agentIP(pid, "host")
		if ip != "host" && bytes.ContainsAny([]byte(ip), "/@") {
			t.Fatalf("agentIP(%q) = %q", pid, ip)
		}
		if u, err := follow(location, "http://m:5050/api/v1"); err == nil && !bytes.HasSuffix([]byte(u), []byte("/api/v1")) {
			t.Fatalf("follow(%q) = %q", location, u)
		}
	})
}
