package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// peerCase is one request exactly as a real peer writes it (docs/libprocess-wire.md §2.5),
// with the values a reader must recover from it, written out by hand.
type peerCase struct {
	name string
	raw  string // the whole request, head and body

	headLen   int // bytes of the head, blank line included
	minor     int
	hasFrom   bool
	from      string // Libprocess-From value
	ua        string
	hasHost   bool
	host      string
	cl        int64
	chunked   bool
	keepAlive bool

	id, msgName, sender, body string
}

const (
	slaveUPID = "slave(1)@10.0.0.2:5051"
	schedUPID = "scheduler-5c1f0e2a-8b1d-4d3e-9a1b-7f2c3d4e5f60@10.0.0.3:40123"
	goUPID    = "scheduler(1)@10.0.0.9:36123"
	// A protobuf-looking body with bytes that matter to framing: CR, LF,
	// NUL, '0', high bytes.
	pbBody = "\n\x05hello\x12\r\n0\r\n\r\n\x00\xff\x1a\x03abcdefg"
)

func head(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// peerCases are the docs/libprocess-wire.md §2.5 shapes. Chunk sizes are written by hand.
var peerCases = []peerCase{
	{
		name: "mesos-0.22-1.11/chunked",
		raw: head(
			"POST /master/mesos.internal.RegisterSlaveMessage HTTP/1.1",
			"User-Agent: libprocess/"+slaveUPID,
			"Libprocess-From: "+slaveUPID,
			"Connection: Keep-Alive",
			"Host: ",
			"Transfer-Encoding: chunked",
		) + "1a\r\n" + pbBody + "\r\n0\r\n\r\n",
		minor: 1, hasFrom: true, from: slaveUPID, ua: "libprocess/" + slaveUPID,
		hasHost: true, host: "", cl: -1, chunked: true, keepAlive: true,
		id: "master", msgName: "mesos.internal.RegisterSlaveMessage", sender: slaveUPID, body: pbBody,
	},
	{
		name: "mesos-0.22-1.11/empty-body",
		raw: head(
			"POST /master/mesos.internal.PingSlaveMessage HTTP/1.1",
			"User-Agent: libprocess/"+slaveUPID,
			"Libprocess-From: "+slaveUPID,
			"Connection: Keep-Alive",
			"Host: ",
		),
		minor: 1, hasFrom: true, from: slaveUPID, ua: "libprocess/" + slaveUPID,
		hasHost: true, host: "", cl: -1, keepAlive: true,
		id: "master", msgName: "mesos.internal.PingSlaveMessage", sender: slaveUPID,
	},
	{
		name: "mesos-0.22-1.11/empty-host-no-space",
		raw: head(
			"POST /slave(1)/mesos.internal.RunTaskMessage HTTP/1.1",
			"User-Agent: libprocess/master@10.0.0.1:5050",
			"Libprocess-From: master@10.0.0.1:5050",
			"Connection: Keep-Alive",
			"Host:",
			"Transfer-Encoding: chunked",
		) + "5\r\nabcde\r\n0\r\n\r\n",
		minor: 1, hasFrom: true, from: "master@10.0.0.1:5050", ua: "libprocess/master@10.0.0.1:5050",
		hasHost: true, host: "", cl: -1, chunked: true, keepAlive: true,
		id: "slave(1)", msgName: "mesos.internal.RunTaskMessage", sender: "master@10.0.0.1:5050", body: "abcde",
	},
	{
		name: "mesos-post-2020/chunked",
		raw: head(
			"POST /pkgpanda/mesos.internal.PkgpandaCall HTTP/1.1",
			"User-Agent: libprocess/"+slaveUPID,
			"Libprocess-From: "+slaveUPID,
			"Connection: Keep-Alive",
			"Host: 10.0.0.1:5052",
			"Transfer-Encoding: chunked",
		) + "1a\r\n" + pbBody + "\r\n0\r\n\r\n",
		minor: 1, hasFrom: true, from: slaveUPID, ua: "libprocess/" + slaveUPID,
		hasHost: true, host: "10.0.0.1:5052", cl: -1, chunked: true, keepAlive: true,
		id: "pkgpanda", msgName: "mesos.internal.PkgpandaCall", sender: slaveUPID, body: pbBody,
	},
	{
		name: "mesos-post-2020/empty-body",
		raw: head(
			"POST /pkgpanda/mesos.internal.PkgpandaCall HTTP/1.1",
			"User-Agent: libprocess/"+slaveUPID,
			"Libprocess-From: "+slaveUPID,
			"Connection: Keep-Alive",
			"Host: 10.0.0.1:5052",
		),
		minor: 1, hasFrom: true, from: slaveUPID, ua: "libprocess/" + slaveUPID,
		hasHost: true, host: "10.0.0.1:5052", cl: -1, keepAlive: true,
		id: "pkgpanda", msgName: "mesos.internal.PkgpandaCall", sender: slaveUPID,
	},
	{
		name: "mesos-pre-0.22/http1.0-chunked",
		raw: head(
			"POST /master/mesos.internal.RegisterFrameworkMessage HTTP/1.0",
			"User-Agent: libprocess/"+schedUPID,
			"Connection: Keep-Alive",
			"Transfer-Encoding: chunked",
		) + "1A\r\n" + pbBody + "\r\n0\r\n\r\n",
		minor: 0, ua: "libprocess/" + schedUPID, cl: -1, chunked: true, keepAlive: true,
		id: "master", msgName: "mesos.internal.RegisterFrameworkMessage", sender: schedUPID, body: pbBody,
	},
	{
		name: "mesos-pre-0.22/http1.0-ua-only",
		raw: head(
			"POST /master/mesos.internal.UnregisterFrameworkMessage HTTP/1.0",
			"User-Agent: libprocess/"+schedUPID,
			"Transfer-Encoding: chunked",
		) + "3\r\nxyz\r\n0\r\n\r\n",
		minor: 0, ua: "libprocess/" + schedUPID, cl: -1, chunked: true, keepAlive: false,
		id: "master", msgName: "mesos.internal.UnregisterFrameworkMessage", sender: schedUPID, body: "xyz",
	},
	{
		name: "mesos-go/content-length",
		raw: head(
			"POST /pkgpanda/mesos.internal.PkgpandaCall HTTP/1.1",
			"Host: 10.0.0.1:5052",
			"User-Agent: Go-http-client/1.1",
			"Content-Length: 26",
			"Connection: Keep-Alive",
			"Content-Type: application/x-protobuf",
			"Libprocess-From: "+goUPID,
			"Accept-Encoding: gzip",
		) + pbBody,
		minor: 1, hasFrom: true, from: goUPID, ua: "Go-http-client/1.1",
		hasHost: true, host: "10.0.0.1:5052", cl: 26, keepAlive: true,
		id: "pkgpanda", msgName: "mesos.internal.PkgpandaCall", sender: goUPID, body: pbBody,
	},
	{
		name: "mesos-go/empty-body",
		raw: head(
			"POST /pkgpanda/mesos.internal.Ping HTTP/1.1",
			"Host: 10.0.0.1:5052",
			"User-Agent: Go-http-client/1.1",
			"Content-Length: 0",
			"Connection: Keep-Alive",
			"Content-Type: application/x-protobuf",
			"Libprocess-From:  "+goUPID+" \t",
		),
		minor: 1, hasFrom: true, from: goUPID, ua: "Go-http-client/1.1",
		hasHost: true, host: "10.0.0.1:5052", cl: 0, keepAlive: true,
		id: "pkgpanda", msgName: "mesos.internal.Ping", sender: goUPID,
	},
}

func init() {
	for i := range peerCases {
		c := &peerCases[i]
		c.headLen = strings.Index(c.raw, "\r\n\r\n") + 4
	}
	if len(pbBody) != 0x1a {
		panic(fmt.Sprintf("pbBody is %d bytes, the cases say 0x1a", len(pbBody)))
	}
}

// readRequest parses one whole request from the start of buf the way the
// message connection does: head, then body by Content-Length or chunked.
// It returns the head, the body and the bytes used.
func readRequest(buf []byte, h *Head, d *ChunkedDecoder) (body []byte, n int, err error) {
	hn, err := ParseHead(buf, h)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case h.Chunked:
		d.Reset(1 << 20)
		bn, err := d.Feed(buf[hn:])
		if err != nil {
			return nil, 0, err
		}
		if !d.Done() {
			return nil, 0, errors.New("decoder returned nil but is not done")
		}
		return d.Body, hn + bn, nil
	case h.ContentLength > 0:
		end := hn + int(h.ContentLength)
		if end > len(buf) {
			return nil, 0, ErrIncomplete
		}
		return buf[hn:end], end, nil
	}
	return nil, hn, nil
}

