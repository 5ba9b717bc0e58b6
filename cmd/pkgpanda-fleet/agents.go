package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/procpanda/procpanda/processes/pkgpanda/client"
)

// DefaultPkgpandaPort is the TCP port pkgpandad serves on each agent.
const DefaultPkgpandaPort = 61052

// agentConfig is how to reach each agent's pkgpanda process.
type agentConfig struct {
	port          int
	scheme        string // http or https
	authorization string // "Basic …" or "Bearer …"
	caFile        string
	timeout       time.Duration // one read (active, list, check list)
	opTimeout     time.Duration // one mutation or check run (fetch, activate, check)
	concurrency   int           // agents contacted at once
}

// agentPool reaches agents' pkgpanda processes over POST
// /pkgpanda/api/v1 with one shared, bounded HTTP transport.
type agentPool struct {
	cfg agentConfig
	hc  *http.Client
}

func newAgentPool(cfg agentConfig) (*agentPool, error) {
	if cfg.concurrency < 1 {
		return nil, fmt.Errorf("--concurrency must be at least 1, not %d", cfg.concurrency)
	}
	if cfg.port < 1 || cfg.port > 65535 {
		return nil, fmt.Errorf("--pkgpanda-port %d is not a TCP port", cfg.port)
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: cfg.timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          cfg.concurrency,
		MaxIdleConnsPerHost:   1,
		MaxConnsPerHost:       2,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   cfg.timeout,
		ResponseHeaderTimeout: 0, // each call has its own deadline
		ForceAttemptHTTP2:     false,
	}
	if cfg.scheme == "https" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.caFile != "" {
			pool, err := loadCAPool(cfg.caFile, "the agents' CA file")
			if err != nil {
				return nil, err
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	return &agentPool{cfg: cfg, hc: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("pkgpanda answered with a redirect")
	}}}, nil
}

// close drops idle connections.
func (p *agentPool) close() { p.hc.CloseIdleConnections() }

// addr is the host:port of an agent's pkgpanda process.
func (p *agentPool) addr(a Agent) string {
	return net.JoinHostPort(a.IP, strconv.Itoa(p.cfg.port))
}

// client returns a typed pkgpanda client for agent a. Calls are bounded
// by their context; the client adds opTimeout as a last bound.
func (p *agentPool) client(a Agent) (*client.Client, error) {
	return client.NewHTTP(p.cfg.scheme+"://"+p.addr(a)+"/pkgpanda",
		client.WithHTTPClient(p.hc),
		client.WithAuthorization(p.cfg.authorization),
		client.WithTimeout(p.cfg.opTimeout),
		client.WithMaxResponseBytes(4<<20))
}

// forEach runs f for every agent with at most cfg.concurrency at once;
// f's context carries the per-agent timeout.
func (p *agentPool) forEach(ctx context.Context, agents []Agent, f func(ctx context.Context, i int, a Agent)) {
	sem := make(chan struct{}, p.cfg.concurrency)
	var wg sync.WaitGroup
	for i, a := range agents {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			f(ctx, i, a) // reports the context's error at once
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			actx, cancel := context.WithTimeout(ctx, p.cfg.timeout)
			defer cancel()
			f(actx, i, a)
		}()
	}
	wg.Wait()
}

// agentView is an agent's active set and, when asked for, its
// repository's contents; or the reason they could not be read.
type agentView struct {
	active, repo []string
	err          error
}

// readViews reads the active set (and, withRepo, the repository) of
// every eligible agent, bounded by the pool.
func readViews(ctx context.Context, pool *agentPool, agents []Agent, withRepo bool) []agentView {
	out := make([]agentView, len(agents))
	pool.forEach(ctx, agents, func(ctx context.Context, i int, a Agent) {
		if a.eligible() {
			out[i] = pool.read(ctx, a, withRepo)
		}
	})
	return out
}

// read reads one agent's active set and, withRepo, its repository.
func (p *agentPool) read(ctx context.Context, a Agent, withRepo bool) (v agentView) {
	if v.err = ctx.Err(); v.err != nil {
		return v
	}
	c, err := p.client(a)
	if err != nil {
		return agentView{err: err}
	}
	defer c.Close()
	if v.active, err = c.Active(ctx); err != nil {
		return agentView{err: describe(ctx, err)}
	}
	if withRepo {
		if v.repo, err = c.List(ctx); err != nil {
			return agentView{err: describe(ctx, err)}
		}
	}
	return v
}

// describe turns a call's failure into the short reason an operator reads.
func describe(ctx context.Context, err error) error {
	var ce *client.Error
	var ne *net.OpError
	switch {
	case errors.As(err, &ce) && (ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden):
		return fmt.Errorf("refused: %d %s (check the agent credentials)", ce.Status, oneLine(ce.Message))
	case errors.As(err, &ce):
		return fmt.Errorf("pkgpanda %s failed: %d %s", ce.Op, ce.Status, oneLine(ce.Message))
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("timed out: %w", err)
	case errors.As(err, &ne):
		return fmt.Errorf("unreachable: %w", ne)
	}
	return err
}

// oneLine folds a multi-line message (a tool's stderr) into one line for
// tables and the state file.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " | ")
}
