package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestAppendMessageExact(t *testing.T) {
	const from = "pkgpanda@10.0.0.1:5052"
	cases := []struct {
		name                string
		toID, hostPort, msg string
		body                string
		want                string
	}{
		{
			name: "empty body", toID: "slave(1)", hostPort: "10.0.0.2:5051", msg: "mesos.internal.Ping",
			want: "POST /slave(1)/mesos.internal.Ping HTTP/1.1\r\n" +
				"User-Agent: libprocess/pkgpanda@10.0.0.1:5052\r\n" +
				"Libprocess-From: pkgpanda@10.0.0.1:5052\r\n" +
				"Connection: Keep-Alive\r\n" +
				"Host: 10.0.0.2:5051\r\n" +
				"\r\n",
		},
		{
			name: "non-empty body", toID: "master", hostPort: "10.0.0.3:5050", msg: "mesos.internal.PkgpandaResponse",
			body: "0123456789abcdefghijklmnopqrstuvwxyz", // 36 = 0x24 bytes
			want: "POST /master/mesos.internal.PkgpandaResponse HTTP/1.1\r\n" +
				"User-Agent: libprocess/pkgpanda@10.0.0.1:5052\r\n" +
				"Libprocess-From: pkgpanda@10.0.0.1:5052\r\n" +
				"Connection: Keep-Alive\r\n" +
				"Host: 10.0.0.3:5050\r\n" +
				"Transfer-Encoding: chunked\r\n" +
				"\r\n" +
				"24\r\n0123456789abcdefghijklmnopqrstuvwxyz\r\n" +
				"0\r\n" +
				"\r\n",
		},
		{
			name: "hex size with letters is lower case", toID: "m", hostPort: "h:1", msg: "n",
			body: strings.Repeat("x", 0xabc),
			want: "POST /m/n HTTP/1.1\r\nUser-Agent: libprocess/pkgpanda@10.0.0.1:5052\r\nLibprocess-From: pkgpanda@10.0.0.1:5052\r\n" +
				"Connection: Keep-Alive\r\nHost: h:1\r\nTransfer-Encoding: chunked\r\n\r\nabc\r\n" + strings.Repeat("x", 0xabc) + "\r\n0\r\n\r\n",
		},
		{
			name: "empty receiver id", toID: "", hostPort: "10.0.0.2:5051", msg: "mesos.internal.Ping",
			want: "POST /mesos.internal.Ping HTTP/1.1\r\n" +
				"User-Agent: libprocess/pkgpanda@10.0.0.1:5052\r\n" +
				"Libprocess-From: pkgpanda@10.0.0.1:5052\r\n" +
				"Connection: Keep-Alive\r\n" +
				"Host: 10.0.0.2:5051\r\n" +
				"\r\n",
		},
		{
			name: "receiver id is percent-encoded", toID: "a b/c%", hostPort: "h:1", msg: "x/y",
			want: "POST /a%20b%2Fc%25/x/y HTTP/1.1\r\nUser-Agent: libprocess/pkgpanda@10.0.0.1:5052\r\nLibprocess-From: pkgpanda@10.0.0.1:5052\r\n" +
				"Connection: Keep-Alive\r\nHost: h:1\r\n\r\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prefix := []byte("previous bytes")
			got := AppendMessage(prefix, from, c.toID, c.hostPort, c.msg, []byte(c.body))
			if !bytes.HasPrefix(got, []byte("previous bytes")) {
				t.Fatalf("dst prefix clobbered")
			}
			if g := string(got[len("previous bytes"):]); g != c.want {
				t.Fatalf("got\n%q\nwant\n%q", g, c.want)
			}
		})
	}
}

func TestAppendMessageReadBack(t *testing.T) {
	bodies := []string{"", "x", "\r\n0\r\n\r\n", strings.Repeat("\x00\xff", 3000)}
	for _, body := range bodies {
		raw := AppendMessage(nil, "slave(1)@10.0.0.2:5051", "pkgpanda", "10.0.0.1:5052", "mesos.internal.PkgpandaCall", []byte(body))
		var h Head
		var d ChunkedDecoder
		got, n, err := readRequest(raw, &h, &d)
		if err != nil || n != len(raw) {
			t.Fatalf("readRequest: %d %v", n, err)
		}
		if !IsMessage(&h) || string(Sender(&h)) != "slave(1)@10.0.0.2:5051" || string(h.Host) != "10.0.0.1:5052" || !h.KeepAlive() {
			t.Errorf("head: %+v", h)
		}
		id, name, err := SplitMessagePath(h.Target)
		if err != nil || string(id) != "pkgpanda" || string(name) != "mesos.internal.PkgpandaCall" {
			t.Errorf("path: %q %q %v", id, name, err)
		}
		if string(got) != body {
			t.Errorf("body %d bytes, want %d", len(got), len(body))
		}
		if (body == "") != (!h.Chunked && h.ContentLength == -1) {
			t.Errorf("body %d bytes: Chunked %v ContentLength %d", len(body), h.Chunked, h.ContentLength)
		}
	}
}

