package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mesosclient "github.com/mesos/mesos-go/api/v1/lib/client"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpmaster"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/mesos/mesos-go/api/v1/lib/master/calls"
)

// maxRedirects bounds how many leader redirects one call follows: a
// master answers 307 naming the leader it knows of, and during an
// election that may take a hop or two.
const maxRedirects = 4

// AgentState is what the master says about an agent, as the tool uses it.
type AgentState string

// The agent states. Only StateActive agents are ever contacted.
const (
	StateActive      AgentState = "active"      // registered, active, not draining
	StateInactive    AgentState = "inactive"    // registered but not active (disconnected)
	StateDeactivated AgentState = "deactivated" // deactivated by an operator
	StateDraining    AgentState = "draining"    // DrainInfo DRAINING
	StateDrained     AgentState = "drained"     // DrainInfo DRAINED
	StateRecovered   AgentState = "recovered"   // known from the registry, not re-registered
	StateGone        AgentState = "gone"        // in a rollout's plan but no longer known to the master
)

// Agent is one agent of the cluster.
type Agent struct {
	ID       string     `json:"id"`
	Hostname string     `json:"hostname"`
	IP       string     `json:"ip"` // from the agent's PID, or the hostname
	State    AgentState `json:"state"`
}

// eligible reports whether the tool may contact the agent's pkgpanda.
func (a Agent) eligible() bool { return a.State == StateActive }

// masterConfig is how to reach the Mesos master.
type masterConfig struct {
	urls          []string // tried in order until one answers
	authorization string   // "Basic …" or "Bearer …"; empty for none
	caFile        string
	timeout       time.Duration
}

// masterClient asks the Mesos master's v1 operator API (mesos-go's
// httpcli and httpmaster) for its agents, following a non-leading
// master's redirect to the leader.
type masterClient struct {
	cfg  masterConfig
	doer httpcli.DoFunc

	mu     sync.Mutex
	leader string // the endpoint that last answered, tried first
}

func newMasterClient(cfg masterConfig) (*masterClient, error) {
	if len(cfg.urls) == 0 {
		return nil, errors.New("no master given (--master URL)")
	}
	for i, u := range cfg.urls {
		ep, err := apiEndpoint(u)
		if err != nil {
			return nil, err
		}
		cfg.urls[i] = ep
	}
	var tc *tls.Config
	if cfg.caFile != "" {
		pool, err := loadCAPool(cfg.caFile, "the master CA file")
		if err != nil {
			return nil, err
		}
		tc = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	opts := append([]httpcli.ConfigOpt{}, httpcli.DefaultConfigOpt...)
	if tc != nil {
		opts = append(opts, httpcli.TLSConfig(tc))
	}
	if cfg.timeout > 0 {
		opts = append(opts, httpcli.Timeout(cfg.timeout))
	}
	if a := cfg.authorization; a != "" {
		opts = append(opts, httpcli.WrapRoundTripper(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripper(func(r *http.Request) (*http.Response, error) {
				r = r.Clone(r.Context())
				r.Header.Set("Authorization", a)
				return rt.RoundTrip(r)
			})
		}))
	}
	return &masterClient{cfg: cfg, doer: httpcli.With(opts...), leader: cfg.urls[0]}, nil
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// apiEndpoint turns a master URL into its operator API endpoint:
// http://host:5050 → http://host:5050/api/v1, and a master behind a
// proxy keeps its prefix, https://dcos.example/mesos →
// https://dcos.example/mesos/api/v1 (a URL ending in /api/v1 is kept).
func apiEndpoint(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("master URL %q is not http(s)://host[:port][/prefix]", raw)
	}
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, "/api/v1") {
		p += "/api/v1"
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = p, "", "", ""
	return u.String(), nil
}

// redirectError is a non-leading master's 307 with the leader it names.
type redirectError struct{ location string }

func (e *redirectError) Error() string { return "redirected to the leading master " + e.location }

// call sends one operator call to endpoint.
func (m *masterClient) call(ctx context.Context, endpoint string, c *master.Call) (*master.Response, error) {
	cli := httpcli.New(httpcli.Endpoint(endpoint), httpcli.Do(m.doer))
	// A non-leading master answers 307 with a protocol-relative
	// Location: //leader:port/api/v1 (Mesos src/master/http.cpp:1777-1796,
	// Master::Http::redirect); httpcli leaves redirects to its caller
	// (its client never follows them), so catch it here.
	cli.With(httpcli.HandleResponse(func(res *http.Response, rc mesosclient.ResponseClass, err error) (mesos.Response, error) {
		resp, err := cli.HandleResponse(res, rc, err)
		if err != nil && apierrors.CodeNotLeader.Matches(err) && res != nil {
			if resp != nil {
				resp.Close()
			}
			return nil, &redirectError{location: res.Header.Get("Location")}
		}
		return resp, err
	}))
	ctx, cancel := context.WithTimeout(ctx, m.cfg.timeout)
	defer cancel()
	resp, err := httpmaster.NewSender(cli.Send).Send(ctx, calls.NonStreaming(c))
	if resp != nil {
		defer resp.Close()
	}
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, nil // a call answered 200 or 202 with no body
	}
	var r master.Response
	if err := resp.Decode(&r); err != nil {
		return nil, fmt.Errorf("decoding the master's answer: %w", err)
	}
	return &r, nil
}

