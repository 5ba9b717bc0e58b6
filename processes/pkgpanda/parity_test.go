package pkgpanda

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// parityCase is one call made both ways: over the operation's HTTP route
// and as an api/v1 PkgpandaCall.
type parityCase struct {
	op   opID
	what string
	// http returns method, path (below /pkgpanda), body and headers.
	http func(e *env) (method, path string, body []byte, header []string)
	// call returns the api/v1 JSON call.
	call func(e *env) string
}

func remoteOf(e *env) string { return "file://" + filepath.Join(e.dir, "remote_repo") + "/" }

func get(path string) func(*env) (string, string, []byte, []string) {
	return func(*env) (string, string, []byte, []string) { return "GET", path, nil, nil }
}

func jsonReq(method, path, body string) func(*env) (string, string, []byte, []string) {
	return func(*env) (string, string, []byte, []string) {
		return method, path, []byte(body), []string{"Content-Type", "application/json"}
	}
}

func callOf(s string) func(*env) string { return func(*env) string { return s } }

func fetchCase(what, id string, url func(*env) string) parityCase {
	return parityCase{opRepoFetch, what,
		func(e *env) (string, string, []byte, []string) {
			b, _ := json.Marshal(map[string]string{"repository_url": url(e)})
			return "POST", "/repository/" + id, b, []string{"Content-Type", "application/json"}
		},
		func(e *env) string {
			b, _ := json.Marshal(map[string]any{"type": "FETCH", "package_ids": []string{id}, "repository_url": url(e)})
			return string(b)
		}}
}

func addCase(what, id string) parityCase {
	return parityCase{opAdd, what,
		func(e *env) (string, string, []byte, []string) { return "POST", "/add?id=" + id, tarball(e.t), nil },
		func(e *env) string {
			b, _ := json.Marshal(map[string]any{"type": "ADD", "package_ids": []string{id}, "tarball": base64.StdEncoding.EncodeToString(tarball(e.t))})
			return string(b)
		}}
}

// parityCases run in this order on two copies of the fixture, so the
// mutations leave both in the same state.
func parityCases() []parityCase {
	return []parityCase{
		{opRepoList, "list", get("/repository/"), callOf(`{"type":"LIST"}`)},
		{opActiveList, "list", get("/active/"), callOf(`{"type":"ACTIVE"}`)},
		{opRepoGet, "present", get("/repository/mesos--0.22.0"), callOf(`{"type":"GET_PACKAGE","package_ids":["mesos--0.22.0"]}`)},
		{opRepoGet, "absent", get("/repository/absent--1"), callOf(`{"type":"GET_PACKAGE","package_ids":["absent--1"]}`)},
		{opRepoGet, "invalid", get("/repository/invalid-package"), callOf(`{"type":"GET_PACKAGE","package_ids":["invalid-package"]}`)},
		{opActiveGet, "active", get("/active/mesos--0.22.0"), callOf(`{"type":"GET_ACTIVE_PACKAGE","package_ids":["mesos--0.22.0"]}`)},
		{opActiveGet, "inactive", get("/active/mesos--0.23.0"), callOf(`{"type":"GET_ACTIVE_PACKAGE","package_ids":["mesos--0.23.0"]}`)},
		{opActiveGet, "absent", get("/active/absent--1"), callOf(`{"type":"GET_ACTIVE_PACKAGE","package_ids":["absent--1"]}`)},
		{opActiveGet, "invalid", get("/active/a--b--c"), callOf(`{"type":"GET_ACTIVE_PACKAGE","package_ids":["a--b--c"]}`)},
		{opCheckList, "list", get("/check?list=true"), callOf(`{"type":"CHECK","list_checks":true}`)},
		{opCheck, "run", get("/check"), callOf(`{"type":"CHECK"}`)},
		fetchCase("invalid id", "invalid-package", remoteOf),
		fetchCase("empty url", "mesos--7.7.7", func(*env) string { return "" }),
		fetchCase("fetch fails", "mesos--7.7.7", remoteOf),
		fetchCase("bad scheme", "mesos--7.7.7", func(*env) string { return "gopher://x/" }),
		{opRepoDelete, "active", jsonReq("DELETE", "/repository/mesos--0.22.0", ""), callOf(`{"type":"REMOVE","package_ids":["mesos--0.22.0"]}`)},
		{opRepoDelete, "invalid", jsonReq("DELETE", "/repository/invalid-package", ""), callOf(`{"type":"REMOVE","package_ids":["invalid-package"]}`)},
		{opRepoDelete, "absent", jsonReq("DELETE", "/repository/absent--1", ""), callOf(`{"type":"REMOVE","package_ids":["absent--1"]}`)},
		{opActivePut, "empty", jsonReq("PUT", "/active/", `[]`), callOf(`{"type":"ACTIVATE"}`)},
		{opActivePut, "missing", jsonReq("PUT", "/active/", `["zzz--1","mesos--0.23.0","bad id"]`), callOf(`{"type":"ACTIVATE","package_ids":["zzz--1","mesos--0.23.0","bad id"]}`)},
		{opActivePut, "refused", jsonReq("PUT", "/active/", `["mesos--0.22.0","mesos--0.23.0"]`), callOf(`{"type":"ACTIVATE","package_ids":["mesos--0.22.0","mesos--0.23.0"]}`)},
		{opActivePut, "activates", jsonReq("PUT", "/active/", `["mesos--0.23.0","mesos-config--justmesos"]`), callOf(`{"type":"ACTIVATE","package_ids":["mesos--0.23.0","mesos-config--justmesos"]}`)},
		{opRepoDelete, "removes", jsonReq("DELETE", "/repository/mesos--0.22.0", ""), callOf(`{"type":"REMOVE","package_ids":["mesos--0.22.0"]}`)},
		fetchCase("fetches", "mesos--0.22.0", remoteOf),
		{opSwap, "invalid", jsonReq("POST", "/swap?id=bad", ""), callOf(`{"type":"SWAP","package_ids":["bad"]}`)},
		{opSwap, "swaps", jsonReq("POST", "/swap?id=mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8", ""),
			callOf(`{"type":"SWAP","package_ids":["mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8"]}`)},
		addCase("invalid id", "bad"),
		addCase("adds", "small--1"),
	}
}

