package conformance

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzReadMessages feeds arbitrary bytes to the suite's own HTTP readers
// (responses from targets, requests from targets to the suite's peer): they
// must never panic, never return more body than their limits allow, and
// report a parsed message's raw bytes as a prefix of the input.
func FuzzReadMessages(f *testing.F) {
	f.Add([]byte("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("POST /conformance/pong HTTP/1.1\r\nUser-Agent: libprocess/a@1.2.3.4:5\r\nLibprocess-From: a@1.2.3.4:5\r\nConnection: Keep-Alive\r\nHost: 1.2.3.4:5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := readResponse(bufio.NewReader(bytes.NewReader(data))); err == nil {
			if len(r.Body) > maxBodyBytes {
				t.Fatalf("response body of %d bytes exceeds the limit", len(r.Body))
			}
		}
		if r, err := readRequest(bufio.NewReader(bytes.NewReader(data))); err == nil {
			if len(r.Body) > maxBodyBytes {
				t.Fatalf("request body of %d bytes exceeds the limit", len(r.Body))
			}
			if !bytes.HasPrefix(data, r.Raw) {
				t.Fatalf("raw request %q is not a prefix of the input", r.Raw)
			}
		}
	})
}
