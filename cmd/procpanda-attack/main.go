// Command procpanda-attack runs a bounded set of resource attacks against a
// pkgpandad it starts itself on loopback, and reports for each attack the
// daemon's peak resident memory, its peak number of open file descriptors
// and the latency of `GET /help` measured by a well-behaved client while
// the attack runs. It is what `make attack` runs; it is not part of
// `make test`.
//
// The attacks, run one after the other against the same daemon:
//
//   - idle: 5,000 connections opened and left silent;
//   - drip: 2,000 connections each sending a request head one byte at a
//     time, one byte every few seconds;
//   - bighead: 200 message heads announcing a 16 MiB body, then silence;
//   - senders: 4,000 PkgpandaCall messages, each from a distinct sender
//     address on which a sink listens (the daemon's replies would make it
//     dial each one);
//   - upload: 4 concurrent 256 MiB `POST /pkgpanda/api/v1` protobuf bodies;
//   - unread: 4,000 callers on 127.0.0.x whose reply endpoints accept
//     connections but never read, each sending a PkgpandaCall with a
//     256 KiB request id that the daemon answers at once (400, the id
//     echoed): its replies pile up in its outbound queues, which are bounded
//     in bytes.
//
// The daemon is started with --http-credentials (a principal of the
// attack's own); the uploads and calls authenticate, so they are served as
// an operator's would be. /help needs no credentials; /metrics/snapshot is
// read with them, as the daemon authenticates its metrics like its reads.
//
// Every connection goes to a loopback address; every loop is bounded in
// count and in time, and the daemon is killed at the end.
//
// Usage:
//
//	procpanda-attack -pkgpandad bin/pkgpandad -standin bin/pkgpanda-standin [-scale 1] [-hold 20s] [-only idle,drip]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "procpanda-attack:", err)
		os.Exit(1)
	}
}

type options struct {
	daemon, standin string
	scale           float64
	hold            time.Duration
	drip            time.Duration
	dripHold        time.Duration
	nofile          int
	settle          time.Duration
	only            map[string]bool
	keep            bool
}

// The principal the daemon is started with; uploads and calls
// authenticate as it.
const (
	principal = "ops"
	secret    = "s3cret"
)

// basicAuth is the Authorization value of the attack's principal.
func basicAuth() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(principal+":"+secret))
}