func checkPeerHead(t *testing.T, c *peerCase, h *Head) {
	t.Helper()
	if string(h.Method) != "POST" {
		t.Errorf("Method = %q", h.Method)
	}
	if h.Minor != c.minor {
		t.Errorf("Minor = %d, want %d", h.Minor, c.minor)
	}
	if h.HasFrom != c.hasFrom || string(h.LibprocessFrom) != c.from {
		t.Errorf("From = %v %q, want %v %q", h.HasFrom, h.LibprocessFrom, c.hasFrom, c.from)
	}
	if string(h.UserAgent) != c.ua {
		t.Errorf("UserAgent = %q, want %q", h.UserAgent, c.ua)
	}
	if h.HasHost != c.hasHost || string(h.Host) != c.host {
		t.Errorf("Host = %v %q, want %v %q", h.HasHost, h.Host, c.hasHost, c.host)
	}
	if h.ContentLength != c.cl || h.Chunked != c.chunked {
		t.Errorf("ContentLength, Chunked = %d %v, want %d %v", h.ContentLength, h.Chunked, c.cl, c.chunked)
	}
	if h.KeepAlive() != c.keepAlive {
		t.Errorf("KeepAlive() = %v, want %v", h.KeepAlive(), c.keepAlive)
	}
	if !IsMessage(h) {
		t.Errorf("IsMessage = false")
	}
	if got := string(Sender(h)); got != c.sender {
		t.Errorf("Sender = %q, want %q", got, c.sender)
	}
	id, name, err := SplitMessagePath(h.Target)
	if err != nil || string(id) != c.id || string(name) != c.msgName {
		t.Errorf("SplitMessagePath(%q) = %q %q %v, want %q %q", h.Target, id, name, err, c.id, c.msgName)
	}
}

