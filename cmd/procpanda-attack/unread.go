package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// unreadReplies makes the daemon answer n callers that never read their
// answers. Each caller is a listener on 127.0.0.x (x from 2 to 251, or
// 127.0.0.1 where only that is configured) that accepts connections and
// holds them unread; its receive buffer and
// segment size are set small, so the kernel takes only some tens of KiB
// of what the daemon writes and the rest stays in the daemon's outbound
// queue. Each caller sends one authenticated GET_PACKAGE call without a
// package id and with a request id of idBytes: pkgpanda answers 400 at
// once with the id echoed, so each answer is about idBytes. The calls go
// over four connections. While the attack runs, the daemon's outbound
// metrics are read every half second; the note gives their peaks.
func unreadReplies(ctx context.Context, a *arena, n, idBytes int) {
	var held sync.Map // accepted connections, never read
	var dialed, listenFailed atomic.Int64
	var sinks []net.Listener
	defer func() {
		for _, l := range sinks {
			_ = l.Close()
		}
		held.Range(func(k, _ any) bool { _ = k.(net.Conn).Close(); return true })
	}()
	lc := net.ListenConfig{Control: smallReceiver}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		l, err := lc.Listen(ctx, "tcp", fmt.Sprintf("127.0.0.%d:0", 2+i%250))
		if err != nil {
			// Where only 127.0.0.1 is configured (macOS), all share it.
			l, err = lc.Listen(ctx, "tcp", "127.0.0.1:0")
		}
		if err != nil {
			listenFailed.Add(1)
			continue
		}
		sinks = append(sinks, l)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				dialed.Add(1)
				held.Store(c, true)
			}
		}()
	}

	peaks := &metricPeaks{}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		peaks.watch(ctx, a.addr, 500*time.Millisecond)
	}()

	id := strings.Repeat("r", idBytes)
	call := appendCall(nil, 3, id) // GET_PACKAGE with no package id: 400 at once
	var sent atomic.Int64
	var wg sync.WaitGroup
	const conns = 4
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c, err := a.dial()
			if err != nil {
				a.note("dial: %v", err)
				return
			}
			a.watch(ctx, c)
			var buf bytes.Buffer
			for i := w; i < len(sinks) && ctx.Err() == nil; i += conns {
				buf.Reset()
				fmt.Fprintf(&buf, "POST /pkgpanda/mesos.internal.PkgpandaCall HTTP/1.1\r\nLibprocess-From: c%d@%s\r\nContent-Length: %d\r\n\r\n", i, sinks[i].Addr(), len(call))
				buf.Write(call)
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(buf.Bytes()); err != nil {
					a.note("write after %d calls: %v", sent.Load(), err)
					return
				}
				sent.Add(1)
			}
		}(w)
	}
	wg.Wait()
	<-ctx.Done()
	<-watchDone
	if f := listenFailed.Load(); f > 0 {
		a.note("%d listeners failed", f)
	}
	a.note("%d calls sent; the daemon opened %d connections to %d reply endpoints; %s", sent.Load(), dialed.Load(), len(sinks), peaks)
}

// smallReceiver sets a listening socket's receive buffer and maximum
// segment size small (accepted sockets inherit both), so a peer writing
// to an unread connection gets little into the kernel.
func smallReceiver(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096); serr != nil {
			return
		}
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
	})
	if err != nil {
		return err
	}
	return serr
}

// metricPeaks follows the daemon's outbound metrics during an attack.
type metricPeaks struct {
	mu                             sync.Mutex
	queuedBytes, budget            float64 // peak of outbound_queued_bytes; the budget in force
	peers                          float64 // peak of outbound_peers
	budgetRejected, peerRejected   float64 // last outbound_queue_budget_rejected, outbound_queue_bytes_rejected
	peerLimitRejected, dropped     float64 // last outbound_peer_limit_rejections, messages_dropped
	mailboxPeak, readings, failure float64
}

// watch reads /metrics/snapshot every interval until ctx ends.
func (m *metricPeaks) watch(ctx context.Context, addr string, interval time.Duration) {
	client := &http.Client{Timeout: 5 * time.Second}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		snap, err := snapshot(ctx, client, addr)
		if err != nil && ctx.Err() != nil {
			return // the attack is over; the reading was cut short, not refused
		}
		m.mu.Lock()
		if err != nil {
			m.failure++
		} else {
			m.readings++
			m.queuedBytes = max(m.queuedBytes, snap["libprocess/outbound_queued_bytes"])
			m.peers = max(m.peers, snap["libprocess/outbound_peers"])
			m.mailboxPeak = max(m.mailboxPeak, snap["libprocess/mailbox_depth/pkgpanda"])
			m.budget = snap["libprocess/outbound_queue_budget"]
			m.budgetRejected = snap["libprocess/outbound_queue_budget_rejected"]
			m.peerRejected = snap["libprocess/outbound_queue_bytes_rejected"]
			m.peerLimitRejected = snap["libprocess/outbound_peer_limit_rejections"]
			m.dropped = snap["libprocess/messages_dropped"]
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *metricPeaks) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("outbound queued bytes peaked at %.1f MiB of a %.0f MiB budget; peers peaked at %.0f; pkgpanda mailbox peaked at %.0f; sends refused: %.0f by the budget, %.0f by a peer's bound, %.0f by the peer limit; %.0f messages dropped in all (%.0f metric readings, %.0f failed)",
		m.queuedBytes/(1<<20), m.budget/(1<<20), m.peers, m.mailboxPeak, m.budgetRejected, m.peerRejected, m.peerLimitRejected, m.dropped, m.readings, m.failure)
}

// snapshot reads the daemon's /metrics/snapshot.
func snapshot(ctx context.Context, client *http.Client, addr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics/snapshot", nil)
	if err != nil {
		return nil, err
	}
	// The daemon authenticates reads, and so its metrics (Mesos' rule).
	req.Header.Set("Authorization", basicAuth())
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics/snapshot: %s", resp.Status)
	}
	out := map[string]float64{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decoding /metrics/snapshot: %w", err)
	}
	return out, nil
}