func run(args []string, stdout, stderr io.Writer) error {
	o := options{}
	fs := flag.NewFlagSet("procpanda-attack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.daemon, "pkgpandad", "bin/pkgpandad", "the daemon binary")
	fs.StringVar(&o.standin, "standin", "bin/pkgpanda-standin", "the stand-in CLI binary")
	fs.Float64Var(&o.scale, "scale", 1, "multiply every attack's size by this factor (0 < scale <= 1)")
	fs.DurationVar(&o.hold, "hold", 20*time.Second, "how long each attack is held while /help is measured")
	fs.DurationVar(&o.drip, "drip-interval", 5*time.Second, "the gap between two bytes of a slow-drip connection")
	fs.DurationVar(&o.dripHold, "drip-hold", 45*time.Second, "how long the slow-drip attack is held (longer than the daemon's per-request read deadline, so its effect shows)")
	fs.IntVar(&o.nofile, "nofile", 8192, "the daemon's RLIMIT_NOFILE (its connection caps derive from it)")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "after an attack, how long to wait at most for the daemon's descriptors to come back to the baseline")
	only := fs.String("only", "", "comma-separated attacks to run (idle, drip, bighead, senders, upload, unread); default all")
	fs.BoolVar(&o.keep, "keep", false, "keep the daemon's work directory and log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.scale <= 0 || o.scale > 1 {
		return errors.New("-scale must be in (0, 1]")
	}
	if *only != "" {
		o.only = map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			o.only[strings.TrimSpace(n)] = true
		}
	}
	raiseNofile()

	d, err := startDaemon(o)
	if err != nil {
		return err
	}
	defer d.stop(o.keep, stderr)
	fmt.Fprintf(stderr, "daemon pid %d at %s (RLIMIT_NOFILE %d), log %s\n", d.cmd.Process.Pid, d.addr, o.nofile, d.logPath)

	attacks := []attack{
		{"idle", fmt.Sprintf("%d idle connections", o.n(5000)), func(ctx context.Context, a *arena) { idleConns(ctx, a, o.n(5000)) }, 0},
		{"drip", fmt.Sprintf("%d slow-drip connections (1 byte / %s, held %s)", o.n(2000), o.drip, o.dripHold), func(ctx context.Context, a *arena) { dripConns(ctx, a, o.n(2000), o.drip) }, o.dripHold},
		{"bighead", fmt.Sprintf("rounds of %d message heads announcing 16 MiB", o.n(200)), func(ctx context.Context, a *arena) { bigHeads(ctx, a, o.n(200)) }, 0},
		{"senders", fmt.Sprintf("%d PkgpandaCalls from distinct senders", o.n(4000)), func(ctx context.Context, a *arena) { distinctSenders(ctx, a, o.n(4000)) }, 0},
		{"upload", fmt.Sprintf("4 concurrent %d MiB api/v1 bodies", o.n(256)), func(ctx context.Context, a *arena) { uploads(ctx, a, 4, int64(o.n(256))<<20) }, 0},
		{"unread", fmt.Sprintf("%d callers whose reply endpoints never read, 256 KiB replies", o.n(4000)), func(ctx context.Context, a *arena) { unreadReplies(ctx, a, o.n(4000), 256<<10) }, 0},
	}
	base := d.sample()
	fmt.Fprintf(stdout, "baseline: RSS %.1f MB, %d fds\n\n", mb(base.rss), base.fds)
	fmt.Fprintln(stdout, "| attack | peak RSS | peak fds | /help p50 | /help p99 | /help max | /help failed | closed by daemon | daemon alive |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|---|")
	failed := false
	for _, at := range attacks {
		if o.only != nil && !o.only[at.name] {
			continue
		}
		hold := o.hold
		if at.hold > 0 {
			hold = at.hold
		}
		r := d.runAttack(at, hold)
		fmt.Fprintf(stdout, "| %s | %.1f MB | %d | %s | %s | %s | %d/%d | %d/%d | %v |\n",
			at.desc, mb(r.peak.rss), r.peak.fds, ms(r.lat.p(0.50)), ms(r.lat.p(0.99)), ms(r.lat.max()),
			r.lat.failed, r.lat.total(), r.closed, r.opened, r.alive)
		if r.note != "" {
			fmt.Fprintf(stderr, "%s: %s\n", at.name, r.note)
		}
		if !r.alive {
			failed = true
			break
		}
		d.settle(base, o.settle)
	}
	if failed {
		return errors.New("the daemon died during an attack")
	}
	return nil
}

func (o options) n(full int) int { return max(1, int(float64(full)*o.scale)) }

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// raiseNofile lifts this process' descriptor limit so the attacks are not
// limited by the attacker's own table.
func raiseNofile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// daemon is the pkgpandad under attack.
type daemon struct {
	cmd     *exec.Cmd
	addr    string
	dir     string
	logPath string
	exited  chan struct{}
}

func startDaemon(o options) (*daemon, error) {
	dir, err := os.MkdirTemp("", "procpanda-attack-")
	if err != nil {
		return nil, fmt.Errorf("creating the work directory: %w", err)
	}
	logPath := filepath.Join(dir, "pkgpandad.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the daemon log: %w", err)
	}
	daemonPath, err := filepath.Abs(o.daemon)
	if err != nil {
		return nil, err
	}
	standin, err := filepath.Abs(o.standin)
	if err != nil {
		return nil, err
	}
	creds := filepath.Join(dir, "credentials.json")
	if err := os.WriteFile(creds, []byte(`{"credentials":[{"principal":"`+principal+`","secret":"`+secret+`"}]}`), 0o600); err != nil {
		return nil, fmt.Errorf("writing the daemon's credentials: %w", err)
	}
	// The daemon's limits derive from its descriptor limit: set it the way
	// an operator's unit file would, then exec.
	script := fmt.Sprintf("ulimit -n %d && exec \"$0\" \"$@\"", o.nofile)
	cmd := exec.Command("/bin/sh", "-c", script, daemonPath,
		"--pkgpanda", standin, "--demo", filepath.Join(dir, "demo"),
		"--tmp-dir", dir, "--log-level", "warn", "--http-credentials", creds)
	cmd.Env = append(os.Environ(), "LIBPROCESS_IP=127.0.0.1", "LIBPROCESS_PORT=0")
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", daemonPath, err)
	}
	d := &daemon{cmd: cmd, dir: dir, logPath: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(d.exited) }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			return nil, fmt.Errorf("the daemon printed no UPID; see %s", logPath)
		}
		_, hostPort, found := strings.Cut(l, "@")
		if !found {
			return nil, fmt.Errorf("the daemon printed %q, not a UPID", l)
		}
		d.addr = hostPort
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("the daemon did not start within 30s; see %s", logPath)
	}
	return d, nil
}