func TestPeerShapes(t *testing.T) {
	for i := range peerCases {
		c := &peerCases[i]
		t.Run(c.name, func(t *testing.T) {
			var h Head
			var d ChunkedDecoder
			buf := []byte(c.raw)
			body, n, err := readRequest(buf, &h, &d)
			if err != nil {
				t.Fatalf("readRequest: %v", err)
			}
			if n != len(buf) {
				t.Errorf("used %d bytes of %d", n, len(buf))
			}
			checkPeerHead(t, c, &h)
			if string(body) != c.body {
				t.Errorf("body = %q, want %q", body, c.body)
			}
		})
	}
}

// TestPeerShapesEverySplit feeds each request cut at every byte: the head
// must be ErrIncomplete until its last byte arrives, and then parse to the
// same length; the chunked body fed as two pieces cut anywhere must decode
// to the same body and consume exactly the rest.
func TestPeerShapesEverySplit(t *testing.T) {
	for i := range peerCases {
		c := &peerCases[i]
		t.Run(c.name, func(t *testing.T) {
			buf := []byte(c.raw)
			var h Head
			for k := 0; k <= len(buf); k++ {
				n, err := ParseHead(buf[:k:k], &h)
				if k < c.headLen {
					if err != ErrIncomplete {
						t.Fatalf("ParseHead(first %d of %d head bytes) = %d, %v; want ErrIncomplete", k, c.headLen, n, err)
					}
					continue
				}
				if err != nil || n != c.headLen {
					t.Fatalf("ParseHead(first %d bytes) = %d, %v; want %d", k, n, err, c.headLen)
				}
				checkPeerHead(t, c, &h)
			}
			if !c.chunked {
				return
			}
			bodyBytes := buf[c.headLen:]
			var d ChunkedDecoder
			for k := 0; k <= len(bodyBytes); k++ {
				got, used, err := feedPieces(&d, 1<<20, bodyBytes, []int{k})
				if err != nil || string(got) != c.body || used != len(bodyBytes) {
					t.Fatalf("split at %d: body %q used %d err %v; want %q used %d", k, got, used, err, c.body, len(bodyBytes))
				}
			}
			got, used, err := feedPieces(&d, 1<<20, bodyBytes, ones(len(bodyBytes)))
			if err != nil || string(got) != c.body || used != len(bodyBytes) {
				t.Fatalf("byte at a time: body %q used %d err %v", got, used, err)
			}
		})
	}
}

