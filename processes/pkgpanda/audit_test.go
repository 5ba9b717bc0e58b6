package pkgpanda

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/procpanda/procpanda/internal/runtimetest"
	"github.com/procpanda/procpanda/libprocess/httpauth"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct{ runtimetest.LogBuffer }

// audits returns the audit lines logged so far.
func (l *lockedBuffer) audits(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["log"] == "audit" {
			out = append(out, m)
		}
	}
	return out
}

// TestAuditLogOneLinePerMutation checks the audit line of a mutation that
// ran, one that failed (404), one refused by the ACL before it was
// queued, and that reads are not audited; and the route timer and
// exit-status counters the runs leave.
func TestAuditLogOneLinePerMutation(t *testing.T) {
	logs := &lockedBuffer{}
	acl, err := ParseACL([]byte(`{"permissive": false, "read": {"type": "ANY"}, "mutate": {"principals": ["ops"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpt{log: logs, acl: acl, authn: httpauth.NewBasic(map[string]string{"ops": "pw", "ro": "pw"})})
	_, active := fixtureIDs(t, e.fixture)
	auth := []string{"Authorization", "Basic b3BzOnB3"}   // ops:pw
	roAuth := []string{"Authorization", "Basic cm86cHc="} // ro:pw

	expectStatus(t, "GET /repository/", e.do("GET", "/repository/", nil, auth...), 200)
	expectStatus(t, "GET /active/", e.do("GET", "/active/", nil, auth...), 200)
	body, _ := json.Marshal(active)
	expectStatus(t, "PUT /active/ (same set)", e.doJSON("PUT", "/active/", body, auth...), 204)
	expectStatus(t, "DELETE absent", e.do("DELETE", "/repository/absent--1", nil, auth...), 404)
	expectStatus(t, "POST /add", e.do("POST", "/add?id=audited--1", tarball(t), auth...), 200)
	expectStatus(t, "PUT /active/ by a reader", e.doJSON("PUT", "/active/", body, roAuth...), 403)

	got := logs.audits(t)
	if len(got) != 4 {
		t.Fatalf("%d audit lines, want 4 (reads are not audited): %v", len(got), got)
	}
	want := []struct {
		op, principal, outcome string
		status                 float64
		ids                    []string
	}{
		{"active.put", "ops", "ok", 204, active},
		{"repository.delete", "ops", "failed", 404, nil},
		{"add", "ops", "ok", 200, []string{"audited--1"}},
		{"active.put", "ro", "refused", 403, nil},
	}
	for i, w := range want {
		g := got[i]
		var ids []string
		for _, v := range asSlice(g["ids"]) {
			ids = append(ids, v.(string))
		}
		slices.Sort(ids)
		wantIDs := slices.Clone(w.ids)
		slices.Sort(wantIDs)
		if g["level"] != "info" || g["operation"] != w.op || g["principal"] != w.principal || g["outcome"] != w.outcome || g["status"] != w.status || !slices.Equal(ids, wantIDs) {
			t.Errorf("audit line %d = %v, want %+v", i, g, w)
		}
		if d, ok := g["duration_ms"].(float64); !ok || d < 0 {
			t.Errorf("audit line %d duration_ms %v", i, g["duration_ms"])
		}
	}
	if codes := asSlice(got[0]["exit_codes"]); len(codes) == 0 || codes[len(codes)-1] != float64(0) {
		t.Errorf("activation exit_codes %v, want runs ending with 0", codes)
	}

	snap := e.rt.Snapshot()
	// A job's time is recorded after its answer: the reads that came
	// before the mutations on the same actors are in.
	for _, k := range []string{"pkgpanda/repository/duration_ms", "pkgpanda/active/duration_ms"} {
		if v, ok := snap[k]; !ok || v <= 0 {
			t.Errorf("%s = %v (%v), want a duration", k, v, ok)
		}
	}
	if snap["pkgpanda/active/exit_status/0"] < 2 {
		t.Errorf("pkgpanda/active/exit_status/0 = %v, want the read's and the activation's runs", snap["pkgpanda/active/exit_status/0"])
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
