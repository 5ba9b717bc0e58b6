package pkgpanda

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
	"github.com/procpanda/procpanda/processes/pkgpanda/subprocess"
	"github.com/rs/zerolog"
)

func zerologNop() zerolog.Logger { return zerolog.Nop() }

// settle waits until the stamps of every cached read's inputs are old
// enough for the reuse rule (an OS-level state: their ctimes age).
func (e *env) settle() {
	e.t.Helper()
	// Only the age: a copy that trusts every filesystem type.
	c := &resultCache{root: e.p.cache.root, repository: e.p.cache.repository, stat: e.p.cache.stat, fsType: trustAll}
	waitFor(e.t, "the inputs' timestamps to age past the granularity", func() bool {
		for k := cacheKey(0); k < numKeys; k++ {
			fp, err := c.fingerprint(k)
			if err != nil || c.untrusted(fp) != "" {
				return false
			}
		}
		return true
	})
}

// ids GETs path (below /pkgpanda) and decodes its JSON list.
func (e *env) ids(path string) []string {
	e.t.Helper()
	r := e.do("GET", path, nil)
	expectStatus(e.t, "GET "+path, r, 200)
	var ids []string
	if err := json.Unmarshal(r.body, &ids); err != nil {
		e.t.Fatalf("GET %s: %q is not a JSON list: %v", path, r.body, err)
	}
	return ids
}

// operator runs the stand-in directly over the env's install, as an
// operator at a shell would (not through pkgpandad), and returns stdout.
func (e *env) operator(args ...string) string {
	e.t.Helper()
	opts, err := e.p.cfg.Tool.Options.Args()
	if err != nil {
		e.t.Fatal(err)
	}
	argv := append(append([]string{standin}, args...), opts...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("pkgpanda %v: %v: %s", args, err, errb.String())
	}
	return out.String()
}

// truth is what the CLI itself reports now.
func (e *env) truth() (repo, active []string) {
	e.t.Helper()
	repo, err := cli.ParseList([]byte(e.operator("list")))
	if err != nil {
		e.t.Fatal(err)
	}
	active, err = cli.ParseActive([]byte(e.operator("active")))
	if err != nil {
		e.t.Fatal(err)
	}
	return repo, active
}

func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

// expectRuns checks how many runs of sub the stand-in started in all.
func (e *env) expectRuns(t *testing.T, what, sub string, want int) {
	t.Helper()
	if got := e.runsStarted(sub); got != want {
		t.Fatalf("%s: %d runs of pkgpanda %s, want %d", what, got, sub, want)
	}
}

// TestCacheReusesUnchangedResults: once the inputs have aged, repeated
// reads of every route that needs list or active run each command once.
func TestCacheReusesUnchangedResults(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.settle()
	repo, active := fixtureIDs(t, e.fixture)
	for i := 0; i < 3; i++ {
		sameIDs(t, "GET /repository/", e.ids("/repository/"), repo)
		sameIDs(t, "GET /list.json", e.ids("/list.json"), repo)
		sameIDs(t, "GET /active/", e.ids("/active/"), active)
		sameIDs(t, "GET /active.json", e.ids("/active.json"), active)
		expectStatus(t, "GET /repository/<id>", e.do("GET", "/repository/"+repo[0], nil), 200)
		expectStatus(t, "GET /active/<id>", e.do("GET", "/active/"+active[0], nil), 200)
	}
	e.expectRuns(t, "18 reads", "list", 1)
	e.expectRuns(t, "18 reads", "active", 1)
	// 21 lookups (GET /active/<id> checks the repository first, as DC/OS
	// does, then the active set), of which the first list and the first
	// active ran the tool.
	if h := e.metric("pkgpanda/cache/hits"); h != 19 {
		t.Fatalf("pkgpanda/cache/hits = %v, want 19", h)
	}
}