func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// feedPieces feeds data to a reset decoder the way a connection does:
// bytes arrive in pieces of the given sizes (the remainder as a last
// piece), unconsumed bytes are kept and fed again with the next piece. It
// returns the body, the bytes consumed when the decoder finished, and the
// error: nil when done, ErrIncomplete when the data ran out, else the
// decoder's error.
func feedPieces(d *ChunkedDecoder, max int64, data []byte, sizes []int) ([]byte, int, error) {
	d.Reset(max)
	var pending []byte
	consumed, pos := 0, 0
	for i := 0; ; i++ {
		if pos == len(data) && i > 0 {
			return d.Body, consumed, ErrIncomplete
		}
		size := len(data) - pos
		if i < len(sizes) && sizes[i] < size {
			size = sizes[i]
		}
		if size < 0 {
			size = 0
		}
		pending = append(pending, data[pos:pos+size]...)
		pos += size
		n, err := d.Feed(pending)
		if n < 0 || n > len(pending) {
			return d.Body, consumed, fmt.Errorf("Feed used %d of %d bytes", n, len(pending))
		}
		consumed += n
		pending = pending[n:]
		if err == ErrIncomplete {
			continue
		}
		if err == nil && !d.Done() {
			return d.Body, consumed, errors.New("Feed returned nil before done")
		}
		if err != nil && d.Done() {
			return d.Body, consumed, errors.New("Feed failed after done")
		}
		return d.Body, consumed, err
	}
}

// TestPeerShapesPipelined puts every shape back to back in one buffer (as
// a peer pipelining on a keep-alive connection does), parses them in
// order, and also delivers the same stream in random-sized reads.
func TestPeerShapesPipelined(t *testing.T) {
	var stream []byte
	for _, c := range peerCases {
		stream = append(stream, c.raw...)
	}
	stream = append(stream, peerCases[0].raw...) // the same shape twice in a row

	want := append(append([]peerCase(nil), peerCases...), peerCases[0])
	var h Head
	var d ChunkedDecoder
	off := 0
	for i := range want {
		body, n, err := readRequest(stream[off:], &h, &d)
		if err != nil {
			t.Fatalf("request %d (%s): %v", i, want[i].name, err)
		}
		checkPeerHead(t, &want[i], &h)
		if string(body) != want[i].body {
			t.Fatalf("request %d body %q, want %q", i, body, want[i].body)
		}
		off += n
	}
	if off != len(stream) {
		t.Fatalf("consumed %d of %d bytes", off, len(stream))
	}

	// The same stream arriving in random reads, parsed incrementally.
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 200; trial++ {
		got := streamParse(t, stream, func() int { return 1 + rng.Intn(64) })
		if len(got) != len(want) {
			t.Fatalf("trial %d: got %d requests, want %d", trial, len(got), len(want))
		}
		for i := range want {
			if got[i].id != want[i].id || got[i].name != want[i].msgName || got[i].body != want[i].body || got[i].sender != want[i].sender {
				t.Fatalf("trial %d request %d = %+v, want %s", trial, i, got[i], want[i].name)
			}
		}
	}
}

type parsedMsg struct{ id, name, sender, body string }

// streamParse is a miniature message connection: a buffer filled by reads
// of next() bytes, heads parsed with ParseHead, bodies by Content-Length or
// the chunked decoder.
func streamParse(t *testing.T, stream []byte, next func() int) []parsedMsg {
	t.Helper()
	var (
		buf  []byte
		pos  int
		h    Head
		d    ChunkedDecoder
		out  []parsedMsg
		read = func() bool {
			if pos == len(stream) {
				return false
			}
			n := min(next(), len(stream)-pos)
			buf = append(buf, stream[pos:pos+n]...)
			pos += n
			return true
		}
	)
	for {
		n, err := ParseHead(buf, &h)
		if err == ErrIncomplete {
			if !read() {
				if len(buf) != 0 {
					t.Fatalf("stream ended inside a head: %q", buf)
				}
				return out
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseHead: %v", err)
		}
		id, name, _ := SplitMessagePath(h.Target)
		m := parsedMsg{id: string(id), name: string(name), sender: string(Sender(&h))}
		buf = buf[n:]
		switch {
		case h.Chunked:
			d.Reset(1 << 20)
			for {
				used, err := d.Feed(buf)
				buf = buf[used:]
				if err == nil {
					break
				}
				if err != ErrIncomplete || !read() {
					t.Fatalf("chunked body: %v", err)
				}
			}
			m.body = string(d.Body)
		case h.ContentLength > 0:
			for int64(len(buf)) < h.ContentLength {
				if !read() {
					t.Fatalf("stream ended inside a body")
				}
			}
			m.body = string(buf[:h.ContentLength])
			buf = buf[h.ContentLength:]
		}
		// Copy the rest: the head's slices alias buf.
		buf = bytes.Clone(buf)
		out = append(out, m)
	}
}
