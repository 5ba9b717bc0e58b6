package wire

import "fmt"

// BodyError is a request body that cannot be read: bad chunk framing or a
// body larger than the configured limit. The connection cannot continue
// after it.
type BodyError struct {
	Status int    // HTTP status to answer with (400 framing, 413 too large)
	Reason string // what was wrong
}

// Error implements error.
func (e *BodyError) Error() string { return fmt.Sprintf("wire: bad request body: %s", e.Reason) }

// chunk decoder states.
const (
	chunkSize     = iota // reading the hex size line
	chunkData            // reading size bytes of data
	chunkDataCRLF        // reading the CRLF after the data
	chunkTrailer         // reading trailer lines until an empty one
	chunkDone
)

// ChunkedDecoder decodes a chunked body incrementally: Feed it whatever
// bytes have arrived and it appends the decoded data to its Body, keeping
// its place across calls. It never buffers more than Max decoded bytes.
// The zero value is not usable; call Reset first.
type ChunkedDecoder struct {
	Body  []byte // decoded data so far; reused across Reset calls
	Max   int64  // largest body accepted
	state int
	left  int64 // bytes of chunk data still to read
	tlen  int   // trailer bytes consumed so far
}

// maxChunkLine bounds a chunk-size line, extensions and terminator
// included.
const maxChunkLine = 1024

// Reset prepares d for a new body of at most max bytes, reusing Body's
// backing array.
func (d *ChunkedDecoder) Reset(max int64) {
	d.Body = d.Body[:0]
	d.Max = max
	d.state = chunkSize
	d.left = 0
	d.tlen = 0
}

// Done reports whether the last-chunk and trailers have been consumed.
func (d *ChunkedDecoder) Done() bool { return d.state == chunkDone }

// Feed consumes as much of buf as it can and returns how many bytes it
// used. When it needs more input it returns ErrIncomplete along with the
// bytes used so far (the caller drops those and feeds the rest later);
// framing errors and oversize bodies are *BodyError.
func (d *ChunkedDecoder) Feed(buf []byte) (int, error) {
	off := 0
	for {
		switch d.state {
		case chunkDone:
			return off, nil
		case chunkSize:
			line, next, ok := nextLine(buf, off)
			// Checked on complete and partial lines alike, so the verdict
			// does not depend on how the input was split.
			if !ok {
				if len(buf)-off >= maxChunkLine {
					return off, &BodyError{Status: 400, Reason: "chunk size line too long"}
				}
				return off, ErrIncomplete
			}
			if next-off > maxChunkLine {
				return off, &BodyError{Status: 400, Reason: "chunk size line too long"}
			}
			size, err := parseChunkSize(line)
			if err != nil {
				return off, err
			}
			off = next
			if size == 0 {
				d.state = chunkTrailer
				continue
			}
			if int64(len(d.Body))+size > d.Max {
				return off, &BodyError{Status: 413, Reason: fmt.Sprintf("body larger than %d bytes", d.Max)}
			}
			d.left = size
			d.state = chunkData
		case chunkData:
			n := int64(len(buf) - off)
			if n == 0 {
				return off, ErrIncomplete
			}
			if n > d.left {
				n = d.left
			}
			d.Body = append(d.Body, buf[off:off+int(n)]...)
			off += int(n)
			d.left -= n
			if d.left == 0 {
				d.state = chunkDataCRLF
			}
		case chunkDataCRLF:
			if off < len(buf) && buf[off] == '\n' {
				off++
				d.state = chunkSize
				continue
			}
			if len(buf)-off < 2 {
				return off, ErrIncomplete
			}
			if buf[off] != '\r' || buf[off+1] != '\n' {
				return off, &BodyError{Status: 400, Reason: "chunk data not followed by CRLF"}
			}
			off += 2
			d.state = chunkSize
		case chunkTrailer:
			line, next, ok := nextLine(buf, off)
			// The whole trailer section is bounded like a head, counted
			// the same for complete and partial lines.
			if !ok {
				if d.tlen+len(buf)-off >= MaxHeadSize {
					return off, &BodyError{Status: 400, Reason: "chunked trailer too long"}
				}
				return off, ErrIncomplete
			}
			if d.tlen+next-off > MaxHeadSize {
				return off, &BodyError{Status: 400, Reason: "chunked trailer too long"}
			}
			d.tlen += next - off
			off = next
			if len(line) == 0 {
				d.state = chunkDone
			}
		}
	}
}

// parseChunkSize parses a chunk-size line: hex digits, optionally followed
// by chunk extensions (";name=value"), which are ignored as RFC 9112
// allows.
func parseChunkSize(line []byte) (int64, error) {
	var n int64
	digits := 0
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			goto rest
		}
		digits++
		if digits > 15 {
			return 0, &BodyError{Status: 400, Reason: "chunk size too large"}
		}
		n = n<<4 | int64(v)
	}
rest:
	if digits == 0 {
		return 0, &BodyError{Status: 400, Reason: fmt.Sprintf("invalid chunk size line %q", truncate(line))}
	}
	tail := trimOWS(line[i:])
	if len(tail) > 0 && tail[0] != ';' {
		return 0, &BodyError{Status: 400, Reason: fmt.Sprintf("invalid chunk size line %q", truncate(line))}
	}
	return n, nil
}
