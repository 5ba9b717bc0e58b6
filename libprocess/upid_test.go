package libprocess

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseUPID(t *testing.T) {
	cases := []struct {
		in   string
		want UPID
	}{
		{"master@10.0.0.1:5050", UPID{"master", "10.0.0.1", 5050}},
		{"slave(1)@10.0.0.2:5051", UPID{"slave(1)", "10.0.0.2", 5051}},
		{"scheduler-5c1f0e2a-8b1d@192.168.1.10:40123", UPID{"scheduler-5c1f0e2a-8b1d", "192.168.1.10", 40123}},
		{"@1.2.3.4:5", UPID{"", "1.2.3.4", 5}},
		{"pkgpanda@agent-1.example.com:5052", UPID{"pkgpanda", "agent-1.example.com", 5052}},
		{"x@localhost:0", UPID{"x", "localhost", 0}},
		{"x@1.2.3.4:65535", UPID{"x", "1.2.3.4", 65535}},
		{"x@1.2.3.4:00080", UPID{"x", "1.2.3.4", 80}},
		{"x:y@1.2.3.4:5", UPID{"x:y", "1.2.3.4", 5}},
		{"id@[::1]:5051", UPID{"id", "::1", 5051}},
		{"id@[2001:db8::7]:80", UPID{"id", "2001:db8::7", 80}},
		{"id@[::ffff:1.2.3.4]:80", UPID{"id", "::ffff:1.2.3.4", 80}},
		{"id@[fe80::1%eth0]:1", UPID{"id", "fe80::1%eth0", 1}},
	}
	for _, c := range cases {
		for name, parse := range map[string]func(string) (UPID, error){"ParseUPID": ParseUPID, "parsePeerUPID": parsePeerUPID} {
			got, err := parse(c.in)
			if err != nil || got != c.want {
				t.Errorf("%s(%q) = %+v, %v; want %+v", name, c.in, got, err, c.want)
			}
		}
	}
}

func TestParseUPIDErrors(t *testing.T) {
	// Rejected by both parsers.
	both := []string{
		"", "   ", "master", "master10.0.0.1:5050", // no '@'
		"id@1.2.3.4", "id@", "id@host", // no ':'
		"id@:5050", "id@::1:5050", // empty host
		"id@1.2.3.4:", "id@1.2.3.4:x", "id@1.2.3.4:-1", "id@1.2.3.4:+5", // no port digits
		"id@1.2.3.4:65536", "id@1.2.3.4:99999999999999999999", // out of range
		"a@b@1.2.3.4:5", "id@ho/st:5", "id@h%t:5", "id@" + strings.Repeat("h", 254) + ":5", // bad hosts
		"id@[::1]5051", "id@[::1", "id@[::1]", "id@[1.2.3.4]:5", "id@[nonsense]:5", "id@[]:5", // bad IPv6
	}
	for _, s := range both {
		for name, parse := range map[string]func(string) (UPID, error){"ParseUPID": ParseUPID, "parsePeerUPID": parsePeerUPID} {
			u, err := parse(s)
			var ue *upidError
			if !errors.As(err, &ue) || ue.Text != s || ue.Reason == "" {
				t.Errorf("%s(%q) = %+v, %v; want a *upidError", name, s, u, err)
				continue
			}
			if u != (UPID{}) {
				t.Errorf("%s(%q) returned %+v with its error", name, s, u)
			}
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Errorf("error %q does not quote the input", err)
			}
		}
	}
}

// TestParsePeerUPIDLenient: what C++ accepts from peers (operator>> reads
// one whitespace-delimited token; sscanf("%hu") reads the leading digits)
// and our strict parser refuses.
func TestParsePeerUPIDLenient(t *testing.T) {
	cases := []struct {
		in   string
		want UPID
	}{
		{"id@1.2.3.4:5051junk", UPID{"id", "1.2.3.4", 5051}},
		{"id@1.2.3.4:5051:6", UPID{"id", "1.2.3.4", 5051}},
		{"id@1.2.3.4:5051/", UPID{"id", "1.2.3.4", 5051}},
		{"  master@10.0.0.1:5050  ", UPID{"master", "10.0.0.1", 5050}},
		{"\tmaster@10.0.0.1:5050\r\n", UPID{"master", "10.0.0.1", 5050}},
		{"master@10.0.0.1:5050 trailing words", UPID{"master", "10.0.0.1", 5050}},
		{"\vslave(1)@10.0.0.2:5051\fx", UPID{"slave(1)", "10.0.0.2", 5051}},
		{"id@[::1]:5051x", UPID{"id", "::1", 5051}},
	}
	for _, c := range cases {
		got, err := parsePeerUPID(c.in)
		if err != nil || got != c.want {
			t.Errorf("parsePeerUPID(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if u, err := ParseUPID(c.in); err == nil {
			t.Errorf("ParseUPID(%q) = %+v, want an error", c.in, u)
		}
	}
	// The token ends at whitespace, so whitespace inside is not part of it.
	for _, s := range []string{"a b@1.2.3.4:5", "id@1.2.3.4 :5", "id@ 1.2.3.4:5"} {
		if u, err := parsePeerUPID(s); err == nil {
			t.Errorf("parsePeerUPID(%q) = %+v, want an error", s, u)
		}
	}
}

// TestParseUPIDRejectsWhitespace: a UPID text our API accepts must be one
// a peer reads back the same; peers stop at the first whitespace.
func TestParseUPIDRejectsWhitespace(t *testing.T) {
	for _, s := range []string{" id@1.2.3.4:5", "id @1.2.3.4:5", "a b@1.2.3.4:5", "id@1.2.3.4:5 ", "id\t@1.2.3.4:5", "id@[fe80::1%a b]:5", "id\n@1.2.3.4:5"} {
		if u, err := ParseUPID(s); err == nil {
			t.Errorf("ParseUPID(%q) = %+v, want an error", s, u)
		}
	}
}

func TestUPIDString(t *testing.T) {
	cases := []struct {
		u    UPID
		want string
	}{
		{UPID{"master", "10.0.0.1", 5050}, "master@10.0.0.1:5050"},
		{UPID{"slave(1)", "10.0.0.2", 5051}, "slave(1)@10.0.0.2:5051"},
		{UPID{"", "1.2.3.4", 5}, "@1.2.3.4:5"},
		{UPID{"x", "1.2.3.4", 0}, "x@1.2.3.4:0"},
		{UPID{"x", "255.255.255.255", 65535}, "x@255.255.255.255:65535"},
		{UPID{"x", "example.com", 80}, "x@example.com:80"},
		{UPID{"id", "::1", 5051}, "id@[::1]:5051"},
		{UPID{"id", "fe80::1%eth0", 1}, "id@[fe80::1%eth0]:1"},
	}
	for _, c := range cases {
		if got := c.u.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.u, got, c.want)
		}
		back, err := ParseUPID(c.want)
		if err != nil || back != c.u {
			t.Errorf("ParseUPID(%q) = %+v, %v; want %+v", c.want, back, err, c.u)
		}
	}
}

