package conformance

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procpanda/procpanda/internal/testfixture"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" && len(os.Args) > 1 && os.Args[1] == panickingHelperArg {
		os.Exit(panickingHelper())
	}
	RunHelper()
	flag.Parse()
	// mesos-go logs through glog; keep it off the temporary directory.
	_ = flag.Set("logtostderr", "true")
	os.Exit(m.Run())
}

// fakeOptions are the options for the fake target.
func fakeOptions(f *fakeTarget) Options {
	return Options{
		Target:  f.addr(),
		Process: "echo",
		Ping:    "conformance.Ping",
		Pong:    "conformance.Pong",
		MesosGo: true,
		Timeout: 5 * time.Second,
		// The test binary is its own mesos-go helper (TestMain).
		MesosGoHelper: []string{testExecutable()},
	}
}

// testExecutable is the running test binary.
func testExecutable() string {
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}

// expectedFakeSkips are the cases the fake target cannot pass and why.
var expectedFakeSkips = map[string]string{
	"resp.gzip": "the fake's bodies are all shorter than 1024 bytes",
}

func TestFakeTargetPasses(t *testing.T) {
	f := startFake(t, fakeFlaws{})
	rep, err := Run(context.Background(), fakeOptions(f))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		switch {
		case r.Status == Pass:
		case r.Status == Skip && expectedFakeSkips[r.ID] != "":
		default:
			t.Errorf("%s", r.Line())
		}
	}
	if n := len(rep.Results); n != len(Cases())-len(pkgpandaCases()) {
		t.Errorf("ran %d cases, want every non-pkgpanda case (%d)", n, len(Cases())-len(pkgpandaCases()))
	}
	if t.Failed() || testing.Verbose() {
		var b bytes.Buffer
		_ = rep.WriteText(&b)
		t.Log("\n" + b.String())
	}
}

func TestFlawsAreReported(t *testing.T) {
	f := startFake(t, fakeFlaws{serveDotDot: true, noDate: true})
	o := fakeOptions(f)
	o.MesosGo = false
	o.Run = regexp.MustCompile(`^(route\.|resp\.date|help\.json)`)
	var streamed []string
	o.OnResult = func(r Result) { streamed = append(streamed, r.ID) }
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Status{"route.dotdot": Fail, "route.not-found-body": Fail, "resp.date": Fail, "route.root": Pass, "help.json": Pass}
	for id, st := range want {
		r, ok := rep.Result(id)
		if !ok || r.Status != st {
			t.Errorf("%s: got %+v, want %s", id, r, st)
		}
	}
	if !rep.Failed() || len(streamed) != len(rep.Results) {
		t.Errorf("Failed()=%v, streamed %d of %d", rep.Failed(), len(streamed), len(rep.Results))
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if got, want := lines[len(lines)-1], rep.Summary(); got != want || !regexp.MustCompile(`^required: \d+ passed, 3 failed, 0 skipped; beyond libprocess: 0 passed, 0 unmet, 0 skipped$`).MatchString(got) {
		t.Errorf("closing line %q, want %q with 3 failed", got, want)
	}
	for _, l := range lines[:len(lines)-1] {
		if !regexp.MustCompile(`^(PASS|FAIL|UNMET|SKIP) [a-z0-9.-]+ \(§[^)]*\): `).MatchString(l) {
			t.Errorf("malformed report line %q", l)
		}
	}
	if !strings.Contains(text, "FAIL route.dotdot (§4.1): expected 404") {
		t.Errorf("report lacks the route.dotdot failure:\n%s", text)
	}
}

// A target that sends over a connection per burst and closes each, as C++
// does to a peer it is not linked to (docs/libprocess-wire.md §3.2), passes the peer cases; one that
// leaves those connections open fails peer.outbound.persistent.
func TestPeerCasesAcceptConnectionPerBurst(t *testing.T) {
	for mode, want := range map[string]Status{"burst": Pass, "leak": Fail} {
		t.Run(mode, func(t *testing.T) {
			f := startFake(t, fakeFlaws{sendMode: mode})
			o := fakeOptions(f)
			o.MesosGo = false
			o.Timeout = 10 * time.Second // a connection per reply: 500 of them for close-after-last
			o.Run = regexp.MustCompile(`^(peer\.|msg\.deliver\.|msg\.pipeline\.close-after-last$)`)
			rep, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Results {
				st := Pass
				if r.ID == "peer.outbound.persistent" {
					st = want
				}
				if r.Status != st {
					t.Errorf("want %s: %s", st, r.Line())
				}
			}
			if len(rep.Results) < 15 {
				t.Errorf("ran only %d cases", len(rep.Results))
			}
		})
	}
}

func TestUnreachableTargetFailsWithoutAborting(t *testing.T) {
	o := Options{Target: "127.0.0.1:1", Process: "echo", Timeout: time.Second, Run: regexp.MustCompile(`^(route\.root|conn\.keepalive|peer\.roundtrip)$`)}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 3 || rep.Count(Fail) != 2 || rep.Count(Skip) != 1 {
		var b bytes.Buffer
		_ = rep.WriteText(&b)
		t.Errorf("want 2 failures and 1 skip (no ping), got:\n%s", b.String())
	}
}

func TestOptionsValidated(t *testing.T) {
	for _, o := range []Options{{}, {Target: "nohostport", Process: "p"}, {Target: "127.0.0.1:1"}, {Target: "127.0.0.1:1", Process: "p", Ping: "x"}} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) accepted bad options", o)
		}
	}
}

