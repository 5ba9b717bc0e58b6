// Package pkgpanda is the libprocess process "pkgpanda": it serves the
// DC/OS Pkgpanda HTTP API and the pkgpanda command-line surface under
// /pkgpanda/..., and the same operations as PkgpandaCall messages, by
// running the pkgpanda command-line tool as a subprocess (the command line
// is the ABI, see the project's pkgpanda CLI spec).
//
// Every HTTP route has its own actor: a goroutine with a bounded queue that
// runs the route's subprocesses one at a time, in arrival order. A full
// queue answers 503 with Retry-After. Across actors a readers/writer lock
// keeps mutations (add, fetch, remove, activate, swap) exclusive of every
// other run, while read-only runs (list, active, check) may overlap each
// other. The checks the Pkgpanda API makes before a mutation (existence,
// active, missing packages) run under the mutation's write lock, so no
// other mutation slips between check and act. A client that goes away
// cancels a read-only run; a mutation always runs to completion.
//
// The pkgpanda libprocess process itself only validates requests and hands
// them to actors; it never waits for a subprocess, so its mailbox keeps
// flowing. Responses are sent later through the route's Responder, or as a
// PkgpandaResponse message to the sender of a PkgpandaCall.
package pkgpanda

//go:generate protoc -I. --gogofaster_out=paths=source_relative:. pkgpanda.proto