// TestCacheSeesChangesBehindItsBack: a change made without pkgpandad
// between two reads is seen by the second one, and the read after it is
// reused again.
func TestCacheSeesChangesBehindItsBack(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, e *env)
	}{
		{"folder added", func(t *testing.T, e *env) {
			dir := filepath.Join(e.dir, "packages", "added--1")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "pkginfo.json"), []byte(`{}`), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"folder removed", func(t *testing.T, e *env) {
			if err := os.RemoveAll(filepath.Join(e.dir, "packages", "mesos--0.23.0")); err != nil {
				t.Fatal(err)
			}
		}},
		{"folder added, mtime set back", func(t *testing.T, e *env) {
			repo := filepath.Join(e.dir, "packages")
			st, err := os.Stat(repo)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(repo, "hidden--1"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(repo, st.ModTime(), st.ModTime()); err != nil {
				t.Fatal(err)
			}
			if st2, err := os.Stat(repo); err != nil || !st2.ModTime().Equal(st.ModTime()) {
				t.Fatalf("the repository's mtime did not go back: %v", err)
			}
		}},
		{"active swapped by the CLI", func(t *testing.T, e *env) { e.operator("swap", "mesos--0.23.0") }},
		{"active link replaced", func(t *testing.T, e *env) {
			link := filepath.Join(e.dir, "install", "active", "mesos")
			tmp := link + ".tmp"
			if err := os.Symlink(filepath.Join(e.dir, "packages", "mesos--0.23.0"), tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, link); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOpt{})
			e.settle()
			repo, active := e.truth()
			sameIDs(t, "repository before", e.ids("/repository/"), repo)
			sameIDs(t, "active before", e.ids("/active/"), active)
			sameIDs(t, "repository before, reused", e.ids("/repository/"), repo)
			sameIDs(t, "active before, reused", e.ids("/active/"), active)
			e.expectRuns(t, "two reads of each before the change", "list", 1)
			e.expectRuns(t, "two reads of each before the change", "active", 1)

			c.change(t, e)
			repo2, active2 := e.truth()
			if slices.Equal(repo, repo2) && slices.Equal(active, active2) {
				t.Fatalf("the change changed nothing the CLI reports")
			}
			sameIDs(t, "repository after", e.ids("/repository/"), repo2)
			sameIDs(t, "active after", e.ids("/active/"), active2)
		})
	}
}

// frozenStat is a filesystem whose stamps never move: only pkgpandad's own
// invalidation can tell the cache about a change.
func frozenStat(string, bool) (fileStamp, error) {
	return fileStamp{exists: true, dev: 1, ino: 1, mode: 0o40755, mtime: 1e18, ctime: 1e18}, nil
}

func trustAll(string) (uint32, error) { return 0xEF53, nil }

// freeze makes e's cache see frozenStat (before Start).
func freeze(e *env) { e.p.cache.stat, e.p.cache.fsType = frozenStat, trustAll }

// TestCacheMutationThroughEachFrontEnd: a mutation through HTTP, api/v1
// or a message is seen by the next read even where the filesystem's stamps
// do not move, because the mutation itself drops the kept results.
func TestCacheMutationThroughEachFrontEnd(t *testing.T) {
	t.Run("HTTP DELETE", func(t *testing.T) {
		e := newEnv(t, envOpt{beforeStart: freeze})
		repo, _ := e.truth()
		sameIDs(t, "before", e.ids("/repository/"), repo)
		expectStatus(t, "DELETE", e.do("DELETE", "/repository/mesos--0.23.0", nil), 204)
		repo2, _ := e.truth()
		sameIDs(t, "after", e.ids("/repository/"), repo2)
		if slices.Contains(repo2, "mesos--0.23.0") {
			t.Fatal("the package is still there")
		}
	})
	t.Run("api/v1 SWAP", func(t *testing.T) {
		e := newEnv(t, envOpt{beforeStart: freeze})
		_, active := e.truth()
		sameIDs(t, "before", e.ids("/active/"), active)
		r := e.do("POST", "/api/v1", []byte(`{"type":"SWAP","package_ids":["mesos--0.23.0"]}`), "Content-Type", pb.MediaJSON)
		expectStatus(t, "SWAP", r, 200)
		_, active2 := e.truth()
		if !slices.Contains(active2, "mesos--0.23.0") {
			t.Fatalf("the swap did not happen: %v", active2)
		}
		sameIDs(t, "after", e.ids("/active/"), active2)
	})
	t.Run("message SWAP", func(t *testing.T) {
		e := newEnv(t, envOpt{beforeStart: freeze})
		pr := newPeer(t)
		_, active := e.truth()
		sameIDs(t, "before", e.ids("/active/"), active)
		e.sendCall(pr.upid.String(), &pb.PkgpandaCall{Type: pb.PkgpandaCall_SWAP, RequestId: "s", PackageIds: []string{"mesos--0.23.0"}})
		if r := pr.next(t); r.Status != 204 {
			t.Fatalf("SWAP message answered %v", r)
		}
		_, active2 := e.truth()
		if !slices.Contains(active2, "mesos--0.23.0") {
			t.Fatalf("the swap did not happen: %v", active2)
		}
		sameIDs(t, "after", e.ids("/active/"), active2)
	})
}

