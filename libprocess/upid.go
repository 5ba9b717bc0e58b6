package libprocess

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// UPID names a libprocess process: its id and the address of the instance
// hosting it, written "id@host:port" (docs/libprocess-wire.md §1.1). Host is an IPv4 literal,
// an IPv6 literal (an extension, written "[::1]" in the text form), or a
// hostname. The zero UPID is the "no process" value C++ calls UPID().
type UPID struct {
	ID   string // process id, e.g. "pkgpanda" or "slave(1)"
	Host string // IP literal (without brackets) or hostname
	Port uint16 // TCP port
}

// upidError describes why a UPID's text was rejected.
type upidError struct {
	Text   string // the text that was parsed
	Reason string // what is wrong with it
}

// Error implements error.
func (e *upidError) Error() string {
	return fmt.Sprintf("invalid UPID %q: %s", e.Text, e.Reason)
}

// ParseUPID parses "id@host:port" strictly, for text given to our own API:
// the rules of C++ (split at the first '@', then at the first ':' or after
// a bracketed IPv6 host) plus a port that must be all digits in 0-65535,
// a non-empty host, and no whitespace anywhere.
func ParseUPID(s string) (UPID, error) {
	return parseUPID(s, true)
}

// parsePeerUPID parses a UPID sent by a peer with the leniency of C++
// libprocess (docs/libprocess-wire.md §1.2): the text ends at the first whitespace, and the port
// is the leading decimal digits, with anything after them ignored.
func parsePeerUPID(s string) (UPID, error) {
	return parseUPID(s, false)
}

func parseUPID(s string, strict bool) (UPID, error) {
	text := s
	if !strict {
		// C++ reads the UPID with operator>>, which stops at whitespace.
		text = strings.TrimLeft(text, " \t\r\n\v\f")
		if i := strings.IndexAny(text, " \t\r\n\v\f"); i >= 0 {
			text = text[:i]
		}
	} else if strings.ContainsAny(text, " \t\r\n\v\f") {
		// A peer reads only up to the first whitespace: a UPID with
		// whitespace in it would name something else there.
		return UPID{}, &upidError{s, "whitespace in UPID"}
	}
	at := strings.IndexByte(text, '@')
	if at < 0 {
		return UPID{}, &upidError{s, "missing '@' between id and address"}
	}
	id, rest := text[:at], text[at+1:]
	var host, port string
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return UPID{}, &upidError{s, "unterminated '[' in IPv6 host"}
		}
		host = rest[1:end]
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return UPID{}, &upidError{s, fmt.Sprintf("%q is not an IPv6 address", host)}
		}
		rest = rest[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return UPID{}, &upidError{s, "missing ':' before port"}
		}
		port = rest[1:]
	} else {
		colon := strings.IndexByte(rest, ':')
		if colon < 0 {
			return UPID{}, &upidError{s, "missing ':' between host and port"}
		}
		host, port = rest[:colon], rest[colon+1:]
		if host == "" {
			return UPID{}, &upidError{s, "empty host"}
		}
		if !validHostname(host) {
			return UPID{}, &upidError{s, fmt.Sprintf("%q is neither an IPv4 address nor a hostname", host)}
		}
	}
	digits := 0
	for digits < len(port) && port[digits] >= '0' && port[digits] <= '9' {
		digits++
	}
	if digits == 0 {
		return UPID{}, &upidError{s, "port is not a number"}
	}
	if strict && digits != len(port) {
		return UPID{}, &upidError{s, fmt.Sprintf("junk %q after port", port[digits:])}
	}
	n, err := strconv.ParseUint(port[:digits], 10, 16)
	if err != nil {
		return UPID{}, &upidError{s, "port out of range 0-65535"}
	}
	return UPID{ID: id, Host: host, Port: uint16(n)}, nil
}

// validHostname accepts IPv4 literals and DNS names (letters, digits, '-',
// '.', '_'). It rejects anything C++ could not resolve as a host.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// String formats the UPID as "id@host:port", bracketing IPv6 hosts. IPv4
// UPIDs come out exactly as C++ writes them (docs/libprocess-wire.md §1.3).
func (u UPID) String() string {
	if strings.IndexByte(u.Host, ':') >= 0 {
		return u.ID + "@[" + u.Host + "]:" + strconv.Itoa(int(u.Port))
	}
	return u.ID + "@" + u.Host + ":" + strconv.Itoa(int(u.Port))
}

// HostPort returns "host:port" for dialing and for the Host header.
func (u UPID) HostPort() string {
	return net.JoinHostPort(u.Host, strconv.Itoa(int(u.Port)))
}

// IsZero reports whether u is the empty UPID.
func (u UPID) IsZero() bool { return u == UPID{} }

// validTargetID reports why id cannot name a process, as a receiver or as
// a sender. The wire percent-encodes a receiver id in the request line
// "POST /<id>/<name> HTTP/1.1" (docs/libprocess-wire.md §3.1), but an empty one would make the
// name's first segment the receiver, and a sender's id is written as is
// into the User-Agent and Libprocess-From headers. So an id is non-empty
// visible ASCII without '/' (which ends it) and without the bytes a peer
// reads as the end of a path or an escape ('?', '#', '%'): the ids Spawn
// accepts, and the only ones a message can reach.
func validTargetID(id string) error {
	if id == "" {
		return errors.New("id is empty")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c == '/' || !targetByte(c) {
			return fmt.Errorf("id %q: byte %#02x at offset %d is not allowed in a request target", id, c, i)
		}
	}
	return nil
}

// validMessageName reports why name cannot be sent as a message name: the
// rule of validTargetID, except that '/' is allowed (a name is everything
// after the id's '/', docs/libprocess-wire.md §3.1).
func validMessageName(name string) error {
	if name == "" {
		return errors.New("message name is empty")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !targetByte(c) {
			return fmt.Errorf("message name %q: byte %#02x at offset %d is not allowed in a request target", name, c, i)
		}
	}
	return nil
}

// targetByte reports whether c may appear in a message's request target:
// visible ASCII except the query, fragment and escape introducers.
func targetByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '?' && c != '#' && c != '%'
}

// validateSend checks what Send writes into a request head: the receiver
// id, the message name and the host (dialled and sent as the Host header).
func validateSend(to UPID, name string) error {
	if err := validTargetID(to.ID); err != nil {
		return fmt.Errorf("receiver %w", err)
	}
	if err := validMessageName(name); err != nil {
		return err
	}
	if to.Host == "" {
		return errors.New("receiver host is empty")
	}
	if strings.IndexByte(to.Host, ':') >= 0 {
		if a, err := netip.ParseAddr(to.Host); err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("receiver host %q is not an IPv6 address without zone", to.Host)
		}
	} else if !validHostname(to.Host) {
		return fmt.Errorf("receiver host %q is neither an IP address nor a hostname", to.Host)
	}
	return nil
}