func (d *daemon) stop(keep bool, stderr io.Writer) {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	if keep {
		fmt.Fprintln(stderr, "kept", d.dir)
		return
	}
	_ = os.RemoveAll(d.dir)
}

func (d *daemon) alive() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// usage is one reading of the daemon's resources.
type usage struct {
	rss int64
	fds int
}

func (d *daemon) sample() usage {
	var u usage
	pid := d.cmd.Process.Pid
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					u.rss = kb << 10
				}
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		u.fds = len(ents)
	}
	return u
}

// settle waits, bounded, until the daemon's descriptors are back near the
// baseline, so one attack's leftovers do not count against the next.
func (d *daemon) settle(base usage, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && d.alive() {
		if d.sample().fds <= base.fds+16 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type attack struct {
	name, desc string
	fn         func(ctx context.Context, a *arena)
	hold       time.Duration // 0: the -hold flag
}

// arena holds an attack's connections so they can be counted and closed.
type arena struct {
	addr   string
	mu     sync.Mutex
	conns  []net.Conn
	opened atomic.Int64
	closed atomic.Int64 // connections the daemon closed on us
	notes  []string
}

func (a *arena) dial() (net.Conn, error) {
	c, err := net.DialTimeout("tcp", a.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	a.opened.Add(1)
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
	return c, nil
}

// watch reads c until the daemon closes it (or ctx ends), counting the
// daemon's close.
func (a *arena) watch(ctx context.Context, c net.Conn) {
	go func() {
		buf := make([]byte, 512)
		for {
			_, err := c.Read(buf)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
					a.closed.Add(1)
				}
				return
			}
		}
	}()
}

func (a *arena) note(format string, args ...any) {
	a.mu.Lock()
	a.notes = append(a.notes, fmt.Sprintf(format, args...))
	a.mu.Unlock()
}

func (a *arena) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.conns {
		_ = c.Close()
	}
	a.conns = nil
}

type result struct {
	peak           usage
	lat            *latencies
	opened, closed int64
	alive          bool
	note           string
}

func (d *daemon) runAttack(at attack, hold time.Duration) result {
	ctx, cancel := context.WithTimeout(context.Background(), hold)
	defer cancel()
	a := &arena{addr: d.addr}
	lat := &latencies{}
	var wg sync.WaitGroup
	var peak usage
	var pmu sync.Mutex
	wg.Add(2)
	go func() { defer wg.Done(); probeHelp(ctx, d.addr, lat) }()
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			u := d.sample()
			pmu.Lock()
			peak.rss = max(peak.rss, u.rss)
			peak.fds = max(peak.fds, u.fds)
			pmu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	done := make(chan struct{})
	go func() { at.fn(ctx, a); close(done) }()
	<-ctx.Done()
	<-done
	wg.Wait()
	a.closeAll()
	return result{peak: peak, lat: lat, opened: a.opened.Load(), closed: a.closed.Load(), alive: d.alive(), note: strings.Join(a.notes, "; ")}
}

// latencies collects /help round trips.
type latencies struct {
	mu     sync.Mutex
	d      []time.Duration
	failed int
}

func (l *latencies) add(d time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		l.failed++
		return
	}
	l.d = append(l.d, d)
}

func (l *latencies) total() int { return len(l.d) + l.failed }

func (l *latencies) p(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), l.d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func (l *latencies) max() time.Duration { return l.p(1) }