// TestAPIv1StatusIsHTTPStatus: for every operation an api/v1 call can
// name, the PkgpandaResponse's status, error and missing packages equal
// the HTTP route's answer to the same call, and so does the
// PkgpandaResponse message answering the same call sent as a message.
func TestAPIv1StatusIsHTTPStatus(t *testing.T) {
	h := newEnv(t, envOpt{})
	v := newEnv(t, envOpt{})
	m := newEnv(t, envOpt{})
	pr := newPeer(t)
	cases := parityCases()
	for op, spec := range h.p.ops {
		if spec.hasCall && !slices.ContainsFunc(cases, func(c parityCase) bool { return c.op == opID(op) }) {
			t.Errorf("operation %s has an api/v1 call but no parity case", spec.name)
		}
	}
	type answer struct {
		Status  int      `json:"status"`
		Error   string   `json:"error"`
		Missing []string `json:"missing_packages"`
	}
	for _, c := range cases {
		name := h.p.ops[c.op].name + " " + c.what
		method, path, body, header := c.http(h)
		hr := h.do(method, path, body, header...)
		got := answer{Status: hr.status}
		if hr.status >= 400 {
			if err := json.Unmarshal(hr.body, &got); err != nil {
				t.Fatalf("%s: HTTP error body %q: %v", name, hr.body, err)
			}
			got.Status = hr.status
		}
		vr := v.do("POST", "/api/v1", []byte(c.call(v)), "Content-Type", pb.MediaJSON)
		var want answer
		if err := json.Unmarshal(vr.body, &want); err != nil {
			t.Fatalf("%s: api/v1 body %q: %v", name, vr.body, err)
		}
		if got.Status != want.Status || got.Error != want.Error || !slices.Equal(got.Missing, want.Missing) {
			t.Errorf("%s: HTTP %s %s answered %+v, api/v1 %+v", name, method, path, got, want)
		}
		call, err := decodeCall(pb.MediaJSON, []byte(c.call(m)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		call.RequestId = name
		m.sendCall(pr.upid.String(), call)
		mr := pr.next(t)
		if mr.RequestId != name || int(mr.Status) != want.Status || mr.Error != want.Error || !slices.Equal(mr.MissingPackages, want.Missing) {
			t.Errorf("%s: message answered %d %q %v (request %q), api/v1 %+v", name, mr.Status, mr.Error, mr.MissingPackages, mr.RequestId, want)
		}
		t.Logf("%s: %d %q %v", name, got.Status, got.Error, got.Missing)
		if want.Status != 204 && vr.status != want.Status {
			t.Errorf("%s: api/v1 HTTP status %d, PkgpandaResponse status %d", name, vr.status, want.Status)
		}
	}
}
