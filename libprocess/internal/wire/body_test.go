package wire

import (
	"errors"
	"strings"
	"testing"
)

func bodyStatus(err error) int {
	var be *BodyError
	if errors.As(err, &be) {
		return be.Status
	}
	return 0
}

func TestChunkedDecoderValid(t *testing.T) {
	cases := []struct {
		name, raw, body string
		rest            string // bytes after the body, left unconsumed
	}{
		{"last-chunk only", "0\r\n\r\n", "", ""},
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", ""},
		{"several chunks", "3\r\nabc\r\n1\r\nd\r\nA\r\n0123456789\r\n0\r\n\r\n", "abcd0123456789", ""},
		{"upper and lower hex", "a\r\n0123456789\r\nB\r\n0123456789a\r\n0\r\n\r\n", "01234567890123456789a", ""},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", ""},
		{"15 hex digits", "000000000000005\r\nhello\r\n0\r\n\r\n", "hello", ""},
		{"extension", "5;name=value\r\nhello\r\n0;x\r\n\r\n", "hello", ""},
		{"space before extension", "5 ;a\r\nhello\r\n0\r\n\r\n", "hello", ""},
		{"trailing whitespace", "5 \t\r\nhello\r\n0\r\n\r\n", "hello", ""},
		{"bare LF framing", "5\nhello\n0\n\n", "hello", ""},
		{"trailers", "5\r\nhello\r\n0\r\nX-A: b\r\nX-C: d\r\n\r\n", "hello", ""},
		{"CRLF inside data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n", ""},
		{"next request follows", "1\r\nx\r\n0\r\n\r\nPOST / HTTP/1.1\r\n\r\n", "x", "POST / HTTP/1.1\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d ChunkedDecoder
			d.Reset(100)
			n, err := d.Feed([]byte(c.raw))
			if err != nil || !d.Done() {
				t.Fatalf("Feed = %d, %v, done %v", n, err, d.Done())
			}
			if string(d.Body) != c.body || c.raw[n:] != c.rest {
				t.Fatalf("body %q rest %q, want %q %q", d.Body, c.raw[n:], c.body, c.rest)
			}
			// Once done, further input is not consumed.
			if m, err := d.Feed([]byte("junk")); m != 0 || err != nil {
				t.Errorf("Feed after done = %d, %v", m, err)
			}
			whole := c.raw[:n]
			for k := 0; k <= len(whole); k++ {
				body, used, err := feedPieces(&d, 100, []byte(whole), []int{k})
				if err != nil || string(body) != c.body || used != n {
					t.Fatalf("split at %d: %q %d %v", k, body, used, err)
				}
			}
		})
	}
}

func TestChunkedDecoderErrors(t *testing.T) {
	cases := []struct {
		name, raw string
		max       int64
		status    int
	}{
		{"non-hex size", "zz\r\nhello\r\n0\r\n\r\n", 100, 400},
		{"empty size line", "\r\nhello\r\n0\r\n\r\n", 100, 400},
		{"hex then junk", "5x\r\nhello\r\n0\r\n\r\n", 100, 400},
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n", 100, 400},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 100, 400},
		{"size overflow 16 digits", "1000000000000000\r\n", 1 << 62, 400},
		{"size overflow 17 f", "fffffffffffffffff\r\n", 1 << 62, 400},
		{"size overflow 40 digits", strings.Repeat("f", 40) + "\r\n", 1 << 62, 400},
		{"missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", 100, 400},
		{"CR not followed by LF after data", "5\r\nhello\rX0\r\n\r\n", 100, 400},
		{"data longer than size", "3\r\nhello\r\n0\r\n\r\n", 100, 400},
		{"size line too long", "5;" + strings.Repeat("e", 2000) + "\r\nhello\r\n0\r\n\r\n", 100, 400},
		{"size line too long, incomplete", "5;" + strings.Repeat("e", 2000), 100, 400},
		{"trailer too long", "0\r\nX: " + strings.Repeat("t", MaxHeadSize) + "\r\n\r\n", 100, 400},
		{"trailers too long in total", "0\r\n" + strings.Repeat("X-Trailer: "+strings.Repeat("t", 100)+"\r\n", MaxHeadSize/100) + "\r\n", 100, 400},
		{"trailer too long, incomplete", "0\r\nX: " + strings.Repeat("t", MaxHeadSize), 100, 400},
		{"over Max in one chunk", "65\r\n" + strings.Repeat("b", 101) + "\r\n0\r\n\r\n", 100, 413},
		{"over Max across chunks", "32\r\n" + strings.Repeat("b", 50) + "\r\n33\r\n" + strings.Repeat("b", 51) + "\r\n0\r\n\r\n", 100, 413},
		{"huge declared size", "fffffffffffffff\r\n", 1 << 20, 413},
		{"any data with Max 0", "1\r\nx\r\n0\r\n\r\n", 0, 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d ChunkedDecoder
			d.Reset(c.max)
			n, err := d.Feed([]byte(c.raw))
			if got := bodyStatus(err); got != c.status {
				t.Fatalf("Feed = %d, %v (status %d), want %d", n, err, got, c.status)
			}
			if d.Done() {
				t.Errorf("done after an error")
			}
			if int64(len(d.Body)) > c.max {
				t.Errorf("decoder holds %d bytes, Max %d", len(d.Body), c.max)
			}
			if !strings.HasPrefix(err.Error(), "wire: bad request body: ") {
				t.Errorf("error text %q", err)
			}
			// Fed in pieces of every size, the verdict is the same.
			for _, size := range []int{1, 2, 3, 7, 100, 1000} {
				sizes := make([]int, len(c.raw)/size+1)
				for i := range sizes {
					sizes[i] = size
				}
				_, _, perr := feedPieces(&d, c.max, []byte(c.raw), sizes)
				if bodyStatus(perr) != c.status {
					t.Fatalf("pieces of %d: %v, want status %d", size, perr, c.status)
				}
			}
		})
	}
}