// probeHelp asks for /help every 20 ms over one keep-alive connection (a
// new one after any failure), as a monitoring client would.
func probeHelp(ctx context.Context, addr string, lat *latencies) {
	req := []byte("GET /help HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: curl/8\r\n\r\n")
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			_ = c.Close()
		}
	}()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for ctx.Err() == nil {
		start := time.Now()
		ok := func() bool {
			if c == nil {
				var err error
				c, err = net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return false
				}
				br = bufio.NewReader(c)
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(req); err != nil {
				return false
			}
			return readResponse(br) == 200
		}()
		lat.add(time.Since(start), ok)
		if !ok && c != nil {
			_ = c.Close()
			c = nil
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// readResponse reads one HTTP/1.1 response with a Content-Length or chunked
// body and returns its status (0 on any failure).
func readResponse(br *bufio.Reader) int {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	status, _ := strconv.Atoi(f[1])
	cl, chunked := int64(0), false
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return 0
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		k, v, _ := strings.Cut(h, ":")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "content-length":
			cl, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		case "transfer-encoding":
			chunked = strings.Contains(strings.ToLower(v), "chunked")
		}
	}
	if chunked {
		for {
			sz, err := br.ReadString('\n')
			if err != nil {
				return 0
			}
			n, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(sz, ";", 2)[0]), 16, 64)
			if err != nil {
				return 0
			}
			if _, err := io.CopyN(io.Discard, br, n+2); err != nil {
				return 0
			}
			if n == 0 {
				return status
			}
		}
	}
	if _, err := io.CopyN(io.Discard, br, cl); err != nil {
		return 0
	}
	return status
}

// spread runs f for n items over a few goroutines, stopping when ctx ends.
func spread(ctx context.Context, n int, f func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

func idleConns(ctx context.Context, a *arena, n int) {
	var failed atomic.Int64
	spread(ctx, n, func(int) {
		c, err := a.dial()
		if err != nil {
			failed.Add(1)
			return
		}
		a.watch(ctx, c)
	})
	if f := failed.Load(); f > 0 {
		a.note("%d dials failed", f)
	}
	<-ctx.Done()
}

func dripConns(ctx context.Context, a *arena, n int, every time.Duration) {
	head := []byte("POST /pkgpanda/mesos.internal.PkgpandaCall HTTP/1.1\r\nLibprocess-From: drip@127.0.0.1:1\r\nContent-Length: 4\r\n\r\nxxxx")
	var mu sync.Mutex
	var conns []net.Conn
	spread(ctx, n, func(int) {
		c, err := a.dial()
		if err != nil {
			return
		}
		a.watch(ctx, c)
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	})
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		mu.Lock()
		for _, c := range conns {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(head[i%len(head) : i%len(head)+1])
		}
		mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// bigHeads opens rounds of n connections, each sending a message head
// that announces a 16 MiB body followed by a little of that body, holds
// them for a moment, and starts the next round: memory reserved for
// announced bodies would pile up round after round.
func bigHeads(ctx context.Context, a *arena, n int) {
	head := []byte("POST /pkgpanda/mesos.internal.PkgpandaCall HTTP/1.1\r\n" +
		"Libprocess-From: big@127.0.0.1:1\r\nContent-Length: 16777216\r\n\r\n")
	head = append(head, bytes.Repeat([]byte{'b'}, 8<<10)...)
	rounds := 0
	for ctx.Err() == nil {
		var mu sync.Mutex
		var round []net.Conn
		spread(ctx, n, func(int) {
			c, err := a.dial()
			if err != nil {
				return
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(head)
			mu.Lock()
			round = append(round, c)
			mu.Unlock()
		})
		rounds++
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		for _, c := range round {
			_ = c.Close()
		}
	}
	a.note("%d rounds", rounds)
}

// distinctSenders sends n PkgpandaCall messages, each from a sender whose
// address is one of n sink listeners on loopback; it counts the
// connections the daemon opens to the sinks.
func distinctSenders(ctx context.Context, a *arena, n int) {
	var sinks []net.Listener
	var dialed atomic.Int64
	defer func() {
		for _, l := range sinks {
			_ = l.Close()
		}
		a.note("the daemon opened %d connections to %d sender addresses", dialed.Load(), len(sinks))
	}()
	var accepted sync.WaitGroup
	var sinkConns sync.Map
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			a.note("opened %d sinks: %v", len(sinks), err)
			break
		}
		sinks = append(sinks, l)
		accepted.Add(1)
		go func() {
			defer accepted.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				dialed.Add(1)
				sinkConns.Store(c, true)
				go func() { _, _ = io.Copy(io.Discard, c) }()
			}
		}()
	}
	defer func() {
		sinkConns.Range(func(k, _ any) bool { _ = k.(net.Conn).Close(); return true })
	}()
	// An ACTIVE call (request id "x"), authenticated: the daemon answers
	// each sender with a PkgpandaResponse.
	body := appendCall(nil, 2, "x")
	var buf bytes.Buffer
	c, err := a.dial()
	if err != nil {
		a.note("dial: %v", err)
		return
	}
	a.watch(ctx, c)
	for i, l := range sinks {
		if ctx.Err() != nil {
			break
		}
		from := fmt.Sprintf("s%d@%s", i, l.Addr())
		fmt.Fprintf(&buf, "POST /pkgpanda/mesos.internal.PkgpandaCall HTTP/1.1\r\nLibprocess-From: %s\r\nContent-Length: %d\r\n\r\n%s", from, len(body), body)
		if buf.Len() > 64<<10 || i == len(sinks)-1 {
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(buf.Bytes()); err != nil {
				a.note("write after %d messages: %v", i, err)
				break
			}
			buf.Reset()
		}
	}
	<-ctx.Done()
}

