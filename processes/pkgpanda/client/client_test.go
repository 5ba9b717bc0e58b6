package client_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procpanda/procpanda/internal/testfixture"
	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/libprocess/httpauth"
	"github.com/procpanda/procpanda/processes/pkgpanda"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	"github.com/procpanda/procpanda/processes/pkgpanda/client"
)

// standin is the stand-in CLI built by TestMain.
var standin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pkgpanda-client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if standin, err = testfixture.Build(dir, "pkgpanda-standin"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Fixture package ids (shared/fixtures/pkgpanda/http).
const (
	mesosOld    = "mesos--0.22.0" // active
	mesosNew    = "mesos--0.23.0" // inactive
	configJust  = "mesos-config--justmesos"
	configOrig  = "mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8" // active
	opsUser     = "ops"
	opsPassword = "ops-secret"
)

// server is a pkgpanda process over a fresh copy of the fixture.
type server struct {
	rt  *libprocess.Runtime
	pid libprocess.UPID
}

func startServer(t *testing.T, authn libprocess.Authenticator) *server {
	t.Helper()
	return startServerWith(t, authn, nil)
}

func startServerWith(t *testing.T, authn libprocess.Authenticator, acl *pkgpanda.ACL) *server {
	t.Helper()
	fixture, err := testfixture.Find()
	if err != nil {
		t.Skipf("no pkgpanda fixture: %v", err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "fixture")
	if err := testfixture.Copy(fixture, root); err != nil {
		t.Fatalf("copying the fixture: %v", err)
	}
	p, err := pkgpanda.New(pkgpanda.Config{
		Tool: cli.Tool{Path: standin, Options: cli.Options{
			Root:          filepath.Join(root, "install"),
			Repository:    filepath.Join(root, "packages"),
			ConfigDir:     filepath.Join(root, "etc"),
			StateDirRoot:  filepath.Join(root, "state"),
			RootedSystemd: true,
			NoSystemd:     true,
		}},
		Env:           []string{"PATH=/usr/bin:/bin"},
		TempDir:       dir,
		KillGrace:     time.Second,
		Authenticator: authn,
		ACL:           acl,
	})
	if err != nil {
		t.Fatalf("pkgpanda.New: %v", err)
	}
	cfg := libprocess.DefaultConfig()
	cfg.IP, cfg.Port = "127.0.0.1", 0
	rt, err := libprocess.New(cfg)
	if err != nil {
		t.Fatalf("libprocess.New: %v", err)
	}
	if err := rt.Start(); err != nil {
		t.Fatalf("runtime Start: %v", err)
	}
	pid, err := p.Start(rt)
	if err != nil {
		t.Fatalf("pkgpanda Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Drain(ctx); err != nil {
			t.Errorf("Drain: %v", err)
		}
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &server{rt: rt, pid: pid}
}

// transports builds one client per protocol for s.
func transports(t *testing.T, s *server, opts ...client.Option) map[string]*client.Client {
	t.Helper()
	msg, err := client.NewMessages(context.Background(), s.pid, append([]client.Option{client.WithListen("127.0.0.1:0")}, opts...)...)
	if err != nil {
		t.Fatalf("NewMessages: %v", err)
	}
	hc, err := client.NewHTTP("http://"+s.pid.HostPort()+"/"+s.pid.ID, opts...)
	if err != nil {
		t.Fatalf("NewHTTP: %v", err)
	}
	t.Cleanup(func() {
		if err := msg.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		hc.Close()
	})
	return map[string]*client.Client{"messages": msg, "http": hc}
}

// Every operation works and fails the same way over both protocols.
func TestClientOperations(t *testing.T) {
	for _, proto := range []string{"messages", "http"} {
		t.Run(proto, func(t *testing.T) {
			s := startServer(t, nil)
			c := transports(t, s)[proto]
			ctx := context.Background()

			repo, err := c.List(ctx)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if want := []string{mesosOld, mesosNew, configOrig, configJust}; !sameSet(repo, want) {
				t.Fatalf("List = %q, want %q", repo, want)
			}
			active, err := c.Active(ctx)
			if err != nil || !sameSet(active, []string{mesosOld, configOrig}) {
				t.Fatalf("Active = %q, %v", active, err)
			}
			pkg, err := c.Get(ctx, mesosNew)
			if err != nil || pkg != (client.Package{ID: mesosNew, Name: "mesos", Version: "0.23.0"}) {
				t.Fatalf("Get(%s) = %+v, %v", mesosNew, pkg, err)
			}
			if _, err := c.GetActive(ctx, mesosNew); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("GetActive of an inactive package: %v, want ErrNotFound", err)
			}
			if _, err := c.Get(ctx, "nosuch--1"); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("Get of a missing package: %v, want ErrNotFound", err)
			}

			err = c.Activate(ctx, mesosNew, "nosuch--1")
			var ce *client.Error
			if !errors.Is(err, client.ErrConflict) || !errors.As(err, &ce) || !slices.Equal(ce.MissingPackages, []string{"nosuch--1"}) {
				t.Fatalf("Activate with a missing id: %v, want a 409 *Error naming nosuch--1", err)
			}
			if err := c.Activate(ctx, mesosNew, configJust); err != nil {
				t.Fatalf("Activate: %v", err)
			}
			if active, err = c.Active(ctx); err != nil || !sameSet(active, []string{mesosNew, configJust}) {
				t.Fatalf("Active after Activate = %q, %v", active, err)
			}
			if err := c.Swap(ctx, mesosOld); err != nil {
				t.Fatalf("Swap: %v", err)
			}
			if pkg, err = c.GetActive(ctx, mesosOld); err != nil || pkg.ID != mesosOld {
				t.Fatalf("GetActive after Swap = %+v, %v", pkg, err)
			}
			if _, err := c.CheckList(ctx); err != nil {
				t.Fatalf("CheckList: %v", err)
			}
			removed, err := c.Remove(ctx, mesosNew)
			if err != nil || !slices.Equal(removed, []string{mesosNew}) {
				t.Fatalf("Remove = %q, %v", removed, err)
			}
			if _, err := c.Get(ctx, mesosNew); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("Get after Remove: %v, want ErrNotFound", err)
			}
			if _, err := c.Add(ctx, mesosNew, strings.NewReader("not a tarball"), 13); err == nil {
				t.Fatalf("Add of a non-tarball succeeded")
			}
		})
	}
}

