package pkgpanda

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/mesos/mesos-go/api/v0/messenger"
	"github.com/mesos/mesos-go/api/v0/upid"
	"github.com/procpanda/procpanda/conformance"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

func TestAPIv1JSONAndProtobuf(t *testing.T) {
	e := newEnv(t, envOpt{})
	repo, active := fixtureIDs(t, e.fixture)

	// JSON in, JSON out (no Accept).
	r := e.do("POST", "/api/v1", []byte(`{"type":"LIST","request_id":"req-1"}`), "Content-Type", pb.MediaJSON)
	expectJSON(t, "api/v1 JSON LIST", r, 200,
		`{"type":"LIST","request_id":"req-1","status":200,"package_ids":`+jsonList(repo)+`}`)

	// JSON failure: the status is the operation's, the body a response
	// carrying the error.
	r = e.do("POST", "/api/v1", []byte(`{"type":"GET_ACTIVE_PACKAGE","request_id":"req-2","package_ids":["mesos--0.23.0"]}`),
		"Content-Type", "application/json; charset=utf-8")
	expectStatus(t, "api/v1 JSON GET_ACTIVE_PACKAGE inactive", r, 404)

	// Protobuf in, protobuf out.
	call := &pb.PkgpandaCall{Type: pb.PkgpandaCall_ACTIVE, RequestId: "req-3"}
	body, err := proto.Marshal(call)
	if err != nil {
		t.Fatal(err)
	}
	r = e.do("POST", "/api/v1", body, "Content-Type", pb.MediaProtobuf, "Accept", pb.MediaProtobuf)
	if r.status != 200 || r.header.Get("Content-Type") != pb.MediaProtobuf {
		t.Fatalf("api/v1 protobuf: %d %v", r.status, r.header)
	}
	var resp pb.PkgpandaResponse
	if err := proto.Unmarshal(r.body, &resp); err != nil {
		t.Fatalf("decoding the protobuf response: %v", err)
	}
	if resp.RequestId != "req-3" || resp.Type != pb.PkgpandaCall_ACTIVE || resp.Status != 200 || !slices.Equal(resp.PackageIds, active) {
		t.Fatalf("protobuf response %v, want ACTIVE req-3 %v", &resp, active)
	}

	// Protobuf in, JSON out.
	r = e.do("POST", "/api/v1", body, "Content-Type", pb.MediaProtobuf, "Accept", "application/json")
	expectJSON(t, "protobuf in, JSON out", r, 200, `{"type":"ACTIVE","request_id":"req-3","status":200,"package_ids":`+jsonList(active)+`}`)

	// Negotiation failures.
	expectStatus(t, "415", e.do("POST", "/api/v1", []byte(`{}`), "Content-Type", "text/plain"), 415)
	expectStatus(t, "no Content-Type", e.do("POST", "/api/v1", []byte(`{}`)), 400)
	expectStatus(t, "406", e.do("POST", "/api/v1", []byte(`{"type":"LIST"}`), "Content-Type", pb.MediaJSON, "Accept", "text/html"), 406)
	expectStatus(t, "406 q=0", e.do("POST", "/api/v1", []byte(`{"type":"LIST"}`), "Content-Type", pb.MediaJSON,
		"Accept", "application/json;q=0, application/x-protobuf;q=0"), 406)
	expectStatus(t, "bad JSON", e.do("POST", "/api/v1", []byte(`{"type":`), "Content-Type", pb.MediaJSON), 400)
	expectStatus(t, "unknown field", e.do("POST", "/api/v1", []byte(`{"type":"LIST","nope":1}`), "Content-Type", pb.MediaJSON), 400)
	expectStatus(t, "bad protobuf", e.do("POST", "/api/v1", []byte{0xff, 0xff}, "Content-Type", pb.MediaProtobuf), 400)
	r = e.do("POST", "/api/v1", []byte(`{"request_id":"x"}`), "Content-Type", pb.MediaJSON)
	if r.status != 400 {
		t.Fatalf("UNKNOWN call: %s", r)
	}

	// A mutation over api/v1: SWAP then ACTIVATE back.
	r = e.do("POST", "/api/v1", []byte(`{"type":"SWAP","request_id":"s","package_ids":["mesos--0.23.0"]}`), "Content-Type", pb.MediaJSON)
	expectJSON(t, "SWAP", r, 200, `{"type":"SWAP","request_id":"s","status":204}`)
	r = e.do("POST", "/api/v1", []byte(`{"type":"ACTIVATE","package_ids":["absent--1"]}`), "Content-Type", pb.MediaJSON)
	expectJSON(t, "ACTIVATE missing", r, 409, `{"type":"ACTIVATE","status":409,"error":"Not all packages in the request are present on this node.","missing_packages":["absent--1"]}`)
}