func TestCaseIDsUniqueAndCited(t *testing.T) {
	seen := map[string]bool{}
	idRE := regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9.-]+)+$`)
	for _, c := range Cases() {
		if seen[c.ID] {
			t.Errorf("duplicate id %s", c.ID)
		}
		seen[c.ID] = true
		if !idRE.MatchString(c.ID) || !strings.Contains(c.Section, "§") || c.Title == "" || c.Run == nil {
			t.Errorf("case %+v lacks a stable id, a spec section, a title or a body", c)
		}
		if c.After != "" && !seen[c.After] {
			t.Errorf("%s runs after %s, which does not come earlier", c.ID, c.After)
		}
		if c.Beyond != "" && !regexp.MustCompile(`3rdparty/libprocess/src/[a-z_]+\.cpp:\d+`).MatchString(c.Beyond) {
			t.Errorf("%s goes beyond libprocess without citing the C++ source (file:line): %q", c.ID, c.Beyond)
		}
	}
}

func TestReadFixture(t *testing.T) {
	dir, err := testfixture.Find()
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	st, err := readFixture(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantRepo := "mesos--0.22.0,mesos--0.23.0,mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8,mesos-config--justmesos"
	wantActive := "mesos--0.22.0,mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8"
	if got := strings.Join(st.repo, ","); got != wantRepo {
		t.Errorf("repo %s, want %s", got, wantRepo)
	}
	if got := strings.Join(st.active, ","); got != wantActive {
		t.Errorf("active %s, want %s", got, wantActive)
	}
}

func TestPeerParsesByteExact(t *testing.T) {
	p, err := listenPeer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialRaw(ctx, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := messageRequest(p.Addr(), "/"+PeerID+"/x.Y", "a@1.2.3.4:5", []byte("hello"))
	r, err := c.roundTrip(msg)
	if err != nil || r.Code != 202 {
		t.Fatalf("peer answered %v, %v", r.summary(), err)
	}
	in, err := p.waitBody(ctx, 0, "x.Y", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if string(in.Req.Raw) != string(msg) || string(in.Req.RawBody) != "5\r\nhello\r\n0\r\n\r\n" {
		t.Errorf("raw %q, body %q", in.Req.Raw, in.Req.RawBody)
	}
}

// failWrites is a connection whose writes fail, as they do once the other
// end has closed.
type failWrites struct{ net.Conn }

func (failWrites) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// The suite's peer records every request a target sent even when it cannot
// answer them (docs/libprocess-wire.md §3.2): C++ closes a connection as soon as its queue drains.
func TestPeerKeepsServingAfterFailedWrite(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p := &Peer{conns: map[int]net.Conn{1: server}, ended: map[int]bool{}, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.serve(1, failWrites{server})
	defer p.wg.Wait()
	var burst []byte
	for i := 0; i < 3; i++ {
		burst = append(burst, messageRequest(ln.Addr().String(), "/"+PeerID+"/x.Y", "a@1.2.3.4:5", []byte{'0' + byte(i)})...)
	}
	if _, err := client.Write(burst); err != nil {
		t.Fatal(err)
	}
	if err := client.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.waitEnded(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n := p.mark(); n != 3 {
		t.Fatalf("peer recorded %d of 3 requests after its writes failed", n)
	}
	for i := 0; i < 3; i++ {
		if _, err := p.waitBody(ctx, 0, "x.Y", []byte{'0' + byte(i)}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}

// The suite reads heads whose lines end in a bare LF, as C++' parser does,
// keeping the raw bytes.
func TestReadHeadBareLF(t *testing.T) {
	in := "POST /conformance/x.Y HTTP/1.1\nLibprocess-From: a@1.2.3.4:5\r\nContent-Length: 2\n\nhiGET / HTTP/1.1\n\n"
	br := bufio.NewReader(strings.NewReader(in))
	r, err := readRequest(br)
	if err != nil {
		t.Fatal(err)
	}
	from, _ := r.Headers.get("Libprocess-From")
	if r.RequestLine != "POST /conformance/x.Y HTTP/1.1" || from != "a@1.2.3.4:5" || string(r.Body) != "hi" ||
		string(r.Raw) != in[:strings.Index(in, "GET")] {
		t.Fatalf("%+v", r)
	}
	if r2, err := readRequest(br); err != nil || r2.RequestLine != "GET / HTTP/1.1" || len(r2.Headers) != 0 {
		t.Fatalf("second request %+v, %v", r2, err)
	}
}