// Credentials travel in the call (messages) or the header (HTTP); wrong
// ones are ErrUnauthorized.
func TestClientCredentials(t *testing.T) {
	s := startServer(t, httpauth.NewBasic(map[string]string{opsUser: opsPassword}))
	for proto, c := range transports(t, s, client.WithBasicAuth(opsUser, opsPassword)) {
		if _, err := c.List(context.Background()); err != nil {
			t.Errorf("%s: List with credentials: %v", proto, err)
		}
	}
	for proto, c := range transports(t, s, client.WithBasicAuth(opsUser, "wrong")) {
		if _, err := c.List(context.Background()); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("%s: List with wrong credentials: %v, want ErrUnauthorized", proto, err)
		}
	}
}

// A principal the ACL lets only read gets ErrForbidden for a mutation.
func TestClientForbidden(t *testing.T) {
	acl, err := pkgpanda.ParseACL([]byte(`{"read": {"principals": ["monitor"]}, "mutate": {"principals": ["ops"]}}`))
	if err != nil {
		t.Fatalf("ParseACL: %v", err)
	}
	s := startServerWith(t, httpauth.NewBasic(map[string]string{"monitor": "m"}), acl)
	for proto, c := range transports(t, s, client.WithBasicAuth("monitor", "m")) {
		if _, err := c.List(context.Background()); err != nil {
			t.Errorf("%s: List as a reader: %v", proto, err)
		}
		if err := c.Swap(context.Background(), mesosNew); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("%s: Swap as a reader: %v, want ErrForbidden", proto, err)
		}
	}
}

