// Package pkgpandapb holds the messages of the pkgpanda process: a
// PkgpandaCall asks for one operation and is answered by a
// PkgpandaResponse carrying the same request_id. They travel as
// libprocess messages, routed by their protobuf names
// ("mesos.internal.PkgpandaCall", "mesos.internal.PkgpandaResponse"), and
// as the bodies of POST /pkgpanda/api/v1 in one of the media types below.
//
// The package holds only what both ends need: the generated types of
// pkgpanda.proto and the media type names. It depends on nothing but the
// protobuf runtime, so a client of the process need not build the
// process.
//
// pkgpanda.pb.go is generated from pkgpanda.proto by `go generate` in
// this directory, with protoc (3.21.12 made the committed file) on PATH
// and protoc-gen-gogofaster built from the gogo/protobuf version go.mod
// pins.
package pkgpandapb

//go:generate go build -o .protoc-gen-gogofaster github.com/gogo/protobuf/protoc-gen-gogofaster
//go:generate protoc -I. --plugin=protoc-gen-gogofaster=.protoc-gen-gogofaster --gogofaster_out=paths=source_relative:. pkgpanda.proto
//go:generate rm .protoc-gen-gogofaster

// Media types of POST /pkgpanda/api/v1, as in Mesos' operator API: the
// protobuf JSON mapping, or the binary encoding.
const (
	MediaJSON     = "application/json"
	MediaProtobuf = "application/x-protobuf"
)