func TestIsMessageAndSender(t *testing.T) {
	cases := []struct {
		raw    string
		msg    bool
		sender string
	}{
		{"POST /a/b HTTP/1.1\r\nLibprocess-From: x@1.2.3.4:5\r\n\r\n", true, "x@1.2.3.4:5"},
		{"POST /a/b HTTP/1.1\r\nUser-Agent: libprocess/x@1.2.3.4:5\r\n\r\n", true, "x@1.2.3.4:5"},
		{"POST /a/b HTTP/1.1\r\nUser-Agent: libprocess/ x@1.2.3.4:5 \r\n\r\n", true, "x@1.2.3.4:5"},
		{"POST /a/b HTTP/1.1\r\nUser-Agent: libprocess/u@1.1.1.1:1\r\nLibprocess-From:\tf@2.2.2.2:2 \r\n\r\n", true, "f@2.2.2.2:2"},
		{"POST /a/b HTTP/1.1\r\nlibprocess-from: f@2.2.2.2:2\r\n\r\n", true, "f@2.2.2.2:2"},
		{"POST /a/b HTTP/1.1\r\nLibprocess-From:\r\n\r\n", true, ""},
		{"POST /a/b HTTP/1.1\r\nUser-Agent: libprocess/\r\n\r\n", true, ""},
		{"POST /a/b HTTP/1.1\r\nUser-Agent: curl/8.0\r\n\r\n", false, ""},
		{"POST /a/b HTTP/1.1\r\nUser-Agent: Libprocess/x@1.2.3.4:5\r\n\r\n", false, ""},
		{"POST /a/b HTTP/1.1\r\nUser-Agent: libprocess\r\n\r\n", false, ""},
		{"POST /a/b HTTP/1.1\r\n\r\n", false, ""},
		{"GET /a/b HTTP/1.1\r\nLibprocess-From: x@1.2.3.4:5\r\n\r\n", false, "x@1.2.3.4:5"},
		{"post /a/b HTTP/1.1\r\nLibprocess-From: x@1.2.3.4:5\r\n\r\n", false, "x@1.2.3.4:5"},
		{"PUT /a/b HTTP/1.1\r\nUser-Agent: libprocess/x@1.2.3.4:5\r\n\r\n", false, "x@1.2.3.4:5"},
	}
	for _, c := range cases {
		var h Head
		if _, err := ParseHead([]byte(c.raw), &h); err != nil {
			t.Fatalf("%q: %v", c.raw, err)
		}
		if IsMessage(&h) != c.msg {
			t.Errorf("%q: IsMessage = %v", c.raw, !c.msg)
		}
		if got := string(Sender(&h)); got != c.sender {
			t.Errorf("%q: Sender = %q, want %q", c.raw, got, c.sender)
		}
	}
}

func TestSplitMessagePath(t *testing.T) {
	cases := []struct {
		target, id, name string
		err              error
	}{
		{"/master/mesos.internal.RegisterFrameworkMessage", "master", "mesos.internal.RegisterFrameworkMessage", nil},
		{"/slave(1)/a/b/c", "slave(1)", "a/b/c", nil},
		{"/pkgpanda/", "pkgpanda", "", nil},
		{"/pkgpanda", "pkgpanda", "", nil},
		{"/", "", "", nil},
		{"//name", "", "name", nil},
		{"/a%20b/n", "a%20b", "n", nil},
		{"/id/name?x=1/2", "id", "name", nil},
		{"/id?q", "id", "", nil},
		{"/id/a//b/", "id", "a//b/", nil},
		{"", "", "", ErrPathNotAbsolute},
		{"master/x", "", "", ErrPathNotAbsolute},
		{"*", "", "", ErrPathNotAbsolute},
		// Absolute form: the path is the URL's (Mesos >= 1.4 process.cpp).
		{"http://10.0.0.1:5051/master/mesos.internal.X", "master", "mesos.internal.X", nil},
		{"https://h/slave(1)/a/b?q=/x", "slave(1)", "a/b", nil},
		{"HTTP://h:1/id", "id", "", nil},
		{"http://h:5051", "", "", ErrPathNotAbsolute},
		{"http://h:5051?x/y", "", "", ErrPathNotAbsolute},
		{"http:/h/a", "", "", ErrPathNotAbsolute},
		{"1http://h/a", "", "", ErrPathNotAbsolute},
		{"://h/a", "", "", ErrPathNotAbsolute},
		{"/a#frag/b", "a", "", nil},
	}
	for _, c := range cases {
		id, name, err := SplitMessagePath([]byte(c.target))
		if !errors.Is(err, c.err) || string(id) != c.id || string(name) != c.name {
			t.Errorf("SplitMessagePath(%q) = %q, %q, %v; want %q, %q, %v", c.target, id, name, err, c.id, c.name, c.err)
		}
	}
}