// follow resolves a redirect's Location against the endpoint that sent
// it: Mesos sends a protocol-relative URL, so the scheme and path stay.
func follow(location, current string) (string, error) {
	l, err := url.Parse(location)
	if err != nil || l.Host == "" {
		return "", fmt.Errorf("the master redirected to %q, which names no leader", location)
	}
	c, err := url.Parse(current)
	if err != nil {
		return "", err
	}
	c.Host = l.Host
	return c.String(), nil
}

// Leader returns the endpoint that answered last.
func (m *masterClient) Leader() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leader
}

// do sends c to the leading master: each configured master is tried in
// turn (the last leader first) and a 307 is followed to the leader it
// names. want is the response type expected; UNKNOWN for a call answered
// without a body.
func (m *masterClient) do(ctx context.Context, c *master.Call, want master.Response_Type) (*master.Response, error) {
	m.mu.Lock()
	order := []string{m.leader}
	m.mu.Unlock()
	for _, u := range m.cfg.urls {
		if u != order[0] {
			order = append(order, u)
		}
	}
	var errs []string
	for _, start := range order {
		ep := start
		for hop := 0; ; hop++ {
			r, err := m.call(ctx, ep, c)
			var re *redirectError
			if errors.As(err, &re) && hop < maxRedirects {
				next, ferr := follow(re.location, ep)
				if ferr != nil {
					err = ferr
				} else {
					ep = next
					continue
				}
			}
			if err == nil && want != master.Response_UNKNOWN && (r == nil || r.Type != want) {
				got := "no body"
				if r != nil {
					got = r.Type.String()
				}
				err = fmt.Errorf("the master answered %s, not %s", got, want)
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", ep, err))
				break
			}
			m.mu.Lock()
			m.leader = ep
			m.mu.Unlock()
			return r, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("calling the Mesos master (%s): %s", c.Type, strings.Join(errs, "; "))
}

// GetAgents asks the leading master for its agents, sorted by hostname
// then id.
func (m *masterClient) GetAgents(ctx context.Context) ([]Agent, error) {
	r, err := m.do(ctx, calls.GetAgents(), master.Response_GET_AGENTS)
	if err != nil {
		return nil, err
	}
	if r.GetAgents == nil {
		return nil, errors.New("calling the Mesos master (GET_AGENTS): the answer holds no agents field")
	}
	return agentsFrom(r.GetAgents), nil
}

// agentsFrom classifies the agents of a GET_AGENTS answer. The master
// lists registered agents with drain_info and deactivated filled in, and
// agents recovered from the registry but not re-registered apart; agents
// marked gone are not listed at all (Mesos
// src/master/readonly_handler.cpp:1262-1300, jsonifyGetAgents).
func agentsFrom(g *master.Response_GetAgents) []Agent {
	out := make([]Agent, 0, len(g.Agents)+len(g.RecoveredAgents))
	for _, a := range g.Agents {
		ag := Agent{ID: a.AgentInfo.GetID().GetValue(), Hostname: a.AgentInfo.Hostname, IP: agentIP(a.GetPID(), a.AgentInfo.Hostname)}
		switch {
		case a.DrainInfo != nil && a.DrainInfo.State == mesos.DrainState_DRAINED:
			ag.State = StateDrained
		case a.DrainInfo != nil:
			ag.State = StateDraining
		case a.GetDeactivated():
			ag.State = StateDeactivated
		case !a.Active:
			ag.State = StateInactive
		default:
			ag.State = StateActive
		}
		out = append(out, ag)
	}
	for _, a := range g.RecoveredAgents {
		out = append(out, Agent{ID: a.GetID().GetValue(), Hostname: a.Hostname, IP: a.Hostname, State: StateRecovered})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Hostname != out[j].Hostname {
			return out[i].Hostname < out[j].Hostname
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// agentIP takes the IP from an agent's libprocess PID
// ("slave(1)@10.0.0.5:5051"), falling back to its hostname.
func agentIP(pid, hostname string) string {
	if i := strings.LastIndexByte(pid, '@'); i >= 0 {
		if h, p, err := net.SplitHostPort(pid[i+1:]); err == nil && h != "" {
			if _, err := strconv.Atoi(p); err == nil {
				return h
			}
		}
	}
	return hostname
}

// loadCAPool reads the PEM certificates of file (what names it in
// errors) into a pool.
func loadCAPool(file, what string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s holds no PEM certificate", what, file)
	}
	return pool, nil
}