func TestNegotiate(t *testing.T) {
	for _, c := range []struct {
		ct, accept string
		req, resp  string
		status     int
	}{
		{pb.MediaJSON, "", pb.MediaJSON, pb.MediaJSON, 0},
		{pb.MediaProtobuf, "", pb.MediaProtobuf, pb.MediaJSON, 0},
		{pb.MediaProtobuf, pb.MediaProtobuf, pb.MediaProtobuf, pb.MediaProtobuf, 0},
		{pb.MediaJSON, "*/*", pb.MediaJSON, pb.MediaJSON, 0},
		{pb.MediaJSON, "application/*;q=0.5", pb.MediaJSON, pb.MediaJSON, 0},
		{pb.MediaJSON, "application/json;q=0, */*", pb.MediaJSON, pb.MediaProtobuf, 0},
		{pb.MediaJSON, "text/html", "", "", 406},
		{"text/plain", "", "", "", 415},
		{"", "", "", "", 400},
		{"application/json; charset=utf-8", "application/x-protobuf", pb.MediaJSON, pb.MediaProtobuf, 0},
	} {
		req, resp, err := negotiate(c.ct, c.accept)
		status := 0
		if ne, ok := err.(*negotiateError); ok {
			status = ne.Status
		} else if err != nil {
			t.Fatalf("negotiate(%q, %q): unexpected error type %v", c.ct, c.accept, err)
		}
		if req != c.req || resp != c.resp || status != c.status {
			t.Errorf("negotiate(%q, %q) = %q, %q, %d; want %q, %q, %d", c.ct, c.accept, req, resp, status, c.req, c.resp, c.status)
		}
	}
}

func TestMesosGoMessengerRoundTrip(t *testing.T) {
	e := newEnv(t, envOpt{})
	repo, _ := fixtureIDs(t, e.fixture)
	m := messenger.NewHttpWithBindingAddress(upid.UPID{ID: "pkgpanda-client", Host: "127.0.0.1", Port: "0"}, net.ParseIP("127.0.0.1"))
	replies := make(chan *pb.PkgpandaResponse, 4)
	if err := m.Install(func(from *upid.UPID, msg proto.Message) {
		replies <- msg.(*pb.PkgpandaResponse)
	}, &pb.PkgpandaResponse{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	self := e.p.lp.Self()
	to := &upid.UPID{ID: self.ID, Host: self.Host, Port: strconv.Itoa(int(self.Port))}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, c := range []struct {
		call   *pb.PkgpandaCall
		status int32
	}{
		{&pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST, RequestId: "mg-1"}, 200},
		{&pb.PkgpandaCall{Type: pb.PkgpandaCall_GET_PACKAGE, RequestId: "mg-2", PackageIds: []string{"--root=/"}}, 404},
		{&pb.PkgpandaCall{Type: pb.PkgpandaCall_GET_PACKAGE, RequestId: "mg-3", PackageIds: []string{repo[0]}}, 200},
	} {
		if err := m.Send(ctx, to, c.call); err != nil {
			t.Fatalf("call %d: Send: %v", i, err)
		}
		select {
		case r := <-replies:
			if r.RequestId != c.call.RequestId || r.Type != c.call.Type || r.Status != c.status {
				t.Fatalf("call %d: response %v, want %s %s status %d", i, r, c.call.Type, c.call.RequestId, c.status)
			}
			if c.call.Type == pb.PkgpandaCall_LIST && !slices.Equal(r.PackageIds, repo) {
				t.Fatalf("LIST: %v, want %v", r.PackageIds, repo)
			}
			if c.status == 200 && c.call.Type == pb.PkgpandaCall_GET_PACKAGE && r.Package.GetId() != repo[0] {
				t.Fatalf("GET_PACKAGE: %v", r.Package)
			}
		case <-ctx.Done():
			t.Fatalf("call %d: no PkgpandaResponse from %s", i, to)
		}
	}
}

// TestConformancePkgpandaSection runs the conformance suite's pkgpanda
// section (Pkgpanda HTTP API and the message round trip) against the
// process.
func TestConformancePkgpandaSection(t *testing.T) {
	e := newEnv(t, envOpt{})
	callBody, err := proto.Marshal(&pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST, RequestId: "conformance"})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := fixtureIDs(t, e.fixture)
	rep, err := conformance.Run(context.Background(), conformance.Options{
		Target:   e.rt.Addr().HostPort(),
		Process:  processID,
		Pkgpanda: true,
		Fixture:  e.fixture,
		Listen:   "127.0.0.1:0",
		Run:      regexp.MustCompile(`^pkgpanda\.`),
		PkgpandaRoundTrip: &conformance.RoundTrip{
			Name:      proto.MessageName(&pb.PkgpandaCall{}),
			Body:      callBody,
			ReplyName: proto.MessageName(&pb.PkgpandaResponse{}),
			Check: func(body []byte) error {
				var r pb.PkgpandaResponse
				if err := proto.Unmarshal(body, &r); err != nil {
					return err
				}
				if r.RequestId != "conformance" || r.Status != 200 || !slices.Equal(r.PackageIds, repo) {
					return fmt.Errorf("unexpected response %v", &r)
				}
				return nil
			},
		},
	})
	if err != nil {
		t.Fatalf("conformance.Run: %v", err)
	}
	if len(rep.Results) == 0 {
		t.Fatal("the conformance suite ran no pkgpanda case")
	}
	for _, r := range rep.Results {
		if r.Status == conformance.Fail {
			t.Errorf("%s", r.Line())
		} else {
			t.Logf("%s", r.Line())
		}
	}
}