// TestCacheReadersDuringAMutation: reads that arrive while an activation
// runs are answered with the set after it, never the one before or a
// half-built one, even where stamps do not move.
func TestCacheReadersDuringAMutation(t *testing.T) {
	e := newEnv(t, envOpt{beforeStart: freeze, delay: 300 * time.Millisecond})
	_, active := e.truth()
	sameIDs(t, "before", e.ids("/active/"), active)
	target := slices.Clone(active)
	for i, id := range target {
		if strings.HasPrefix(id, "mesos--") {
			target[i] = "mesos--0.23.0"
		}
	}
	if slices.Equal(target, active) {
		t.Fatalf("the fixture's active set %v has no other mesos to activate", active)
	}
	body, _ := json.Marshal(target)
	var wg sync.WaitGroup
	var put reply
	e.async(&wg, &put, "PUT", "/active/", body)
	waitFor(t, "the activation to start", func() bool { return e.runsStarted("activate") == 1 })
	const n = 6
	got := make([]reply, n)
	for i := range got {
		path := "/active/"
		if i%2 == 1 {
			path = "/active.json"
		}
		e.async(&wg, &got[i], "GET", path, nil)
	}
	wg.Wait()
	expectStatus(t, "PUT /active/", put, 204)
	slices.Sort(target)
	for _, r := range got {
		expectJSON(t, "read during the activation", r, 200, jsonList(target))
	}
}

// TestCachePreChecksRunTheCLIOnce: with list and active kept, DELETE
// /repository/<id> runs only remove and PUT /active/ only activate.
func TestCachePreChecksRunTheCLIOnce(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.settle()
	repo, active := e.truth()
	sameIDs(t, "warm list", e.ids("/repository/"), repo)
	sameIDs(t, "warm active", e.ids("/active/"), active)
	expectStatus(t, "DELETE", e.do("DELETE", "/repository/mesos--0.23.0", nil), 204)
	e.expectRuns(t, "DELETE", "list", 1)
	e.expectRuns(t, "DELETE", "active", 1)
	e.expectRuns(t, "DELETE", "remove", 1)

	e.settle()
	repo, _ = e.truth()
	sameIDs(t, "list after DELETE", e.ids("/repository/"), repo)
	body, _ := json.Marshal(active)
	expectStatus(t, "PUT /active/", e.doJSON("PUT", "/active/", body), 204)
	e.expectRuns(t, "PUT /active/", "list", 2)
	e.expectRuns(t, "PUT /active/", "activate", 1)
}

// TestCacheSharesOneRunForConcurrentReads: identical reads on the two
// routes that run list (and the two that run active) at once start one
// run of each.
func TestCacheSharesOneRunForConcurrentReads(t *testing.T) {
	e := newEnv(t, envOpt{delay: 300 * time.Millisecond})
	e.settle()
	repo, active := fixtureIDs(t, e.fixture)
	paths := []string{"/repository/", "/list.json", "/active/", "/active.json"}
	const per = 4
	got := make([]reply, len(paths)*per)
	var wg sync.WaitGroup
	for i := range got {
		e.async(&wg, &got[i], "GET", paths[i%len(paths)], nil)
	}
	wg.Wait()
	for i, r := range got {
		want := repo
		if strings.HasPrefix(paths[i%len(paths)], "/active") {
			want = active
		}
		expectJSON(t, paths[i%len(paths)], r, 200, jsonList(want))
	}
	e.expectRuns(t, "16 concurrent reads", "list", 1)
	e.expectRuns(t, "16 concurrent reads", "active", 1)
}

// TestCacheFallsBackWhereStampsCannotBeTrusted: on a filesystem not known
// to keep timestamps, or with stamps as coarse and fresh as the last
// change, every read runs the CLI.
func TestCacheFallsBackWhereStampsCannotBeTrusted(t *testing.T) {
	check := func(t *testing.T, e *env) {
		t.Helper()
		repo, _ := fixtureIDs(t, e.fixture)
		for i := 0; i < 3; i++ {
			sameIDs(t, "GET /repository/", e.ids("/repository/"), repo)
		}
		e.expectRuns(t, "three reads", "list", 3)
		if u := e.metric("pkgpanda/cache/untrusted"); u != 3 {
			t.Fatalf("pkgpanda/cache/untrusted = %v, want 3", u)
		}
	}
	t.Run("network filesystem", func(t *testing.T) {
		e := newEnv(t, envOpt{beforeStart: func(e *env) {
			e.p.cache.fsType = func(string) (uint32, error) { return 0x6969, nil } // NFS
		}})
		e.settle()
		check(t, e)
	})
	t.Run("whole-second stamps of the last second", func(t *testing.T) {
		e := newEnv(t, envOpt{beforeStart: func(e *env) {
			e.p.cache.stat = func(path string, follow bool) (fileStamp, error) {
				s, err := statPath(path, follow)
				now := time.Now().Truncate(time.Second).UnixNano()
				s.mtime, s.ctime = now, now
				return s, err
			}
		}})
		check(t, e)
	})
}

