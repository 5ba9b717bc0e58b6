package pkgpanda

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Protobuf wire types (the encoding's own numbers).
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// callTarballField is PkgpandaCall.tarball's field number.
const callTarballField = 5

// errCallTooLarge is the cause of a 413: the fields of a call other than
// its tarball exceed their cap.
var errCallTooLarge = errors.New("the call's fields other than the tarball are too large")

// byteReader is what scanCall reads from (a *bufio.Reader).
type byteReader interface {
	io.Reader
	io.ByteReader
}

// scanCall reads a protobuf-encoded PkgpandaCall from r without holding
// its tarball in memory: the tarball field (5) is handed to tarball as a
// reader of exactly n bytes, which it must consume (or fail); every other
// field is copied, in wire form, into the returned buffer, at most
// maxOther bytes (errCallTooLarge beyond). The buffer then decodes with
// proto.Unmarshal into the rest of the call. Groups (wire types 3 and 4,
// deprecated and never used by PkgpandaCall), field number 0, wire types
// 6 and 7, varints longer than 10 bytes, truncated fields and a tarball
// given twice are errors. Nothing is allocated beyond the returned buffer.
func scanCall(r byteReader, maxOther int, tarball func(r io.Reader, n int64) error) ([]byte, error) {
	var other []byte
	var tmp [binary.MaxVarintLen64]byte
	seenTarball := false
	for {
		key, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return other, nil // a clean end between fields
		}
		if err != nil {
			return nil, fmt.Errorf("reading a field key: %w", unexpectedEOF(err))
		}
		field, wire := key>>3, key&7
		if field == 0 || field > 1<<29-1 {
			return nil, fmt.Errorf("invalid field number %d", field)
		}
		if field == callTarballField && wire == wireBytes {
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return nil, fmt.Errorf("reading the tarball length: %w", unexpectedEOF(err))
			}
			if seenTarball {
				return nil, errors.New("the tarball is given twice")
			}
			seenTarball = true
			if n > 1<<62 {
				return nil, fmt.Errorf("tarball length %d out of range", n)
			}
			lr := &io.LimitedReader{R: r, N: int64(n)}
			if err := tarball(lr, int64(n)); err != nil {
				return nil, err
			}
			if lr.N != 0 {
				if _, err := io.Copy(io.Discard, lr); err != nil {
					return nil, fmt.Errorf("reading the tarball: %w", err)
				}
				if lr.N != 0 {
					return nil, fmt.Errorf("reading the tarball: %w", io.ErrUnexpectedEOF)
				}
			}
			continue
		}
		add := func(b []byte) error {
			if len(other)+len(b) > maxOther {
				return errCallTooLarge
			}
			other = append(other, b...)
			return nil
		}
		if err := add(tmp[:binary.PutUvarint(tmp[:], key)]); err != nil {
			return nil, err
		}
		switch wire {
		case wireVarint:
			v, err := binary.ReadUvarint(r)
			if err != nil {
				return nil, fmt.Errorf("reading field %d: %w", field, unexpectedEOF(err))
			}
			err = add(tmp[:binary.PutUvarint(tmp[:], v)])
			if err != nil {
				return nil, err
			}
		case wireFixed64, wireFixed32:
			size := 8
			if wire == wireFixed32 {
				size = 4
			}
			if _, err := io.ReadFull(r, tmp[:size]); err != nil {
				return nil, fmt.Errorf("reading field %d: %w", field, unexpectedEOF(err))
			}
			if err := add(tmp[:size]); err != nil {
				return nil, err
			}
		case wireBytes:
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return nil, fmt.Errorf("reading the length of field %d: %w", field, unexpectedEOF(err))
			}
			if n > uint64(maxOther) {
				return nil, errCallTooLarge
			}
			if err := add(tmp[:binary.PutUvarint(tmp[:], n)]); err != nil {
				return nil, err
			}
			if len(other)+int(n) > maxOther {
				return nil, errCallTooLarge
			}
			start := len(other)
			other = slices.Grow(other, int(n))[:start+int(n)]
			if _, err := io.ReadFull(r, other[start:]); err != nil {
				return nil, fmt.Errorf("reading field %d: %w", field, unexpectedEOF(err))
			}
		default:
			return nil, fmt.Errorf("field %d: unsupported wire type %d", field, wire)
		}
	}
}

// unexpectedEOF turns an EOF inside a field into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
