package libprocess

import (
	"strings"
	"sync/atomic"
	"testing"
)

func spawnFirewalled(t *testing.T) (*Runtime, chan string) {
	t.Helper()
	rt := startRuntime(t, func(c *Config) {
		c.DisabledEndpoints = []string{"/svc/secret", "/svc/mesos.internal.Call", "/off"}
	})
	handled := make(chan string, 16)
	svc := NewProcess("svc")
	for _, r := range []string{"secret", "open"} {
		svc.Route(r, Help{TLDR: r}, func(req *Request, respond Responder) { respond(TextResponse(200, "route "+req.Route)) })
	}
	svc.Install("mesos.internal.Call", func(m *Message) { handled <- "svc " + m.Name })
	svc.Install("ok", func(m *Message) { handled <- "svc " + m.Name })
	off := NewProcess("off")
	off.Route("", Help{TLDR: "root"}, func(req *Request, respond Responder) { respond(TextResponse(200, "root")) })
	off.Install("m", func(m *Message) { handled <- "off " + m.Name })
	for _, p := range []*Process{svc, off} {
		if _, err := rt.Spawn(p); err != nil {
			t.Fatal(err)
		}
	}
	return rt, handled
}

func message(path string) string {
	return "POST " + path + " HTTP/1.1\r\nUser-Agent: libprocess/a@127.0.0.1:1\r\nLibprocess-From: a@127.0.0.1:1\r\nConnection: Keep-Alive\r\nHost: \r\nContent-Length: 0\r\n\r\n"
}

// Disabled endpoints answer 403 to HTTP requests, whatever spelling of the
// path reaches the disabled route, and to messages, on either reader.
func TestFirewallDisabledEndpoints(t *testing.T) {
	rt, handled := spawnFirewalled(t)
	c := dialRaw(t, rt)
	get := func(path string) rawResponse {
		c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		return c.read()
	}
	denied := 0
	for _, path := range []string{"/svc/secret", "/svc/secret/", "//svc//secret", "/svc/secret/below", "/%73vc/secret", "/svc/%73ecret", "/svc/%2Fsecret", "/svc/secret?x=1", "/off", "/off/", "/off/anything"} {
		r := get(path)
		if r.Status != 403 {
			t.Errorf("GET %s: %q, want 403", path, r.StatusLine)
			continue
		}
		denied++
		if !strings.HasPrefix(string(r.Body), "Endpoint '/") || !strings.HasSuffix(string(r.Body), "' is disabled") {
			t.Errorf("GET %s: body %q", path, r.Body)
		}
	}
	if r := get("/svc/open"); r.Status != 200 || string(r.Body) != "route open" {
		t.Fatalf("enabled route: %q %q", r.StatusLine, r.Body)
	}
	if r := get("/svc/secretive"); r.Status == 403 {
		t.Fatalf("/svc/secretive is not below /svc/secret: %q", r.StatusLine)
	}

	// Messages on a connection the message codec reads.
	m := dialRaw(t, rt)
	for _, path := range []string{"/svc/mesos.internal.Call", "/%73vc/mesos.internal.Call", "/svc/mesos.internal.Call/x", "/off/m"} {
		m.write(message(path))
		if r := m.read(); r.Status != 403 || r.StatusLine != "HTTP/1.1 403 Forbidden" {
			t.Errorf("message %s: %q, want 403 Forbidden", path, r.StatusLine)
		} else {
			denied++
		}
	}
	m.write(message("/svc/ok"))
	if r := m.read(); r.Status != 202 {
		t.Fatalf("enabled message: %q", r.StatusLine)
	}
	if got := <-handled; got != "svc ok" {
		t.Fatalf("handled %q: a disabled message reached its handler", got)
	}
	// Messages on a connection the HTTP server reads (it began with an
	// ordinary request).
	c.write(message("/svc/mesos.internal.Call"))
	if r := c.read(); r.Status != 403 {
		t.Errorf("message after HTTP: %q, want 403", r.StatusLine)
	} else {
		denied++
	}
	c.write(message("/svc/ok"))
	if r := c.read(); r.Status != 202 {
		t.Fatalf("enabled message after HTTP: %q", r.StatusLine)
	}
	if got := <-handled; got != "svc ok" {
		t.Fatalf("handled %q: a disabled message reached its handler", got)
	}
	if n := rt.Snapshot()["libprocess/firewall_denied"]; n != float64(denied) {
		t.Fatalf("libprocess/firewall_denied = %v, want %d", n, denied)
	}
}