func TestChunkedDecoderMaxExact(t *testing.T) {
	var d ChunkedDecoder
	d.Reset(10)
	raw := "4\r\nabcd\r\n6\r\nefghij\r\n0\r\n\r\n"
	if n, err := d.Feed([]byte(raw)); err != nil || n != len(raw) || string(d.Body) != "abcdefghij" {
		t.Fatalf("body of exactly Max: %d %v %q", n, err, d.Body)
	}
	d.Reset(9)
	if _, err := d.Feed([]byte(raw)); bodyStatus(err) != 413 {
		t.Fatalf("body of Max+1: %v", err)
	}
}

func TestChunkedDecoderIncomplete(t *testing.T) {
	for _, raw := range []string{"", "5", "5\r", "5\r\nhel", "5\r\nhello", "5\r\nhello\r", "5\r\nhello\r\n0\r\n", "5\r\nhello\r\n0\r\nX: y\r\n"} {
		var d ChunkedDecoder
		d.Reset(100)
		n, err := d.Feed([]byte(raw))
		if err != ErrIncomplete || d.Done() {
			t.Errorf("%q: %d %v done %v", raw, n, err, d.Done())
		}
		if n > len(raw) {
			t.Errorf("%q: used %d", raw, n)
		}
	}
}

// TestChunkedDecoderReset reuses one decoder for two bodies, the second
// shorter than the first, and after an error.
func TestChunkedDecoderReset(t *testing.T) {
	var d ChunkedDecoder
	d.Reset(100)
	if _, err := d.Feed([]byte("zz\r\n")); err == nil {
		t.Fatal("no error")
	}
	d.Reset(100)
	if _, err := d.Feed([]byte("5\r\nhello\r\n0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	d.Reset(100)
	if _, err := d.Feed([]byte("0\r\nX: " + strings.Repeat("t", MaxHeadSize-100) + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	d.Reset(100)
	// The trailer budget starts over after Reset.
	if _, err := d.Feed([]byte("2\r\nhi\r\n0\r\nX: " + strings.Repeat("t", MaxHeadSize-100) + "\r\n\r\n")); err != nil || string(d.Body) != "hi" || !d.Done() {
		t.Fatalf("after reset: %v %q", err, d.Body)
	}
}

func TestChunkedDecoderZeroAllocs(t *testing.T) {
	raw := []byte(strings.Repeat("40\r\n"+strings.Repeat("z", 64)+"\r\n", 16) + "0\r\n\r\n")
	var d ChunkedDecoder
	d.Reset(1 << 20)
	if _, err := d.Feed(raw); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(1 << 20)
		if _, err := d.Feed(raw); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || len(d.Body) != 1024 {
		t.Errorf("%v allocs per body, body %d bytes", allocs, len(d.Body))
	}
}