// TestCacheOff: with DisableCache every read runs the CLI.
func TestCacheOff(t *testing.T) {
	e := newEnv(t, envOpt{noCache: true})
	repo, active := fixtureIDs(t, e.fixture)
	for i := 0; i < 3; i++ {
		sameIDs(t, "GET /repository/", e.ids("/repository/"), repo)
		sameIDs(t, "GET /active/", e.ids("/active/"), active)
	}
	e.expectRuns(t, "three reads", "list", 3)
	e.expectRuns(t, "three reads", "active", 3)
}

// TestCacheSharedRunOutlivesTheReaderWhoStartedIt: when the reader whose
// request started a shared run resets its connection, the run goes on for
// the reader still waiting; once that one goes too, the run is cancelled.
func TestCacheSharedRunOutlivesTheReaderWhoStartedIt(t *testing.T) {
	runs := make(chan runInfo, 8)
	e := newEnv(t, envOpt{delay: 2 * time.Second, onRun: func(ri runInfo) { runs <- ri }})
	e.settle()
	repo, _ := fixtureIDs(t, e.fixture)
	reset := func(conn net.Conn) {
		_ = conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
	starter, err := net.Dial("tcp", e.rt.Addr().HostPort())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(starter, "GET /pkgpanda/list.json HTTP/1.1\r\nHost: %s\r\n\r\n", e.rt.Addr().HostPort())
	waitFor(t, "the run to start", func() bool { return e.runsStarted("list") == 1 })
	var wg sync.WaitGroup
	var follower reply
	e.async(&wg, &follower, "GET", "/repository/", nil)
	waitFor(t, "the second reader to join the run", func() bool { return e.metric("pkgpanda/cache/shared_runs") == 1 })
	reset(starter)
	wg.Wait()
	expectJSON(t, "the reader left waiting", follower, 200, jsonList(repo))
	if ri := <-runs; ri.Err != nil {
		t.Fatalf("the shared run failed: %v", ri.Err)
	}
	e.expectRuns(t, "two readers", "list", 1)

	// Both readers go: the run is cancelled.
	e.p.cache.invalidate()
	a, err := net.Dial("tcp", e.rt.Addr().HostPort())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(a, "GET /pkgpanda/list.json HTTP/1.1\r\nHost: %s\r\n\r\n", e.rt.Addr().HostPort())
	waitFor(t, "the second run to start", func() bool { return e.runsStarted("list") == 2 })
	bConn, err := net.Dial("tcp", e.rt.Addr().HostPort())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(bConn, "GET /pkgpanda/repository/ HTTP/1.1\r\nHost: %s\r\n\r\n", e.rt.Addr().HostPort())
	waitFor(t, "the second reader to join the second run", func() bool { return e.metric("pkgpanda/cache/shared_runs") == 2 })
	reset(a)
	reset(bConn)
	select {
	case ri := <-runs:
		if ri.Result == nil || ri.Result.Killed != subprocess.KilledCanceled {
			t.Fatalf("the run nobody waits for was not cancelled: %+v", ri)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the run nobody waits for went on")
	}
}

// TestCacheFillRacingAMutationStoresNothing: a result computed while a
// mutation ended (the generation moved) is answered but not kept.
func TestCacheFillRacingAMutationStoresNothing(t *testing.T) {
	c := newResultCache(&Config{Tool: cli.Tool{Options: cli.Options{Root: t.TempDir(), Repository: t.TempDir()}}}, zerologNop())
	c.stat, c.fsType = frozenStat, trustAll
	calls := 0
	compute := func(mutate bool) func(context.Context) ([]string, *pb.PkgpandaResponse) {
		return func(context.Context) ([]string, *pb.PkgpandaResponse) {
			calls++
			if mutate {
				c.invalidate()
			}
			return []string{fmt.Sprint("run-", calls)}, nil
		}
	}
	ctx := context.Background()
	if ids, fail := c.get(ctx, keyList, cliStatuses(), compute(true)); fail != nil || !slices.Equal(ids, []string{"run-1"}) {
		t.Fatalf("first read: %v %v", ids, fail)
	}
	if ids, _ := c.get(ctx, keyList, cliStatuses(), compute(false)); !slices.Equal(ids, []string{"run-2"}) {
		t.Fatalf("a result computed across a mutation was kept: %v", ids)
	}
	if ids, _ := c.get(ctx, keyList, cliStatuses(), compute(false)); !slices.Equal(ids, []string{"run-2"}) || calls != 2 {
		t.Fatalf("a result computed in the current generation was not kept: %v after %d runs", ids, calls)
	}
}
