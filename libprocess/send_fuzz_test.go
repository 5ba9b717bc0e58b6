package libprocess

import (
	"bytes"
	"strings"
	"testing"

	"github.com/procpanda/procpanda/libprocess/internal/wire"
)

// FuzzSendTarget checks Send's target rule against the bytes it guards: a
// receiver id and message name that validateSend accepts produce a request
// head of exactly the five lines libprocess writes, whose request line
// splits back into that id and name; validateSend refuses exactly the ids
// and names with a byte outside the rule.
func FuzzSendTarget(f *testing.F) {
	for _, s := range [][2]string{
		{"pkgpanda", "mesos.internal.PkgpandaCall"},
		{"slave(1)", "nested/name"},
		{"sink", "x HTTP/1.1\r\nX-Injected: 1\r\n\r\nPOST /sink/y"},
		{"sink\r\nX: y", "m"},
		{"", "m"},
		{"a/b", "m"},
		{"id", "q?x=1"},
		{"id", "caf\xc3\xa9"},
	} {
		f.Add(s[0], s[1])
	}
	const from = "pkgpanda@127.0.0.1:5051"
	f.Fuzz(func(t *testing.T, id, name string) {
		to := UPID{ID: id, Host: "127.0.0.1", Port: 5050}
		err := validateSend(to, name)
		ok := func(s string, slash bool) bool {
			if s == "" {
				return false
			}
			for i := 0; i < len(s); i++ {
				c := s[i]
				if c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' || (c == '/' && !slash) {
					return false
				}
			}
			return true
		}
		if want := ok(id, false) && ok(name, true); (err == nil) != want {
			t.Fatalf("validateSend(%q, %q) = %v, want accepted=%v", id, name, err, want)
		}
		if err != nil {
			return
		}
		msg := wire.AppendMessage(nil, from, id, to.HostPort(), name, []byte("body"))
		head, _, found := bytes.Cut(msg, []byte("\r\n\r\n"))
		if !found {
			t.Fatalf("no end of head in %q", msg)
		}
		lines := strings.Split(string(head), "\r\n")
		if len(lines) != 6 || strings.ContainsAny(string(head), "\x00") {
			t.Fatalf("head has %d lines, want 6: %q", len(lines), head)
		}
		for _, l := range lines {
			if strings.ContainsAny(l, "\r\n") {
				t.Fatalf("bare CR or LF in head line %q", l)
			}
		}
		method, rest, _ := strings.Cut(lines[0], " ")
		target, proto, _ := strings.Cut(rest, " ")
		if method != "POST" || proto != "HTTP/1.1" {
			t.Fatalf("request line %q", lines[0])
		}
		rawID, gotName, err := wire.SplitMessagePath([]byte(target))
		if err != nil {
			t.Fatalf("target %q: %v", target, err)
		}
		gotID, err := wire.PercentDecode(nil, rawID)
		if err != nil || string(gotID) != id || string(gotName) != name {
			t.Fatalf("target %q splits into %q %q (%v), want %q %q", target, gotID, gotName, err, id, name)
		}
	})
}
