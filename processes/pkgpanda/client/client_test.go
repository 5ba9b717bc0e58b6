package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
			if _, err := c.Add(ctx, mesosNew, bytes.NewReader([]byte("not a tarball"))); err == nil {
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

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
