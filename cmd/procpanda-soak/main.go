// Command procpanda-soak sends a long stream of numbered messages between
// two libprocess runtimes over loopback while restarting the receiving
// runtime several times, and reports what libprocess promises about such a
// stream: nothing is duplicated, nothing is reordered, and messages are lost
// only at restart boundaries (delivery is at most once). It is what
// `make soak` runs; it is not part of `make test`.
//
// Each message carries its sequence number. The receiver records every
// number it is handed, per incarnation of its runtime. A number seen twice
// is a duplicate; a number smaller than the previous one of the same
// incarnation is a reordering (the sender keeps one connection per peer, so
// within an incarnation this is the order on one connection); a number
// missing between two numbers of the same incarnation is a loss inside an
// incarnation, which must not happen. Numbers missing between the last
// number of one incarnation and the first of the next were in flight when
// the receiver stopped: those are the losses at restart boundaries.
//
// Usage:
//
//	procpanda-soak [-messages 1000000] [-restarts 10] [-body 64]
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/procpanda/procpanda/libprocess"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "procpanda-soak:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("procpanda-soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	total := fs.Int("messages", 1_000_000, "messages to send")
	restarts := fs.Int("restarts", 10, "times the receiving runtime is restarted during the stream")
	bodySize := fs.Int("body", 64, "bytes per message body (at least 8)")
	window := fs.Int("window", 4096, "messages the sender keeps in flight at most while the receiver keeps up")
	settle := fs.Duration("settle", 10*time.Second, "how long to wait at the end for messages still in flight")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *total <= 0 || *restarts < 0 || *bodySize < 8 {
		return errors.New("-messages must be positive, -restarts non-negative, -body at least 8")
	}
	rec := newRecorder(*total)
	recv, err := startReceiver(0, rec)
	if err != nil {
		return err
	}
	port := recv.port

	cfg := libprocess.DefaultConfig()
	cfg.IP = "127.0.0.1"
	srt, err := libprocess.New(cfg)
	if err != nil {
		return err
	}
	if err := srt.Start(); err != nil {
		return err
	}
	defer func() { _ = srt.Shutdown(context.Background()) }()
	sender := libprocess.NewProcess("sender")
	if _, err := srt.Spawn(sender); err != nil {
		return err
	}
	to := libprocess.UPID{ID: "receiver", Host: "127.0.0.1", Port: uint16(port)}

	start := time.Now()
	every := *total / (*restarts + 1)
	var refused, stalls int64
	var baseSeq, baseDelivered, restarted int
	nextRestart := every
	for seq := 0; seq < *total; {
		// Keep at most window messages in flight (counted since the last
		// restart), so a restart cuts into a bounded stream rather than a
		// queue of everything sent.
		if seq-baseSeq-(rec.delivered()-baseDelivered) > *window {
			stall := time.Now()
			for seq-baseSeq-(rec.delivered()-baseDelivered) > *window {
				if time.Since(stall) > 5*time.Second {
					stalls++
					break
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
		if *restarts > 0 && seq >= nextRestart && restarted < *restarts {
			restarted++
			nextRestart += every
			// Restart while the stream flows: the sender goes on sending
			// into its queue while the receiver is down.
			old := recv
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := old.rt.Shutdown(ctx); err != nil {
				fmt.Fprintln(stderr, "receiver shutdown:", err)
			}
			cancel()
			nr, err := startReceiver(port, rec)
			if err != nil {
				return fmt.Errorf("restarting the receiver: %w", err)
			}
			recv = nr
			baseSeq, baseDelivered = seq, rec.delivered()
		}
		body := make([]byte, *bodySize)
		binary.BigEndian.PutUint64(body, uint64(seq))
		if err := sender.Send(to, "soak", body); err != nil {
			if errors.Is(err, libprocess.ErrQueueFull) {
				// The message was never queued: send the same number
				// again once the queue drains.
				refused++
				time.Sleep(200 * time.Microsecond)
				continue
			}
			return fmt.Errorf("send %d: %w", seq, err)
		}
		seq++
	}
	sent := time.Since(start)
	// Wait until nothing more arrives for a while (or all arrived).
	deadline := time.Now().Add(*settle)
	last, lastChange := rec.delivered(), time.Now()
	for time.Now().Before(deadline) && last < *total && time.Since(lastChange) < 2*time.Second {
		time.Sleep(50 * time.Millisecond)
		if n := rec.delivered(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = recv.rt.Shutdown(ctx)

	r := rec.report()
	fmt.Fprintf(stdout, "| messages sent | restarts | delivered | lost at restart boundaries | lost inside an incarnation | duplicated | reordered | send refused (queue full, resent) | send time | msgs/s |\n")
	fmt.Fprintf(stdout, "|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(stdout, "| %d | %d | %d | %d | %d | %d | %d | %d | %.1fs | %.0f |\n",
		*total, restarted, r.delivered, r.lostBoundary, r.lostInside, r.duplicated, r.reordered, refused,
		sent.Seconds(), float64(*total)/sent.Seconds())
	if stalls > 0 {
		fmt.Fprintf(stderr, "the sender waited 5s for deliveries %d times\n", stalls)
	}
	if r.duplicated != 0 || r.reordered != 0 || r.lostInside != 0 {
		return errors.New("the stream broke libprocess' guarantees (duplicates, reordering or losses inside an incarnation)")
	}
	return nil
}

// receiver is one incarnation of the receiving runtime.
type receiver struct {
	rt   *libprocess.Runtime
	port int
}

func startReceiver(port int, rec *recorder) (*receiver, error) {
	cfg := libprocess.DefaultConfig()
	cfg.IP = "127.0.0.1"
	cfg.Port = port
	rt, err := libprocess.New(cfg)
	if err != nil {
		return nil, err
	}
	// The port was just released by the previous incarnation; retry
	// briefly while the kernel lets go of it.
	var serr error
	for i := 0; i < 100; i++ {
		if serr = rt.Start(); serr == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
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
		return nil, err
	}
	return &receiver{rt: rt, port: int(rt.Addr().Port)}, nil
}

// recorder keeps what the receiver was handed.
type recorder struct {
	mu    sync.Mutex
	total int
	seen  []uint8 // times each number was delivered (saturating)
	inc   []*incarnation
	count int
}

// incarnation is what one receiver runtime was handed, in order.
type incarnation struct {
	first, last int // first and last number delivered; -1 when none
	reordered   int
}

func newRecorder(total int) *recorder { return &recorder{total: total, seen: make([]uint8, total)} }

func (r *recorder) newIncarnation() *incarnation {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := &incarnation{first: -1, last: -1}
	r.inc = append(r.inc, in)
	return in
}

func (r *recorder) record(in *incarnation, seq int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < 0 || seq >= r.total {
		return
	}
	if r.seen[seq] < 255 {
		r.seen[seq]++
	}
	r.count++
	if in.last >= 0 && seq < in.last {
		in.reordered++
	}
	if in.first < 0 {
		in.first = seq
	}
	in.last = max(in.last, seq)
}

func (r *recorder) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

type report struct {
	delivered, duplicated, reordered, lostBoundary, lostInside int
}

// report classifies every number: delivered once, duplicated, or missing;
// a missing number lies either inside the span of one incarnation (a loss
// libprocess must not cause) or between incarnations (in flight at a
// restart).
func (r *recorder) report() report {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rep report
	inside := make([]bool, r.total)
	for _, in := range r.inc {
		rep.reordered += in.reordered
		if in.first < 0 {
			continue
		}
		for s := in.first; s <= in.last; s++ {
			inside[s] = true
		}
	}
	for s, n := range r.seen {
		switch {
		case n == 0 && inside[s]:
			rep.lostInside++
		case n == 0:
			rep.lostBoundary++
		default:
			rep.delivered++
			if n > 1 {
				rep.duplicated += int(n) - 1
			}
		}
	}
	return rep
}
