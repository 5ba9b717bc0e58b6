package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/procpanda/procpanda/libprocess"
)

// config is one soak run.
type config struct {
	messages int           // numbered messages to send
	restarts int           // receiver restarts, spread evenly over the stream
	body     int           // bytes per message body, at least 8
	window   int           // messages in flight at most: sent after the last restart and above the highest delivered
	stall    time.Duration // the longest wait for a delivery with the window full, or for the sender to see a restart
	settle   time.Duration // at the end, how long without a delivery before the rest counts as lost
}

func (c config) validate() error {
	if c.messages <= 0 || c.restarts < 0 || c.body < 8 || c.window <= 0 || c.stall <= 0 || c.settle <= 0 {
		return errors.New("messages and window must be positive, restarts non-negative, body at least 8, stall and settle positive")
	}
	return nil
}

// restartLoss is what one restart cost.
type restartLoss struct {
	at       int // the first message sent after the new receiver was up
	inFlight int // messages sent before the restart that no receiver was handed
	after    int // messages sent after the restart that no receiver was handed (must be 0)
}

// result is what a soak run observed.
type result struct {
	sent       int
	delivered  int           // numbers handed to a receiver at least once
	duplicated int           // extra deliveries of a number
	reordered  int           // deliveries of a number below the previous one of the same incarnation
	lostInside int           // numbers missing between two delivered by the same incarnation (must be 0)
	lostTail   int           // numbers sent after the last restart and never delivered (must be 0)
	restarts   []restartLoss // in order
	resent     int           // sends refused by a full queue and made again
	sendTime   time.Duration // from the first send to the last
	wall       time.Duration // the whole run, receivers' starts and shutdowns included
}

// lostAtRestarts sums the in-flight losses of every restart.
func (r *result) lostAtRestarts() int {
	n := 0
	for _, l := range r.restarts {
		n += l.inFlight
	}
	return n
}

// broken says which of libprocess' promises the run broke, if any.
func (r *result) broken() error {
	after := 0
	for _, l := range r.restarts {
		after += l.after
	}
	if r.duplicated != 0 || r.reordered != 0 || r.lostInside != 0 || r.lostTail != 0 || after != 0 {
		return fmt.Errorf("the stream broke libprocess' promises: %d duplicated, %d reordered, %d lost inside an incarnation, %d lost after a restart, %d lost after the last restart",
			r.duplicated, r.reordered, r.lostInside, after, r.lostTail)
	}
	return nil
}

// print writes the result as a table, one row per restart after it.
func (r *result) print(w io.Writer) {
	fmt.Fprintln(w, "| messages | restarts | delivered | lost at restarts (in flight) | lost after a restart | lost inside an incarnation | lost after the last restart | duplicated | reordered | resent (queue full) | send time | wall time | msgs/s |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	after := 0
	for _, l := range r.restarts {
		after += l.after
	}
	fmt.Fprintf(w, "| %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %.1fs | %.1fs | %.0f |\n",
		r.sent, len(r.restarts), r.delivered, r.lostAtRestarts(), after, r.lostInside, r.lostTail,
		r.duplicated, r.reordered, r.resent, r.sendTime.Seconds(), r.wall.Seconds(), float64(r.sent)/r.sendTime.Seconds())
	if len(r.restarts) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "| restart | at message | lost in flight (sent before) | lost after (sent after) |\n|---|---|---|---|\n")
		for i, l := range r.restarts {
			fmt.Fprintf(w, "| %d | %d | %d | %d |\n", i+1, l.at, l.inFlight, l.after)
		}
	}
}

