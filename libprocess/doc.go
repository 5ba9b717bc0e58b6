// Package libprocess is a pure-Go implementation of the libprocess actor
// runtime used by Apache Mesos: processes (actors) addressed by UPIDs
// ("id@ip:port"), exchanging messages and serving HTTP routes over one
// HTTP/1.1 port, wire-compatible with C++ libprocess peers and mesos-go's
// messenger.
//
// A Runtime owns the port. A Process is an actor: it handles one event at
// a time (message, HTTP request, dispatched function, exited notification,
// termination) from its own bounded mailbox. The codec that turns bytes
// into messages and requests lives in package wire and does no I/O;
// server.go and msgconn.go own inbound sockets, outbound.go outbound ones,
// and process.go and mailbox.go the scheduling.
package libprocess
