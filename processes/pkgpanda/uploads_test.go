package pkgpanda

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// uploadsOnDisk lists the upload directories present.
func (e *env) uploadsOnDisk() []string {
	e.t.Helper()
	ents, err := os.ReadDir(e.p.uploads.dir)
	if os.IsNotExist(err) {
		return nil // removed by Drain
	}
	if err != nil {
		e.t.Error(err)
		return nil
	}
	var out []string
	for _, ent := range ents {
		if ent.Name() != ".lock" {
			out = append(out, ent.Name())
		}
	}
	return out
}

// stalledAdd starts POST /add?id=<id> announcing size bytes, sends the
// first part of the body and leaves the connection open: the upload is
// being received until the test writes the rest or closes conn.
func (e *env) stalledAdd(id string, size int, first []byte) net.Conn {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.rt.Addr().HostPort())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST /%s/add?id=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
		processID, id, e.rt.Addr().HostPort(), size)
	if _, err := conn.Write(append([]byte(head), first...)); err != nil {
		e.t.Fatal(err)
	}
	waitFor(e.t, "the upload to reach the disk", func() bool { return len(e.uploadsOnDisk()) > 0 })
	return conn
}

// TestUploadCountBound: with MaxUploads 1, a second upload while one is
// being received is answered 503 with Retry-After and counted; an upload
// whose client goes away leaves nothing on disk.
func TestUploadCountBound(t *testing.T) {
	e := newEnv(t, envOpt{maxUploads: 1})
	conn := e.stalledAdd("big--1", 8<<20, bytes.Repeat([]byte{1}, 64<<10))

	r := e.do("POST", "/add?id=small--1", tarball(t))
	expectStatus(t, "a second upload", r, 503)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	callBody, _ := proto.Marshal(&pb.PkgpandaCall{Type: pb.PkgpandaCall_ADD, PackageIds: []string{"small--1"}, Tarball: tarball(t)})
	expectStatus(t, "a second upload over api/v1", e.do("POST", "/api/v1", callBody, "Content-Type", pb.MediaProtobuf), 503)
	if n := e.metric("pkgpanda/uploads/rejected"); n != 2 {
		t.Fatalf("uploads/rejected = %v, want 2", n)
	}
	if n := e.metric("pkgpanda/uploads/active"); n != 1 {
		t.Fatalf("uploads/active = %v, want 1", n)
	}
	// Reads never count as uploads.
	expectStatus(t, "api/v1 LIST during an upload", e.do("POST", "/api/v1", mustMarshal(t, &pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST}),
		"Content-Type", pb.MediaProtobuf), 200)

	conn.Close()
	waitFor(t, "the abandoned upload to be removed", func() bool { return len(e.uploadsOnDisk()) == 0 })
	expectStatus(t, "an upload once the first is gone", e.do("POST", "/add?id=small--1", tarball(t)), 200)
	if n := e.metric("pkgpanda/uploads/bytes"); n != 0 {
		t.Fatalf("uploads/bytes = %v after every upload ended, want 0", n)
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUploadBytesBound: an upload that would pass MaxUploadBytes is
// answered 503 and leaves nothing behind; the bytes are free again after.
func TestUploadBytesBound(t *testing.T) {
	e := newEnv(t, envOpt{maxUploadBytes: 64 << 10})
	r := e.do("POST", "/add?id=big--1", tarballWith(t, 200<<10))
	expectStatus(t, "an upload over the byte bound", r, 503)
	if n := e.metric("pkgpanda/uploads/rejected"); n != 1 {
		t.Fatalf("uploads/rejected = %v, want 1", n)
	}
	if d := e.uploadsOnDisk(); len(d) != 0 {
		t.Fatalf("left on disk: %v", d)
	}
	expectStatus(t, "a small upload", e.do("POST", "/add?id=small--1", tarball(t)), 200)
}

// TestAPIv1ProtobufAddStreamsToDisk: a protobuf api/v1 ADD larger than
// the runtime's buffered-body limit is scanned from the socket, its
// tarball written to disk (the id field may come after it), and added. A
// JSON body that large is refused with a 413 naming the alternatives.
func TestAPIv1ProtobufAddStreamsToDisk(t *testing.T) {
	e := newEnv(t, envOpt{})
	tb := tarballWith(t, 3<<20)
	// The tarball field first, the id after it.
	var body []byte
	body = append(body, mustMarshal(t, &pb.PkgpandaCall{Tarball: tb})...)
	body = append(body, mustMarshal(t, &pb.PkgpandaCall{Type: pb.PkgpandaCall_ADD, RequestId: "big", PackageIds: []string{"big--1"}})...)
	r := e.do("POST", "/api/v1", body, "Content-Type", pb.MediaProtobuf)
	expectJSON(t, "protobuf ADD", r, 200, `{"type":"ADD","request_id":"big","status":200,"package":{"id":"big--1","name":"big","version":"1"}}`)
	if _, err := os.Stat(filepath.Join(e.dir, "packages", "big--1", "pkginfo.json")); err != nil {
		t.Fatalf("the package was not added: %v", err)
	}
	if d := e.uploadsOnDisk(); len(d) != 0 {
		t.Fatalf("left on disk: %v", d)
	}
	big := []byte(`{"type":"LIST","request_id":"` + strings.Repeat("x", 2<<20) + `"}`)
	r = e.do("POST", "/api/v1", big, "Content-Type", pb.MediaJSON)
	expectStatus(t, "a 2 MiB JSON body", r, 413)
	if !strings.Contains(string(r.body), pb.MediaProtobuf) || !strings.Contains(string(r.body), "/pkgpanda/add") {
		t.Fatalf("413 does not name the alternatives: %s", r.body)
	}
	// Fields other than the tarball are capped too.
	r = e.do("POST", "/api/v1", mustMarshal(t, &pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST, RequestId: strings.Repeat("x", 2<<20)}),
		"Content-Type", pb.MediaProtobuf)
	expectStatus(t, "a 2 MiB request id", r, 413)
}

