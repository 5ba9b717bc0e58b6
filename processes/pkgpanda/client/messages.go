package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/libprocess/protobuf"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// NewMessages returns a client that sends PkgpandaCall messages to target
// (e.g. pkgpanda@10.0.0.2:5052) from a process of its own, spawned on the
// caller's runtime (WithRuntime) or on a libprocess runtime the client
// starts (see WithListen) and stops on Close. The process'
// PkgpandaResponse replies are matched to calls by request_id.
func NewMessages(ctx context.Context, target libprocess.UPID, opts ...Option) (*Client, error) {
	if target.ID == "" || target.Host == "" || target.Port == 0 {
		return nil, fmt.Errorf("pkgpanda client: target %q is not id@host:port", target)
	}
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	if o.runtime != nil {
		if o.listen != "" {
			return nil, errors.New("pkgpanda client: WithListen and WithRuntime exclude each other")
		}
		t, err := newMessageTransport(o.runtime, target, &o)
		if err != nil {
			return nil, err
		}
		return &Client{opts: o, t: t}, nil
	}
	listen := o.listen
	if listen == "" {
		var err error
		if listen, err = localAddrToward(ctx, target.HostPort()); err != nil {
			return nil, err
		}
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("pkgpanda client: listen address %q: %w", listen, err)
	}
	cfg := libprocess.DefaultConfig()
	cfg.IP = host
	if cfg.Port, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("pkgpanda client: listen port %q: %w", port, err)
	}
	rt, err := libprocess.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("pkgpanda client: configuring the runtime: %w", err)
	}
	if err := rt.Start(); err != nil {
		return nil, fmt.Errorf("pkgpanda client: starting the runtime: %w", err)
	}
	t, err := newMessageTransport(rt, target, &o)
	if err != nil {
		shutdown(rt)
		return nil, err
	}
	t.ownRuntime = true
	return &Client{opts: o, t: t}, nil
}

// shutdown stops a runtime the client started, bounded in time.
func shutdown(rt *libprocess.Runtime) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rt.Shutdown(ctx)
}

// localAddrToward returns "ip:0" for the local IP that routes to target,
// so that the target can reach the client's runtime to reply.
func localAddrToward(ctx context.Context, target string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return "", fmt.Errorf("pkgpanda client: finding the local address toward %s: %w", target, err)
	}
	defer c.Close()
	host, _, err := net.SplitHostPort(c.LocalAddr().String())
	if err != nil {
		return "", fmt.Errorf("pkgpanda client: local address: %w", err)
	}
	return net.JoinHostPort(host, "0"), nil
}

// messageTransport sends calls as messages and matches the replies.
type messageTransport struct {
	rt         *libprocess.Runtime
	p          *libprocess.Process
	target     libprocess.UPID
	opts       *options
	ownRuntime bool

	mu      sync.Mutex
	waiting map[string]chan *pb.PkgpandaResponse // by request id
	closed  bool
}

func newMessageTransport(rt *libprocess.Runtime, target libprocess.UPID, o *options) (*messageTransport, error) {
	suffix, err := newRequestID(4)
	if err != nil {
		return nil, err
	}
	t := &messageTransport{
		rt:      rt,
		p:       libprocess.NewProcess(o.processIDPrefix + "-" + suffix),
		target:  target,
		opts:    o,
		waiting: map[string]chan *pb.PkgpandaResponse{},
	}
	if err := protobuf.Install(t.p, func() *pb.PkgpandaResponse { return &pb.PkgpandaResponse{} }, t.deliver); err != nil {
		return nil, fmt.Errorf("pkgpanda client: %w", err)
	}
	if _, err := rt.Spawn(t.p); err != nil {
		return nil, fmt.Errorf("pkgpanda client: spawning the client process: %w", err)
	}
	return t, nil
}

// deliver hands a reply to the call waiting for its request id. Replies
// from another process id, or for no waiting call (late, duplicated or
// forged: request ids are random), are dropped.
func (t *messageTransport) deliver(from libprocess.UPID, r *pb.PkgpandaResponse) {
	if from.ID != t.target.ID {
		return
	}
	t.mu.Lock()
	ch, ok := t.waiting[r.RequestId]
	if ok {
		delete(t.waiting, r.RequestId)
	}
	t.mu.Unlock()
	if ok {
		ch <- r // buffered: never blocks the process
	}
}

// errClosed is a call on a closed client.
var errClosed = errors.New("the client is closed")

// maxMessageTarball is the largest tarball Add sends in a message: a
// default runtime's MaxMessageSize, which bounds what the process
// receives, less room for the call's other fields.
func maxMessageTarball() int64 { return int64(libprocess.DefaultConfig().MaxMessageSize) - 64<<10 }

func (t *messageTransport) call(ctx context.Context, c *pb.PkgpandaCall, tb *tarballArg) (*pb.PkgpandaResponse, error) {
	if tb != nil {
		if limit := maxMessageTarball(); tb.size > limit {
			return nil, fmt.Errorf("a tarball of %d bytes exceeds the %d a message carries; add it over HTTP: %w", tb.size, limit, ErrTooLarge)
		}
		c.Tarball = make([]byte, tb.size)
		if _, err := io.ReadFull(&exactReader{r: tb.r, n: tb.size}, c.Tarball); err != nil {
			return nil, err
		}
	}
	c.Authorization = t.opts.authorization
	ch := make(chan *pb.PkgpandaResponse, 1)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, errClosed
	}
	t.waiting[c.RequestId] = ch
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.waiting, c.RequestId)
		t.mu.Unlock()
	}()
	if err := protobuf.Send(t.p, t.target, c); err != nil {
		return nil, fmt.Errorf("sending to %s: %w", t.target, err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the answer of %s: %w", t.target, ctx.Err())
	case <-t.p.Done():
		return nil, errClosed
	}
}

func (t *messageTransport) close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.p.Terminate()
	if t.ownRuntime {
		if err := shutdown(t.rt); err != nil {
			return fmt.Errorf("pkgpanda client: stopping its runtime: %w", err)
		}
	}
	return nil
}
