package pkgpandapb_test

import (
	"testing"

	"github.com/gogo/protobuf/proto"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// Libprocess routes messages by their protobuf names, so these names are
// the wire contract with every peer: they must not move with the Go
// package.
func TestWireNames(t *testing.T) {
	for _, c := range []struct {
		msg  proto.Message
		want string
	}{
		{&pb.PkgpandaCall{}, "mesos.internal.PkgpandaCall"},
		{&pb.PkgpandaResponse{}, "mesos.internal.PkgpandaResponse"},
		{&pb.PkgpandaPackage{}, "mesos.internal.PkgpandaPackage"},
		{&pb.PkgpandaCheck{}, "mesos.internal.PkgpandaCheck"},
	} {
		if got := proto.MessageName(c.msg); got != c.want {
			t.Errorf("proto.MessageName(%T) = %q, want %q", c.msg, got, c.want)
		}
	}
}