func TestUPIDHostPortAndAddress(t *testing.T) {
	if got := (UPID{"a", "1.2.3.4", 5}).HostPort(); got != "1.2.3.4:5" {
		t.Errorf("HostPort = %q", got)
	}
	if got := (UPID{"a", "::1", 5051}).HostPort(); got != "[::1]:5051" {
		t.Errorf("HostPort = %q", got)
	}
	if got := (UPID{"a", "example.com", 0}).HostPort(); got != "example.com:0" {
		t.Errorf("HostPort = %q", got)
	}
	if !(UPID{}).IsZero() || (UPID{Port: 1}).IsZero() || (UPID{ID: "a"}).IsZero() || (UPID{Host: "h"}).IsZero() {
		t.Errorf("IsZero wrong")
	}
}

// cxxModelPeerUPID is an independent model of C++'s UPID parsing for
// inputs without '[' after the '@' (C++ has no IPv6 form), with hostname
// resolution replaced by the character check our parser documents.
func cxxModelPeerUPID(s string) (UPID, bool) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" \t\r\n\v\f", r) })
	if len(fields) == 0 {
		return UPID{}, false
	}
	id, rest, ok := strings.Cut(fields[0], "@")
	if !ok {
		return UPID{}, false
	}
	host, port, ok := strings.Cut(rest, ":")
	if !ok || host == "" || len(host) > 253 {
		return UPID{}, false
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return UPID{}, false
		}
	}
	end := strings.IndexFunc(port, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(port)
	}
	n, err := strconv.ParseUint(port[:end], 10, 16)
	if err != nil {
		return UPID{}, false
	}
	return UPID{id, host, uint16(n)}, true
}

func FuzzParseUPID(f *testing.F) {
	for _, s := range []string{
		"master@10.0.0.1:5050", "slave(1)@10.0.0.2:5051", "@1.2.3.4:5", "id@[::1]:5051",
		"id@[fe80::1%eth0]:1", "id@1.2.3.4:5051junk", "  a@b:1 c", "a@b@c:1", "id@:1", "id@h:", "id@h:65536",
		"pkgpanda@agent-1.example.com:5052", "x@[::ffff:1.2.3.4]:0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		strict, serr := ParseUPID(s)
		peer, perr := parsePeerUPID(s)
		var ue *upidError
		if serr != nil && (!errors.As(serr, &ue) || strict != (UPID{})) {
			t.Fatalf("ParseUPID(%q) = %+v, %v", s, strict, serr)
		}
		if perr != nil && (!errors.As(perr, &ue) || peer != (UPID{})) {
			t.Fatalf("parsePeerUPID(%q) = %+v, %v", s, peer, perr)
		}
		if serr == nil {
			// Strict implies lenient, with the same result.
			if perr != nil || peer != strict {
				t.Fatalf("ParseUPID(%q) = %+v but parsePeerUPID = %+v, %v", s, strict, peer, perr)
			}
			// The text is already canonical, unless the port has leading
			// zeros.
			port := s[strings.LastIndexByte(s, ':')+1:]
			if !(len(port) > 1 && port[0] == '0') && strict.String() != s {
				t.Fatalf("ParseUPID(%q).String() = %q", s, strict.String())
			}
		}
		for _, u := range []UPID{strict, peer} {
			if u == (UPID{}) {
				continue
			}
			// Everything either parser accepts formats to text the strict
			// parser reads back identically.
			text := u.String()
			back, err := ParseUPID(text)
			if err != nil || back != u {
				t.Fatalf("ParseUPID(%q) (from %q) = %+v, %v; want %+v", text, s, back, err, u)
			}
			if !strings.Contains(u.Host, ":") {
				if want := u.ID + "@" + u.Host + ":" + strconv.Itoa(int(u.Port)); text != want {
					t.Fatalf("String() = %q, want %q", text, want)
				}
			}
		}
		// Against the model of C++ for the IPv4/hostname form.
		if _, rest, ok := strings.Cut(strings.TrimLeft(s, " \t\r\n\v\f"), "@"); ok && !strings.HasPrefix(rest, "[") {
			want, ok := cxxModelPeerUPID(s)
			if ok != (perr == nil) || want != peer {
				t.Fatalf("parsePeerUPID(%q) = %+v, %v; C++ model %+v, %v", s, peer, perr, want, ok)
			}
		}
	})
}