// TestMessageAddTarballGoesToDisk: an ADD message's tarball is written to
// an upload file at once; while the add waits behind another mutation,
// the file, not the message, holds it.
func TestMessageAddTarballGoesToDisk(t *testing.T) {
	e := newEnv(t, envOpt{delay: 300 * time.Millisecond})
	pr := newPeer(t)
	_, active := fixtureIDs(t, e.fixture)
	var wg sync.WaitGroup
	var slow reply
	e.async(&wg, &slow, "POST", "/activate?id="+active[0], nil)
	waitFor(t, "the activation to start", func() bool { return e.runsStarted("activate") == 1 })
	e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_ADD, RequestId: "m", PackageIds: []string{"msg--1"}, Tarball: tarball(t)})
	waitFor(t, "the tarball to reach the disk", func() bool {
		for _, d := range e.uploadsOnDisk() {
			if _, err := os.Stat(filepath.Join(e.p.uploads.dir, d, "msg--1.tar.xz")); err == nil {
				return true
			}
		}
		return false
	})
	if r := pr.next(t); r.Status != 200 || r.Package.GetId() != "msg--1" {
		t.Fatalf("ADD message: %v", r)
	}
	wg.Wait()
	if d := e.uploadsOnDisk(); len(d) != 0 {
		t.Fatalf("left on disk: %v", d)
	}
}

// TestDrainWaitsForUploads: Drain returns only once no upload is being
// received; the upload it interrupted is answered 503 and removed.
func TestDrainWaitsForUploads(t *testing.T) {
	e := newEnv(t, envOpt{})
	const size = 4 << 20
	conn := e.stalledAdd("big--1", size, bytes.Repeat([]byte{1}, 64<<10))
	type result struct {
		err    error
		active int
		files  int
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := e.p.Drain(ctx)
		n, _ := e.p.uploads.counts()
		done <- result{err, n, len(e.uploadsOnDisk())}
	}()
	<-e.p.drainCtx.Done()
	// The rest of the body arrives after the drain began.
	go func() { _, _ = conn.Write(bytes.Repeat([]byte{1}, size-64<<10)) }()
	res := <-done
	if res.err != nil || res.active != 0 || res.files != 0 {
		t.Fatalf("Drain returned %v with %d uploads being received and %d on disk", res.err, res.active, res.files)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("the interrupted upload got %d, want 503", resp.StatusCode)
	}
}
