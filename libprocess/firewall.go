package libprocess

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// firewall implements Config.DisabledEndpoints, libprocess' only built-in
// firewall rule (docs/libprocess-wire.md §4.4). It is built once by New and only read after,
// and it is consulted at the two places every inbound request passes:
// server.serveHTTP for HTTP requests (after delegation, before the
// request is queued) and Runtime.acceptMessage for messages, whichever
// reader (message codec or HTTP server) parsed them.
//
// Matching. C++'s DisabledEndpointsFirewallRule matches the decoded
// url.path exactly (apache/mesos at c1b42f7,
// 3rdparty/libprocess/include/process/firewall.hpp:63-86, "Matches are
// required to be exact"), checked in ProcessManager::handle after the
// delegate rewrite (3rdparty/libprocess/src/process.cpp:2734-2759). Routes, however, serve
// every path below them (docs/libprocess-wire.md §4.3; ProcessBase::consume drops trailing
// segments until a route matches), so an exact match lets
// "/pkgpanda/add/", "/pkgpanda//add" or "/pkgpanda/add/x" reach a
// disabled "/pkgpanda/add". Here a request is refused when its decoded
// path, with repeated '/' collapsed and a trailing '/' dropped, equals a
// disabled path or lies below one (at a '/' boundary). That refuses
// everything C++ refuses, and every path that would reach the disabled
// route.
//
// Messages. C++ applies firewall rules to HTTP requests only: a message is
// parsed and delivered in the libprocess(request) branch, which returns
// before the firewall loop (process.cpp:2611-2688). Here the same rule
// also applies to a message, whose path is "/<id>/<name>" (id
// percent-decoded, name as received, which is what handler lookup uses),
// so disabling "/pkgpanda/mesos.internal.PkgpandaCall" turns that
// message API off, and disabling "/pkgpanda" turns off the whole process.
// A refused message is answered 403.
type firewall struct {
	// byID maps a process id to the disabled paths below it: "" disables
	// the whole process, "add" disables /<id>/add and below.
	byID   map[string][]string
	denied *atomic.Int64
}

func newFirewall(paths []string, denied *atomic.Int64) *firewall {
	f := &firewall{byID: make(map[string][]string), denied: denied}
	for _, p := range paths {
		c := canonicalPath(p)
		id, rest, _ := strings.Cut(c[1:], "/")
		f.byID[id] = append(f.byID[id], rest)
	}
	return f
}

// validEndpointPath reports why p cannot be a disabled endpoint.
func validEndpointPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q: a disabled endpoint is an absolute path such as /pkgpanda/add", p)
	case canonicalPath(p) == "/":
		return fmt.Errorf("%q: disabling the root path would disable nothing but \"/\"; name a process path such as /pkgpanda", p)
	case strings.Contains(p, "/.."):
		return fmt.Errorf("%q: relative segments are never served", p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '?' || c == '#' {
			return fmt.Errorf("%q: byte %#02x at offset %d cannot be part of a request path", p, c, i)
		}
	}
	return nil
}

// canonicalPath collapses runs of '/' and drops a trailing '/' (route
// lookup ignores both). It allocates only when it changes something.
func canonicalPath(p string) string {
	if !strings.Contains(p, "//") && (len(p) <= 1 || p[len(p)-1] != '/') {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	s := b.String()
	if len(s) > 1 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// below reports whether rest is disabled by one of the disabled sub-paths.
func below(disabled []string, rest string) bool {
	for _, d := range disabled {
		if d == "" || rest == d || (strings.HasPrefix(rest, d) && rest[len(d)] == '/') {
			return true
		}
	}
	return false
}

// deniesPath reports whether the HTTP request for the decoded path is
// refused, and counts it.
func (f *firewall) deniesPath(path string) bool {
	if len(f.byID) == 0 {
		return false
	}
	c := canonicalPath(path)
	if len(c) < 2 || c[0] != '/' {
		return false
	}
	id, rest, _ := strings.Cut(c[1:], "/")
	if d, ok := f.byID[id]; ok && below(d, rest) {
		f.denied.Add(1)
		return true
	}
	return false
}

// deniesMessage reports whether a message to the process id (decoded)
// named name is refused, and counts it. It allocates nothing.
func (f *firewall) deniesMessage(id []byte, name []byte) bool {
	if len(f.byID) == 0 {
		return false
	}
	d, ok := f.byID[string(id)]
	if !ok {
		return false
	}
	for _, sub := range d {
		if sub == "" || string(name) == sub ||
			(len(name) > len(sub) && string(name[:len(sub)]) == sub && name[len(sub)] == '/') {
			f.denied.Add(1)
			return true
		}
	}
	return false
}

// forbidden is the 403 answer for a disabled path, worded as C++'s
// DisabledEndpointsFirewallRule answers.
func forbidden(path string) Response {
	return TextResponse(http.StatusForbidden, "Endpoint '"+path+"' is disabled")
}
