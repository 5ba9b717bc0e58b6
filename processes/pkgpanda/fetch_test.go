package pkgpanda

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// TestHangingFetchDelaysNoRead: while a fetch waits on a repository that
// does not answer, reads are served: the download holds no lock.
func TestHangingFetchDelaysNoRead(t *testing.T) {
	e := newEnv(t, envOpt{})
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		http.NotFound(w, r)
	}))
	defer srv.Close()
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()

	var wg sync.WaitGroup
	var fetch reply
	e.async(&wg, &fetch, "POST", "/repository/hang--1", []byte(`{"repository_url":"`+srv.URL+`"}`))
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-arrived: // the download is waiting on the server
	case <-finished:
		t.Fatalf("the fetch ended without asking the server: %s", fetch)
	}

	// Reads answer while it waits. (Bounded only so that a regression
	// fails instead of hanging: the fetch would hold the lock until the
	// server answers, which it does only when the test ends.)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, path := range []string{"/repository/", "/active/", "/list.json"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.base+path, nil)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatalf("GET %s while a fetch hangs: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s while a fetch hangs: %d", path, resp.StatusCode)
		}
	}
	unblock()
	<-finished
	expectStatus(t, "the fetch once the server answers 404", fetch, 500)
	if string(fetch.body) != `{"error":"An unexpected error has occurred."}` { // DC/OS's text (docs/pkgpanda-cli.md §6.2)
		t.Fatalf("fetch error %s", fetch.body)
	}
	if d := e.uploadsOnDisk(); len(d) != 0 {
		t.Fatalf("left on disk: %v", d)
	}
}

// TestFileFetchErrorsAreGeneric: every failure of a file:// fetch gets
// the same answer, so a caller learns nothing about the daemon's files.
func TestFileFetchErrorsAreGeneric(t *testing.T) {
	e := newEnv(t, envOpt{})
	root := t.TempDir()
	pkgDir := filepath.Join(root, "packages", "probe")
	if err := os.MkdirAll(filepath.Join(pkgDir, "probe--1.tar.xz"), 0o755); err != nil { // a directory
		t.Fatal(err)
	}
	fifoRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(fifoRoot, "packages", "probe"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(fifoRoot, "packages", "probe", "probe--1.tar.xz"), 0o600); err != nil {
		t.Fatal(err)
	}
	noPerm := t.TempDir()
	if err := os.MkdirAll(filepath.Join(noPerm, "packages", "probe"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(noPerm, "packages", "probe", "probe--1.tar.xz"), []byte("not a tarball"), 0o600); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, u := range []string{"file:///nonexistent/dir", "file://" + root, "file://" + fifoRoot, "file://" + noPerm} {
		r := e.doJSON("POST", "/repository/probe--1", []byte(`{"repository_url":"`+u+`"}`))
		expectStatus(t, "fetch from "+u, r, 500)
		bodies = append(bodies, string(r.body))
		r = e.do("POST", "/api/v1", []byte(`{"type":"FETCH","package_ids":["probe--1"],"repository_url":"`+u+`"}`), "Content-Type", pb.MediaJSON)
		bodies = append(bodies, string(r.body))
	}
	for i := 2; i < len(bodies); i++ {
		if bodies[i] != bodies[i%2] {
			t.Fatalf("file:// fetch errors differ:\n%s\n%s", bodies[i%2], bodies[i])
		}
	}
}