func TestFirewallConfigValidation(t *testing.T) {
	for _, bad := range []string{"", "pkgpanda/add", "/", "//", "/a/../b", "/a b", "/a\r\nX: y", "/a?b", "/a#b", "/a\x00"} {
		cfg := DefaultConfig()
		cfg.DisabledEndpoints = []string{"/ok", bad}
		if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "DisabledEndpoints") {
			t.Errorf("DisabledEndpoints %q: %v, want an error naming DisabledEndpoints", bad, err)
		}
	}
	cfg := DefaultConfig()
	cfg.DisabledEndpoints = []string{"/pkgpanda/add", "/pkgpanda/mesos.internal.PkgpandaCall", "//metrics//snapshot/"}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func(*Config){
		func(c *Config) { c.MaxOutboundPeers = 0 },
		func(c *Config) { c.OutboundIdleTimeout = 0 },
		func(c *Config) { c.MaxConcurrentDials = -1 },
	} {
		cfg := DefaultConfig()
		f(&cfg)
		if err := cfg.validate(); err == nil {
			t.Errorf("invalid outbound limit accepted: %+v", cfg)
		}
	}
}

// routeReached models route lookup (docs/libprocess-wire.md §4.3, Process.lookupRoute) for a
// decoded path on a process with the given routes: the endpoint
// "/<id>/<route>" that serves it, or "" when none does.
func routeReached(path string, routes map[string][]string) string {
	trimmed := strings.TrimLeft(path, "/")
	id, rest, _ := strings.Cut(trimmed, "/")
	names, ok := routes[id]
	if !ok {
		return ""
	}
	p := &Process{id: id, routes: map[string]*route{}}
	for _, n := range names {
		p.routes[n] = &route{name: n}
	}
	if r := p.lookupRoute(rest); r != nil {
		if r.name == "" {
			return "/" + id
		}
		return "/" + id + "/" + r.name
	}
	return ""
}

// FuzzFirewall checks the firewall's matching against route lookup: a
// path that reaches a disabled route is always refused, and a message is
// refused exactly when its path "/<id>/<name>" is.
func FuzzFirewall(f *testing.F) {
	for _, s := range []string{"/svc/secret", "/svc/secret/", "//svc//secret///x", "/svc/secretive", "/svc", "/svc/open/secret", "/off", "/offx/y", "/", "", "svc/secret", "/svc/./secret", "/svc/mesos.internal.Call"} {
		f.Add(s)
	}
	disabled := []string{"/svc/secret", "/svc/mesos.internal.Call", "/off", "/svc/a/b"}
	routes := map[string][]string{"svc": {"", "secret", "open", "a", "a/b"}, "off": {""}}
	var n atomic.Int64
	fw := newFirewall(disabled, &n)
	isDisabled := map[string]bool{}
	for _, d := range disabled {
		isDisabled[d] = true
	}
	f.Fuzz(func(t *testing.T, path string) {
		denies := fw.deniesPath(path)
		if strings.HasPrefix(path, "/") && !strings.Contains(path, "/..") {
			if ep := routeReached(path, routes); isDisabled[ep] && !denies {
				t.Fatalf("path %q reaches disabled endpoint %s but is not refused", path, ep)
			}
		}
		// A message's name is used as is (no '/' collapsing), so compare
		// only names already in canonical form.
		id, name, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if !ok || !strings.HasPrefix(path, "/") || id == "" || name == "" || strings.Contains(name, "//") || strings.HasSuffix(name, "/") || strings.HasPrefix(name, "/") {
			return
		}
		if got := fw.deniesMessage([]byte(id), []byte(name)); got != denies {
			t.Fatalf("message %q/%q refused=%v, HTTP %q refused=%v", id, name, got, path, denies)
		}
	})
}
