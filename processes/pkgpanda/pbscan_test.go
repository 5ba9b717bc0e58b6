package pkgpanda

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/gogo/protobuf/proto"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

func scanBytes(body []byte, maxOther int) (other, tarball []byte, err error) {
	other, err = scanCall(bufio.NewReader(bytes.NewReader(body)), maxOther, func(r io.Reader, n int64) error {
		b, err := io.ReadAll(r)
		tarball = b
		return err
	})
	return other, tarball, err
}

func TestScanCall(t *testing.T) {
	m := func(c *pb.PkgpandaCall) []byte { b, _ := proto.Marshal(c); return b }
	add := m(&pb.PkgpandaCall{Type: pb.PkgpandaCall_ADD, RequestId: "r", PackageIds: []string{"a--1"}, Tarball: []byte("TARBALL")})

	other, tb, err := scanBytes(add, 1024)
	if err != nil || string(tb) != "TARBALL" || bytes.Contains(other, []byte("TARBALL")) {
		t.Fatalf("scan: %v, tarball %q, other %q", err, tb, other)
	}
	var call pb.PkgpandaCall
	if err := proto.Unmarshal(other, &call); err != nil || call.Type != pb.PkgpandaCall_ADD || call.PackageIds[0] != "a--1" {
		t.Fatalf("other fields: %v %v", &call, err)
	}
	for name, c := range map[string]struct {
		body []byte
		max  int
		want error
	}{
		"tarball twice":  {append(add, 0x2a, 0x01, 'x'), 1024, nil},
		"truncated":      {add[:bytes.Index(add, []byte("TARBALL"))+3], 1024, io.ErrUnexpectedEOF},
		"group":          {[]byte{0x0b, 0x0c}, 1024, nil},
		"field 0":        {[]byte{0x00, 0x01}, 1024, nil},
		"fields too big": {m(&pb.PkgpandaCall{RequestId: "0123456789"}), 8, errCallTooLarge},
		"huge length":    {[]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f}, 1024, errCallTooLarge},
	} {
		_, _, err := scanBytes(c.body, c.max)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: err %v, want %v", name, err, c.want)
		}
	}
}
