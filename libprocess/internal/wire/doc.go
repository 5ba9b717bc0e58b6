// Package wire is the byte-level codec of the libprocess protocol: it
// parses request heads (ParseHead, ParseHeadLimit) in the shapes every
// generation of peers writes — C++ libprocess 0.22 to 1.x, mesos-go —
// decodes chunked bodies incrementally under a size limit
// (ChunkedDecoder), tells a message from an ordinary HTTP request
// (IsMessage, Sender, SplitMessagePath), and appends the exact bytes
// libprocess writes for a message (AppendMessage) and for its answers
// (AppendResponse).
//
// It does no I/O and keeps no state beyond the values it is handed, so it
// is fuzzed on its own (testdata/fuzz) and differentially against
// net/http; every byte it reads is treated as hostile. Parsers reuse the
// caller's Head and decoder buffers, so the hot path allocates nothing.
//
// It is internal: the runtime in package libprocess owns the sockets and
// is the only user.
package wire
