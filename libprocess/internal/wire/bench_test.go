package wire

import (
	"bytes"
	"testing"
)

// mesosMessage1KiB is a Mesos 1.x message with a 1 KiB body, as AppendMessage
// and C++ libprocess write it (chunked).
func mesosMessage1KiB() []byte {
	return AppendMessage(nil, "slave(1)@10.0.0.2:5051", "master", "10.0.0.1:5050",
		"mesos.internal.StatusUpdateMessage", bytes.Repeat([]byte{0x5a}, 1024))
}

// BenchmarkReadMessageChunked1KiB parses head and chunked body of a 1 KiB
// Mesos-style message with a reused Head and decoder: 0 allocs/op.
func BenchmarkReadMessageChunked1KiB(b *testing.B) {
	raw := mesosMessage1KiB()
	var h Head
	var d ChunkedDecoder
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := ParseHead(raw, &h)
		if err != nil || !IsMessage(&h) {
			b.Fatal(err)
		}
		d.Reset(1 << 20)
		m, err := d.Feed(raw[n:])
		if err != nil || n+m != len(raw) || len(d.Body) != 1024 {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadMessagePipelined parses 16 pipelined 1 KiB messages from
// one buffer, split into 1500-byte reads (one Ethernet frame each).
func BenchmarkReadMessagePipelined(b *testing.B) {
	one := mesosMessage1KiB()
	stream := bytes.Repeat(one, 16)
	var h Head
	var d ChunkedDecoder
	buf := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		buf, pos, msgs := buf[:0], 0, 0
		read := func() {
			n := min(1500, len(stream)-pos)
			buf = append(buf, stream[pos:pos+n]...)
			pos += n
		}
		for msgs < 16 {
			n, err := ParseHead(buf, &h)
			if err == ErrIncomplete {
				read()
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			buf = buf[:copy(buf, buf[n:])]
			d.Reset(1 << 20)
			for {
				used, err := d.Feed(buf)
				buf = buf[:copy(buf, buf[used:])]
				if err == nil {
					break
				}
				if err != ErrIncomplete {
					b.Fatal(err)
				}
				read()
			}
			msgs++
		}
	}
}

func BenchmarkAppendMessage1KiB(b *testing.B) {
	body := bytes.Repeat([]byte{0x5a}, 1024)
	dst := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendMessage(dst[:0], "slave(1)@10.0.0.2:5051", "master", "10.0.0.1:5050", "mesos.internal.StatusUpdateMessage", body)
	}
}