// uploads sends k concurrent api/v1 ADD calls whose protobuf tarball field
// is size bytes, streamed from memory-light generators.
func uploads(ctx context.Context, a *arena, k int, size int64) {
	var wg sync.WaitGroup
	var statuses sync.Map
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := a.dial()
			if err != nil {
				return
			}
			id := fmt.Sprintf("attack%d--1", i)
			var pre bytes.Buffer
			pre.Write([]byte{0x08, 0x05})              // type: ADD
			pre.WriteByte(0x1a)                        // package_ids
			pre.WriteByte(byte(len(id)))               //
			pre.WriteString(id)                        //
			pre.WriteByte(0x2a)                        // tarball
			pre.Write(appendVarint(nil, uint64(size))) //
			total := int64(pre.Len()) + size
			head := fmt.Sprintf("POST /pkgpanda/api/v1 HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n", a.addr, basicAuth(), total)
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Minute))
			go func() {
				<-ctx.Done()
				_ = c.SetDeadline(time.Now())
			}()
			if _, err := c.Write(append([]byte(head), pre.Bytes()...)); err != nil {
				return
			}
			chunk := bytes.Repeat([]byte("procpanda"), 64<<10/9)
			for sent := int64(0); sent < size && ctx.Err() == nil; {
				n := min(int64(len(chunk)), size-sent)
				if _, err := c.Write(chunk[:n]); err != nil {
					statuses.Store(i, "write failed after "+strconv.FormatInt(sent>>20, 10)+" MiB")
					return
				}
				sent += n
			}
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			st := readResponse(bufio.NewReader(c))
			statuses.Store(i, strconv.Itoa(st))
		}(i)
	}
	wg.Wait()
	var parts []string
	statuses.Range(func(k, v any) bool { parts = append(parts, fmt.Sprintf("#%v: %v", k, v)); return true })
	sort.Strings(parts)
	a.note("upload answers: %s", strings.Join(parts, ", "))
	<-ctx.Done()
}

// appendCall appends a PkgpandaCall of type typ (field 1) with requestID
// (field 2) and the attack's credentials (field 7, authorization).
func appendCall(b []byte, typ uint64, requestID string) []byte {
	b = append(b, 0x08)
	b = appendVarint(b, typ)
	b = append(b, 0x12)
	b = appendVarint(b, uint64(len(requestID)))
	b = append(b, requestID...)
	auth := basicAuth()
	b = append(b, 0x3a)
	b = appendVarint(b, uint64(len(auth)))
	return append(b, auth...)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