// soak streams cfg.messages numbered messages from one runtime to
// another over loopback, restarting the receiving runtime cfg.restarts
// times, and classifies every number.
//
// Flow control: at most cfg.window messages are in flight, counting those
// sent after the last restart and above the highest number delivered.
// Delivery is in order, so every number below the highest delivered is
// settled (arrived or lost), and a restart settles every number sent
// before it (it arrives at the new receiver or never): losses never hold
// the window.
//
// A restart: the receiver shuts down; the sender, linked to it, waits for
// its runtime to report the connection's end (an exited notification),
// so that nothing it sends afterwards can go to the old connection; the
// new receiver starts on the same port; the sender links again and goes
// on. Numbers sent before the restart may be lost (they were in flight);
// numbers sent after it must arrive.
func soak(ctx context.Context, cfg config, log io.Writer) (*result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	rec := newRecorder(cfg.messages)
	recv, err := startReceiver(ctx, 0, rec)
	if err != nil {
		return nil, err
	}
	defer func() { recv.stop(log) }()
	port := recv.port

	scfg := libprocess.DefaultConfig()
	scfg.IP = "127.0.0.1"
	srt, err := libprocess.New(scfg)
	if err != nil {
		return nil, fmt.Errorf("creating the sender's runtime: %w", err)
	}
	if err := srt.Start(); err != nil {
		return nil, fmt.Errorf("starting the sender's runtime: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srt.Shutdown(sctx)
	}()
	exited := make(chan struct{}, 16)
	sender := libprocess.NewProcess("sender")
	sender.OnExited(func(libprocess.UPID) { exited <- struct{}{} })
	if _, err := srt.Spawn(sender); err != nil {
		return nil, fmt.Errorf("spawning the sender: %w", err)
	}
	to := libprocess.UPID{ID: "receiver", Host: "127.0.0.1", Port: uint16(port)}
	if err := sender.Link(to); err != nil {
		return nil, fmt.Errorf("linking to the receiver: %w", err)
	}

	res := &result{}
	every := cfg.messages / (cfg.restarts + 1)
	nextRestart := every
	floor := 0 // the first number sent after the last restart
	sendStart := time.Now()
	for seq := 0; seq < cfg.messages; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := rec.waitBelow(ctx, func(maxSeen int) bool { return seq-max(floor, maxSeen+1) < cfg.window }, cfg.stall); err != nil {
			return nil, fmt.Errorf("message %d: %w", seq, err)
		}
		if len(res.restarts) < cfg.restarts && seq >= nextRestart {
			nextRestart += every
			nr, err := restart(ctx, recv, port, rec, exited, cfg.stall, log)
			if err != nil {
				return nil, err
			}
			recv = nr
			if err := sender.Link(to); err != nil {
				return nil, fmt.Errorf("linking to the restarted receiver: %w", err)
			}
			res.restarts = append(res.restarts, restartLoss{at: seq})
			floor = seq
		}
		// Each message has a body of its own: the runtime holds it until
		// it is written.
		body := make([]byte, cfg.body)
		binary.BigEndian.PutUint64(body, uint64(seq))
		if err := sender.Send(to, "soak", body); err != nil {
			if errors.Is(err, libprocess.ErrQueueFull) || errors.Is(err, libprocess.ErrQueueBytes) {
				// Never queued: send the same number again once something
				// was delivered.
				res.resent++
				if err := rec.waitBelow(ctx, func(int) bool { return false }, time.Millisecond); err != nil && !errors.Is(err, errStalled) {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("send %d: %w", seq, err)
		}
		seq++
	}
	res.sendTime = time.Since(sendStart)
	res.sent = cfg.messages

	// Wait for the last number, or until nothing arrives for cfg.settle.
	for !rec.has(cfg.messages - 1) {
		before := rec.count()
		err := rec.waitBelow(ctx, func(int) bool { return rec.count() != before }, cfg.settle)
		if errors.Is(err, errStalled) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	recv.stop(log)
	rec.classify(res)
	res.wall = time.Since(start)
	return res, nil
}

// restart stops old, waits until the sender's runtime reported the
// connection's end, and starts a new receiver on port.
func restart(ctx context.Context, old *receiver, port int, rec *recorder, exited <-chan struct{}, wait time.Duration, log io.Writer) (*receiver, error) {
	old.stop(log)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		return nil, fmt.Errorf("the sender's runtime did not report the receiver's exit within %s", wait)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	nr, err := startReceiver(ctx, port, rec)
	if err != nil {
		return nil, fmt.Errorf("restarting the receiver: %w", err)
	}
	return nr, nil
}

// receiver is one incarnation of the receiving runtime.
type receiver struct {
	rt      *libprocess.Runtime
	port    int
	stopped bool
}

// startReceiver starts an incarnation on port (0: any), retrying while
// the kernel still holds the port of the previous one.
func startReceiver(ctx context.Context, port int, rec *recorder) (*receiver, error) {
	cfg := libprocess.DefaultConfig()
	cfg.IP = "127.0.0.1"
	cfg.Port = port
	rt, err := libprocess.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a receiver: %w", err)
	}
	var serr error
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for i := 0; i < 250; i++ {
		if serr = rt.Start(); serr == nil {
			break
		}
		select {
		case <-retry.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if serr != nil {
		return nil, fmt.Errorf("starting the receiver on port %d: %w", port, serr)
	}
	inc := rec.newIncarnation()
	p := libprocess.NewProcess("receiver")
	p.Install("soak", func(m *libprocess.Message) {
		if len(m.Body) >= 8 {
			rec.record(inc, int(binary.BigEndian.Uint64(m.Body)))
		}
	})
	if _, err := rt.Spawn(p); err != nil {
		return nil, fmt.Errorf("spawning the receiver: %w", err)
	}
	return &receiver{rt: rt, port: int(rt.Addr().Port)}, nil
}

// stop shuts the incarnation down once.
func (r *receiver) stop(log io.Writer) {
	if r.stopped {
		return
	}
	r.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.rt.Shutdown(ctx); err != nil {
		fmt.Fprintln(log, "receiver shutdown:", err)
	}
}

// errStalled is waitBelow's error when its wait ran out.
var errStalled = errors.New("no delivery")

// recorder keeps what the receivers were handed.
type recorder struct {
	mu      sync.Mutex
	total   int
	seen    []uint8 // times each number was delivered (saturating)
	inc     []*incarnation
	n       int // deliveries
	maxSeen int // highest number delivered; -1 before any
	wake    chan struct{}
}

// incarnation is what one receiver runtime was handed, in order.
type incarnation struct {
	first, last int // first and highest number delivered; -1 when none
	reordered   int
}

func newRecorder(total int) *recorder {
	return &recorder{total: total, seen: make([]uint8, total), maxSeen: -1, wake: make(chan struct{}, 1)}
}

func (r *recorder) newIncarnation() *incarnation {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := &incarnation{first: -1, last: -1}
	r.inc = append(r.inc, in)
	return in
}

func (r *recorder) record(in *incarnation, seq int) {
	r.mu.Lock()
	if seq >= 0 && seq < r.total {
		if r.seen[seq] < 255 {
			r.seen[seq]++
		}
		r.n++
		if in.last >= 0 && seq < in.last {
			in.reordered++
		}
		if in.first < 0 {
			in.first = seq
		}
		in.last = max(in.last, seq)
		r.maxSeen = max(r.maxSeen, seq)
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *recorder) has(seq int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[seq] > 0
}

// waitBelow waits until ok(highest number delivered) holds, woken by
// deliveries; it fails with errStalled when no delivery made it hold
// within limit.
func (r *recorder) waitBelow(ctx context.Context, ok func(maxSeen int) bool, limit time.Duration) error {
	var t *time.Timer
	for {
		r.mu.Lock()
		m := r.maxSeen
		r.mu.Unlock()
		if ok(m) {
			if t != nil {
				t.Stop()
			}
			return nil
		}
		if t == nil {
			t = time.NewTimer(limit)
			defer t.Stop()
		}
		select {
		case <-r.wake:
		case <-t.C:
			return fmt.Errorf("%w for %s", errStalled, limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// classify counts every number into res: delivered (and duplicated), or
// missing. A missing number inside the span of one incarnation is a loss
// libprocess must not cause. Any other lies before the first delivery of
// some later incarnation: it was lost at that incarnation's restart —
// in flight if it was sent before the restart, a broken promise if after.
// A missing number after every delivery was lost after the last restart.
func (r *recorder) classify(res *result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	inside := make([]bool, r.total)
	for _, in := range r.inc {
		res.reordered += in.reordered
		if in.first < 0 {
			continue
		}
		for s := in.first; s <= in.last; s++ {
			inside[s] = true
		}
	}
	for s, n := range r.seen {
		switch {
		case n > 0:
			res.delivered++
			res.duplicated += int(n) - 1
		case inside[s]:
			res.lostInside++
		default:
			j := r.nextIncarnation(s)
			switch {
			case j == 0: // before the first receiver's first delivery
				res.lostInside++
				continue
			case j < 0 || j > len(res.restarts):
				res.lostTail++
				continue
			}
			l := &res.restarts[j-1] // incarnation j began with restart j
			if s >= l.at {
				l.after++
			} else {
				l.inFlight++
			}
		}
	}
}

// nextIncarnation returns the index of the first incarnation whose first
// delivery is above s, or -1.
func (r *recorder) nextIncarnation(s int) int {
	for j, in := range r.inc {
		if in.first > s {
			return j
		}
	}
	return -1
}
