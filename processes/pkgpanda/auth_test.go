package pkgpanda

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/procpanda/procpanda/internal/runtimetest"
	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/libprocess/httpauth"
	"github.com/procpanda/procpanda/libprocess/protobuf"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// Principals of the authentication tests: ops may read and mutate,
// monitor may only read (testACL).
const (
	opsSecret     = "s3cret-ops"
	monitorSecret = "s3cret-monitor"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func testAuthn() libprocess.Authenticator {
	return httpauth.NewBasic(map[string]string{"ops": opsSecret, "monitor": monitorSecret})
}

func testACL(t testing.TB) *ACL {
	t.Helper()
	acl, err := ParseACL([]byte(`{"permissive": false, "read": {"principals": ["ops", "monitor"]}, "mutate": {"principals": ["ops"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	return acl
}

// peer is a libprocess process on a runtime of its own that receives
// PkgpandaResponse messages.
type peer struct {
	upid    libprocess.UPID
	replies chan *pb.PkgpandaResponse
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	rt := runtimetest.Start(t)
	pr := &peer{replies: make(chan *pb.PkgpandaResponse, 64)}
	lp := libprocess.NewProcess("client")
	if err := protobuf.Install(lp, func() *pb.PkgpandaResponse { return new(pb.PkgpandaResponse) },
		func(_ libprocess.UPID, r *pb.PkgpandaResponse) { pr.replies <- r }); err != nil {
		t.Fatal(err)
	}
	var err error
	if pr.upid, err = rt.Spawn(lp); err != nil {
		t.Fatal(err)
	}
	return pr
}

// next waits for the next reply.
func (pr *peer) next(t *testing.T) *pb.PkgpandaResponse {
	t.Helper()
	select {
	case r := <-pr.replies:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no PkgpandaResponse arrived")
		return nil
	}
}

// sendRaw sends a PkgpandaCall message the way a libprocess peer does: a
// POST of the serialized call with Libprocess-From, on a socket of its
// own; it expects 202.
func (e *env) sendRaw(from string, body []byte) {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.rt.Addr().HostPort())
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	head := fmt.Sprintf("POST /%s/mesos.internal.PkgpandaCall HTTP/1.1\r\nHost: %s\r\nLibprocess-From: %s\r\n"+
		"Content-Type: application/x-protobuf\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", processID, e.rt.Addr().HostPort(), from, len(body))
	if _, err := conn.Write(append([]byte(head), body...)); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("reading the answer to a message: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("message answered %d, want 202", resp.StatusCode)
	}
}

func (e *env) sendCall(from string, call *pb.PkgpandaCall) {
	e.t.Helper()
	b, err := proto.Marshal(call)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sendRaw(from, b)
}

func (e *env) metric(name string) float64 {
	return e.rt.Snapshot()[name]
}

func (e *env) active() []string {
	e.t.Helper()
	r := e.do("GET", "/active/", nil, "Authorization", basic("ops", opsSecret))
	expectStatus(e.t, "GET /active/", r, 200)
	var ids []string
	if err := jsonUnmarshal(r.body, &ids); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// TestMessagesAreAuthenticated is the regression test of messages
// bypassing authentication: with an authenticator, a PkgpandaCall without
// valid credentials, or from a principal the ACL does not let mutate, runs
// nothing, whatever its sender.
func TestMessagesAreAuthenticated(t *testing.T) {
	e := newEnv(t, envOpt{authn: testAuthn(), acl: testACL(t)})
	pr := newPeer(t)
	_, active := fixtureIDs(t, e.fixture)
	if len(active) < 2 {
		t.Fatalf("the fixture needs two active packages, has %v", active)
	}
	narrowed := active[:1]

	// A sender that does not exist, no credentials: refused, nothing runs.
	e.sendCall("ghost@127.0.0.1:1", &pb.PkgpandaCall{Type: pb.PkgpandaCall_ACTIVATE, PackageIds: narrowed})
	// The same from a peer that can hear the answer.
	e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_ACTIVATE, RequestId: "anon", PackageIds: narrowed})
	if r := pr.next(t); r.RequestId != "anon" || r.Status != http.StatusUnauthorized || r.Error == "" {
		t.Fatalf("unauthenticated ACTIVATE: %v, want 401", r)
	}
	// Both were refused on the process' goroutine, in order.
	if n := e.metric("pkgpanda/auth/unauthenticated"); n != 2 {
		t.Fatalf("pkgpanda/auth/unauthenticated = %v, want 2", n)
	}
	// Bad password.
	e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_REMOVE, RequestId: "bad", PackageIds: narrowed,
		Authorization: basic("ops", "wrong")})
	if r := pr.next(t); r.Status != http.StatusUnauthorized {
		t.Fatalf("bad password: %v, want 401", r)
	}
	// A principal that may only read.
	e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_ACTIVATE, RequestId: "mon", PackageIds: narrowed,
		Authorization: basic("monitor", monitorSecret)})
	if r := pr.next(t); r.Status != http.StatusForbidden {
		t.Fatalf("monitor ACTIVATE: %v, want 403", r)
	}
	e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_ACTIVE, RequestId: "mon-read",
		Authorization: basic("monitor", monitorSecret)})
	if r := pr.next(t); r.Status != http.StatusOK || !slices.Equal(r.PackageIds, active) {
		t.Fatalf("monitor ACTIVE: %v, want 200 %v", r, active)
	}
	// An unauthenticated ADD writes nothing.
	e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_ADD, RequestId: "add", PackageIds: []string{"new--1"},
		Tarball: tarball(t)})
	if r := pr.next(t); r.Status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated ADD: %v, want 401", r)
	}
	if n := e.runsStarted("activate") + e.runsStarted("remove") + e.runsStarted("add"); n != 0 {
		t.Fatalf("%d mutations ran for refused calls", n)
	}
	if got := e.active(); !slices.Equal(got, active) {
		t.Fatalf("active set changed by refused calls: %v, want %v", got, active)
	}
	// ops may.
	call := &pb.PkgpandaCall{Type: pb.PkgpandaCall_ACTIVATE, RequestId: "ops", PackageIds: narrowed, Authorization: basic("ops", opsSecret)}
	e.sendCall(pr.upid.String(), call)
	r := pr.next(t)
	if r.Status != http.StatusNoContent {
		t.Fatalf("ops ACTIVATE: %v, want 204", r)
	}
	if got := e.active(); !slices.Equal(got, narrowed) {
		t.Fatalf("active after ops ACTIVATE: %v, want %v", got, narrowed)
	}
	// The credential is never echoed back.
	b, _ := proto.Marshal(r)
	if strings.Contains(string(b), opsSecret) || strings.Contains(string(b), basic("ops", opsSecret)) {
		t.Fatal("the response carries the credential")
	}
}

// TestMessagesWithoutSenderDialNothing: a call whose Libprocess-From does
// not parse (delivered with the empty sender) or whose body does not decode
// is dropped and counted, and nothing is sent for it.
func TestMessagesWithoutSenderDialNothing(t *testing.T) {
	e := newEnv(t, envOpt{})
	pr := newPeer(t)
	e.sendCall("not a upid", &pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST, RequestId: "x"})
	e.sendRaw(pr.upid.String(), []byte{0xff, 0xff, 0xff})
	e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST, RequestId: "after"})
	if r := pr.next(t); r.RequestId != "after" {
		t.Fatalf("first reply %v, want the one to \"after\"", r)
	}
	if n := e.metric("pkgpanda/messages/no_sender"); n != 1 {
		t.Fatalf("no_sender = %v, want 1", n)
	}
	if n := e.metric("pkgpanda/messages/undecodable"); n != 1 {
		t.Fatalf("undecodable = %v, want 1", n)
	}
}

// TestRefusedRepliesAreBounded: replies to refused calls come out of a
// token bucket; a flood of refused calls gets at most its burst of
// answers, the rest are dropped and counted.
func TestRefusedRepliesAreBounded(t *testing.T) {
	e := newEnv(t, envOpt{authn: testAuthn(), beforeStart: func(e *env) {
		e.p.replies = newReplyBudget(0, 2) // no refill: exactly the burst
	}})
	pr := newPeer(t)
	for i := range 5 {
		e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST, RequestId: fmt.Sprint("anon-", i)})
	}
	e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST, RequestId: "ops", Authorization: basic("ops", opsSecret)})
	refused := 0
	for {
		r := pr.next(t)
		if r.RequestId == "ops" {
			break
		}
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("reply %v, want 401", r)
		}
		refused++
	}
	if refused != 2 {
		t.Fatalf("%d replies to refused calls, want the burst of 2", refused)
	}
	if n := e.metric("pkgpanda/messages/replies_dropped"); n != 3 {
		t.Fatalf("replies_dropped = %v, want 3", n)
	}
}

func TestAPIv1Authentication(t *testing.T) {
	e := newEnv(t, envOpt{authn: testAuthn(), acl: testACL(t)})
	_, active := fixtureIDs(t, e.fixture)
	list := []byte(`{"type":"LIST","request_id":"l"}`)

	r := e.do("POST", "/api/v1", list, "Content-Type", pb.MediaJSON)
	expectStatus(t, "api/v1 without credentials", r, 401)
	if c := r.header.Get("WWW-Authenticate"); c != `Basic realm="pkgpanda"` {
		t.Fatalf("challenge %q", c)
	}
	r = e.do("POST", "/api/v1", list, "Content-Type", pb.MediaJSON, "Authorization", basic("monitor", monitorSecret))
	expectStatus(t, "monitor LIST", r, 200)

	activate := []byte(`{"type":"ACTIVATE","request_id":"a","package_ids":` + jsonList(active[:1]) + `}`)
	r = e.do("POST", "/api/v1", activate, "Content-Type", pb.MediaJSON, "Authorization", basic("monitor", monitorSecret))
	expectJSON(t, "monitor ACTIVATE", r, 403, `{"type":"ACTIVATE","request_id":"a","status":403,"error":"Forbidden: principal 'monitor' may not run active.put"}`)

	// The body's authorization field cannot switch principals.
	withField := []byte(`{"type":"ACTIVATE","request_id":"a","authorization":"` + basic("ops", opsSecret) + `","package_ids":` + jsonList(active[:1]) + `}`)
	r = e.do("POST", "/api/v1", withField, "Content-Type", pb.MediaJSON, "Authorization", basic("monitor", monitorSecret))
	expectStatus(t, "monitor header, ops field", r, 400)
	// Nor stand in for the header.
	r = e.do("POST", "/api/v1", withField, "Content-Type", pb.MediaJSON)
	expectStatus(t, "field without header", r, 401)
	if n := e.runsStarted("activate"); n != 0 {
		t.Fatalf("%d activations ran for refused calls", n)
	}
	// The same credential in both places is fine.
	r = e.do("POST", "/api/v1", withField, "Content-Type", pb.MediaJSON, "Authorization", basic("ops", opsSecret))
	expectJSON(t, "ops ACTIVATE", r, 200, `{"type":"ACTIVATE","request_id":"a","status":204}`)

	// A protobuf ADD from a reader is refused before its tarball is kept.
	b, _ := proto.Marshal(&pb.PkgpandaCall{Type: pb.PkgpandaCall_ADD, PackageIds: []string{"new--1"}, Tarball: tarballWith(t, 2<<20)})
	r = e.do("POST", "/api/v1", b, "Content-Type", pb.MediaProtobuf, "Authorization", basic("monitor", monitorSecret))
	expectStatus(t, "monitor protobuf ADD", r, 403)
	if n := e.runsStarted("add"); n != 0 {
		t.Fatal("add ran for a refused call")
	}
	e.expectNoUploads()
}

// expectNoUploads checks that the upload directory holds no upload.
func (e *env) expectNoUploads() {
	e.t.Helper()
	ents, err := os.ReadDir(e.p.uploads.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ent := range ents {
		if ent.Name() != ".lock" {
			e.t.Fatalf("upload directory holds %s", ent.Name())
		}
	}
}

func TestHTTPRoutesAuthorization(t *testing.T) {
	e := newEnv(t, envOpt{authn: testAuthn(), acl: testACL(t)})
	_, active := fixtureIDs(t, e.fixture)
	r := e.do("GET", "/repository/", nil)
	expectStatus(t, "anonymous GET", r, 401)
	if c := r.header.Get("WWW-Authenticate"); c != `Basic realm="pkgpanda"` {
		t.Fatalf("challenge %q", c)
	}
	expectStatus(t, "bad password", e.do("GET", "/repository/", nil, "Authorization", basic("monitor", "x")), 401)
	expectStatus(t, "monitor GET", e.do("GET", "/repository/", nil, "Authorization", basic("monitor", monitorSecret)), 200)
	expectStatus(t, "monitor activate", e.do("POST", "/activate?id="+active[0], nil, "Authorization", basic("monitor", monitorSecret)), 403)
	expectStatus(t, "monitor add", e.do("POST", "/add?id=new--1", tarball(t), "Authorization", basic("monitor", monitorSecret)), 403)
	e.expectNoUploads()
	if n := e.runsStarted("activate") + e.runsStarted("add"); n != 0 {
		t.Fatal("a mutation ran for a refused request")
	}
	expectStatus(t, "ops activate", e.do("POST", "/activate?id="+active[0], nil, "Authorization", basic("ops", opsSecret)), 204)
	if n := e.metric("pkgpanda/auth/forbidden"); n != 2 {
		t.Fatalf("forbidden = %v, want 2", n)
	}
}

func TestOpenReads(t *testing.T) {
	e := newEnv(t, envOpt{authn: testAuthn(), openReads: true})
	_, active := fixtureIDs(t, e.fixture)
	expectStatus(t, "anonymous GET", e.do("GET", "/repository/", nil), 200)
	expectStatus(t, "anonymous api/v1 LIST", e.do("POST", "/api/v1", []byte(`{"type":"LIST"}`), "Content-Type", pb.MediaJSON), 200)
	expectStatus(t, "bad credentials GET", e.do("GET", "/repository/", nil, "Authorization", basic("ops", "x")), 401)
	r := e.do("POST", "/activate?id="+active[0], nil)
	expectStatus(t, "anonymous activate", r, 401)
	if r.header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without a challenge")
	}
	r = e.do("POST", "/api/v1", []byte(`{"type":"SWAP","package_ids":["mesos--0.23.0"]}`), "Content-Type", pb.MediaJSON)
	expectStatus(t, "anonymous api/v1 SWAP", r, 401)
	if n := e.runsStarted("activate") + e.runsStarted("swap"); n != 0 {
		t.Fatal("a mutation ran for an anonymous caller")
	}
}

func TestParseACL(t *testing.T) {
	for _, c := range []struct {
		in                 string
		ok                 bool
		opsRead, opsMutate bool
		monRead, monMutate bool
	}{
		{`{"read": {"principals": ["ops", "monitor"]}, "mutate": {"principals": ["ops"]}}`, true, true, true, true, false},
		{`{"permissive": true, "mutate": {"principals": ["ops"]}}`, true, true, true, true, false},
		{`{"mutate": {"type": "ANY"}}`, true, false, true, false, true},
		{`{"read": {"type": "NONE"}, "mutate": {"principals": ["ops"]}}`, true, false, true, false, false},
		{`{}`, true, false, false, false, false},
		{`{"read": {"principals": []}}`, false, false, false, false, false},
		{`{"read": {"principals": [""]}}`, false, false, false, false, false},
		{`{"read": {"type": "ANY", "principals": ["ops"]}}`, false, false, false, false, false},
		{`{"read": {"type": "SOME"}}`, false, false, false, false, false},
		{`{"reads": {"type": "ANY"}}`, false, false, false, false, false},
		{`{"read": {"type": "ANY", "extra": 1}}`, false, false, false, false, false},
		{`{} {}`, false, false, false, false, false},
		{`[]`, false, false, false, false, false},
	} {
		acl, err := ParseACL([]byte(c.in))
		if (err == nil) != c.ok {
			t.Errorf("ParseACL(%s): err %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if err != nil {
			continue
		}
		got := [4]bool{acl.Allows("ops", false), acl.Allows("ops", true), acl.Allows("monitor", false), acl.Allows("monitor", true)}
		if want := [4]bool{c.opsRead, c.opsMutate, c.monRead, c.monMutate}; got != want {
			t.Errorf("ParseACL(%s): ops read/mutate, monitor read/mutate = %v, want %v", c.in, got, want)
		}
	}
}

// TestOperationTable: every operation has a name of its own and an actor
// that exists, so dispatch can run (and authorize) any of them; every
// route's actor serves at least one operation.
func TestOperationTable(t *testing.T) {
	p, err := New(Config{Tool: cliTool()})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	served := map[string]bool{}
	for op, spec := range p.ops {
		if spec.name == "" || names[spec.name] {
			t.Errorf("operation %d: name %q missing or repeated", op, spec.name)
		}
		names[spec.name] = true
		if p.actors[spec.actor] == nil {
			t.Errorf("operation %s: no actor %q", spec.name, spec.actor)
		}
		served[spec.actor] = true
		if spec.mutates && !spec.needsInstall {
			t.Errorf("mutation %s runs on an interrupted install", spec.name)
		}
	}
	for _, route := range RouteNames() {
		if !served[route] {
			t.Errorf("route %s serves no operation", route)
		}
	}
}

// countingAuthn counts the credentials it checks.
type countingAuthn struct {
	libprocess.Authenticator
	n atomic.Int64
}

func (a *countingAuthn) Authenticate(req *libprocess.Request) (string, error) {
	a.n.Add(1)
	return a.Authenticator.Authenticate(req)
}

// Every HTTP request's credentials are checked once, however many
// decisions (the route's guard, the operation's admission, an upload's
// early refusal) use them.
func TestHTTPRequestsAuthenticateOnce(t *testing.T) {
	authn := &countingAuthn{Authenticator: testAuthn()}
	e := newEnv(t, envOpt{authn: authn, acl: testACL(t)})
	for _, c := range []struct {
		method, path string
		body         []byte
		header       []string
		status       int
	}{
		{"GET", "/repository/", nil, nil, 200},
		{"GET", "/list.json", nil, nil, 200},
		{"POST", "/api/v1", []byte(`{"type":"LIST"}`), []string{"Content-Type", pb.MediaJSON}, 200},
		{"PUT", "/active/", []byte(`[1]`), []string{"Content-Type", "application/json"}, 409},
		{"POST", "/add?id=newpkg--1", tarball(t), nil, 200},
	} {
		before := authn.n.Load()
		r := e.do(c.method, c.path, c.body, append(c.header, "Authorization", basic("ops", opsSecret))...)
		expectStatus(t, c.method+" "+c.path, r, c.status)
		if got := authn.n.Load() - before; got != 1 {
			t.Errorf("%s %s checked its credentials %d times, want 1", c.method, c.path, got)
		}
	}
}