func TestPercentDecode(t *testing.T) {
	cases := []struct {
		in, out string
		badAt   int // -1 when valid
	}{
		{"", "", -1},
		{"plain", "plain", -1},
		{"a%20b", "a b", -1},
		{"%41%62%7e%7E", "Ab~~", -1},
		{"%00%ff%FF", "\x00\xff\xff", -1},
		{"a+b", "a+b", -1},
		{"%2525", "%25", -1},
		{"slave%281%29", "slave(1)", -1},
		{"%", "", 0},
		{"ab%", "ab", 2},
		{"ab%4", "ab", 2},
		{"%4g", "", 0},
		{"%g4", "", 0},
		{"ok%20%zz", "ok ", 5},
	}
	for _, c := range cases {
		got, err := PercentDecode([]byte("pre:"), []byte(c.in))
		var pe *PercentError
		if c.badAt < 0 {
			if err != nil || string(got) != "pre:"+c.out {
				t.Errorf("PercentDecode(%q) = %q, %v; want %q", c.in, got, err, c.out)
			}
			continue
		}
		if !errors.As(err, &pe) || pe.Offset != c.badAt {
			t.Errorf("PercentDecode(%q) err = %v, want offset %d", c.in, err, c.badAt)
			continue
		}
		if !strings.Contains(err.Error(), "offset") {
			t.Errorf("error text %q", err)
		}
		if string(got) != "pre:"+c.out {
			t.Errorf("PercentDecode(%q) partial = %q, want %q", c.in, got, "pre:"+c.out)
		}
	}
}

func TestPercentEncodeID(t *testing.T) {
	cases := []struct{ in, out string }{
		{"", ""},
		{"pkgpanda", "pkgpanda"},
		{"slave(1)", "slave(1)"},
		{"scheduler-5c1f_0.~x", "scheduler-5c1f_0.~x"},
		{"a@b:c", "a@b:c"},
		{"a b", "a%20b"},
		{"a/b", "a%2Fb"},
		{"a%b", "a%25b"},
		{"a?b#c", "a%3Fb%23c"},
		{"a+b", "a%2Bb"},
		{"\x00\x7f\x80\xff", "%00%7F%80%FF"},
		{"é", "%C3%A9"},
	}
	for _, c := range cases {
		if got := string(PercentEncodeID([]byte("x"), c.in)); got != "x"+c.out {
			t.Errorf("PercentEncodeID(%q) = %q, want %q", c.in, got, "x"+c.out)
		}
	}
}

// TestAppendResponseExact pins the bytes of message answers. A closing
// answer carries no Connection header, as C++ libprocess writes none.
func TestAppendResponseExact(t *testing.T) {
	date := []byte("Tue, 01 Jul 2025 10:00:00 GMT")
	cases := []struct {
		status  int
		body    string
		closing bool
		want    string
	}{
		{202, "", false, "HTTP/1.1 202 Accepted\r\nDate: Tue, 01 Jul 2025 10:00:00 GMT\r\nContent-Length: 0\r\n\r\n"},
		{404, "", true, "HTTP/1.1 404 Not Found\r\nDate: Tue, 01 Jul 2025 10:00:00 GMT\r\nContent-Length: 0\r\n\r\n"},
		{400, "bad sender\n", true, "HTTP/1.1 400 Bad Request\r\nDate: Tue, 01 Jul 2025 10:00:00 GMT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\n\r\nbad sender\n"},
		{431, "", true, "HTTP/1.1 431 Request Header Fields Too Large\r\nDate: Tue, 01 Jul 2025 10:00:00 GMT\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, c := range cases {
		if got := string(AppendResponse(nil, c.status, date, c.body, c.closing)); got != c.want {
			t.Errorf("AppendResponse(%d) =\n%q\nwant\n%q", c.status, got, c.want)
		}
	}
}

func TestStatusText(t *testing.T) {
	want := map[int]string{
		200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found",
		413: "Request Entity Too Large", 431: "Request Header Fields Too Large",
		500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
		505: "HTTP Version Not Supported", 418: "Unknown", 0: "Unknown",
	}
	for code, text := range want {
		if got := StatusText(code); got != text {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, text)
		}
	}
	// Every status the parser can produce has a reason phrase.
	for _, s := range []int{400, 413, 431, 501, 505} {
		if StatusText(s) == "Unknown" {
			t.Errorf("no reason phrase for %d", s)
		}
	}
}