// A call nobody answers ends with its context.
func TestClientMessagesContextEnds(t *testing.T) {
	s := startServer(t, nil)
	silent := libprocess.UPID{ID: "nobody", Host: s.pid.Host, Port: s.pid.Port}
	c, err := client.NewMessages(context.Background(), silent, client.WithListen("127.0.0.1:0"))
	if err != nil {
		t.Fatalf("NewMessages: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.List(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("List with a cancelled context: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.List(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("List of a process that does not answer: %v, want context.DeadlineExceeded", err)
	}
}

// packageTarball returns the tarball of a package whose pkginfo.json
// requires nothing, with extra bytes of incompressible filler.
func packageTarball(t *testing.T, extra int) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	files := []struct {
		name string
		body []byte
	}{{"pkginfo.json", []byte(`{"requires": []}`)}}
	if extra > 0 {
		filler := make([]byte, extra)
		rand.NewChaCha8([32]byte{}).Read(filler)
		files = append(files, struct {
			name string
			body []byte
		}{"filler", filler})
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Add sends exactly size bytes of its reader over either protocol; a
// reader that ends early fails the call and adds nothing.
func TestClientAdd(t *testing.T) {
	tb := packageTarball(t, 0)
	for _, proto := range []string{"messages", "http"} {
		t.Run(proto, func(t *testing.T) {
			s := startServer(t, nil)
			c := transports(t, s)[proto]
			ctx := context.Background()
			// Bytes after size are not the tarball's and are not read.
			rest := bytes.NewReader(append(slices.Clone(tb), "trailing"...))
			res, err := c.Add(ctx, "added--1", rest, int64(len(tb)))
			if err != nil || res.Package.ID != "added--1" || res.AlreadyAdded {
				t.Fatalf("Add = %+v, %v", res, err)
			}
			if rest.Len() != len("trailing") {
				t.Fatalf("Add left %d bytes of its reader, want the %d after size", rest.Len(), len("trailing"))
			}
			if pkg, err := c.Get(ctx, "added--1"); err != nil || pkg.Name != "added" {
				t.Fatalf("Get after Add = %+v, %v", pkg, err)
			}
			_, err = c.Add(ctx, "short--1", bytes.NewReader(tb), int64(len(tb))+1)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Add of a reader shorter than size: %v, want io.ErrUnexpectedEOF", err)
			}
			if _, err := c.Get(ctx, "short--1"); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("Get after a short Add: %v, want ErrNotFound", err)
			}
			if _, err := c.Add(ctx, "neg--1", bytes.NewReader(tb), -1); err == nil {
				t.Fatal("Add with a negative size succeeded")
			}
		})
	}
}

// unreadable fails the test if Add reads it.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("the tarball was read")
	return 0, io.EOF
}

// Over messages, a tarball larger than a message carries is refused
// before anything is read or sent.
func TestClientAddMessageTooLarge(t *testing.T) {
	s := startServer(t, nil)
	c := transports(t, s)["messages"]
	_, err := c.Add(context.Background(), "big--1", unreadable{t}, 16<<20)
	if !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("Add of 16 MiB over messages: %v, want ErrTooLarge", err)
	}
}

// gated hands out its first n bytes, then waits for open before the rest.
type gated struct {
	r    io.Reader
	n    int
	open <-chan struct{}
}

func (g *gated) Read(p []byte) (int, error) {
	if g.n == 0 {
		<-g.open
		g.n = -1
	}
	if g.n > 0 && len(p) > g.n {
		p = p[:g.n]
	}
	n, err := g.r.Read(p)
	if g.n > 0 {
		g.n -= n
	}
	return n, err
}

// Over HTTP the tarball is streamed: the process begins writing it to
// disk while Add has read only its first bytes from the reader.
func TestClientAddStreams(t *testing.T) {
	s := startServer(t, nil)
	c := transports(t, s)["http"]
	tb := packageTarball(t, 3<<20) // beyond the body size the runtime buffers
	open := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(open) }) }
	defer release()
	type result struct {
		res client.AddResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := c.Add(context.Background(), "streamed--1", &gated{r: bytes.NewReader(tb), n: 64 << 10, open: open}, int64(len(tb)))
		done <- result{res, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.rt.Snapshot()["pkgpanda/uploads/active"] < 1 {
		if time.Now().After(deadline) {
			release()
			t.Fatal("the process began no upload while Add held back all but 64 KiB of the tarball")
		}
		select {
		case r := <-done:
			t.Fatalf("Add returned before its tarball was read: %+v, %v", r.res, r.err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	release()
	if r := <-done; r.err != nil || r.res.Package.ID != "streamed--1" {
		t.Fatalf("Add = %+v, %v", r.res, r.err)
	}
}

// A client on the caller's runtime spawns its process there and leaves
// the runtime running when it closes.
func TestClientWithRuntime(t *testing.T) {
	s := startServer(t, nil)
	cfg := libprocess.DefaultConfig()
	cfg.IP, cfg.Port = "127.0.0.1", 0
	rt, err := libprocess.New(cfg)
	if err != nil {
		t.Fatalf("libprocess.New: %v", err)
	}
	if err := rt.Start(); err != nil {
		t.Fatalf("runtime Start: %v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown of the caller's runtime: %v", err)
		}
	}()
	if _, err := client.NewMessages(context.Background(), s.pid, client.WithRuntime(rt), client.WithListen("127.0.0.1:0")); err == nil {
		t.Fatal("NewMessages with WithRuntime and WithListen succeeded")
	}
	for i := range 2 { // the second client runs on the runtime the first left
		c, err := client.NewMessages(context.Background(), s.pid, client.WithRuntime(rt))
		if err != nil {
			t.Fatalf("NewMessages %d: %v", i, err)
		}
		if ids, err := c.Active(context.Background()); err != nil || len(ids) != 2 {
			t.Fatalf("client %d: Active = %q, %v", i, ids, err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
