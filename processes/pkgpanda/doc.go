// Package pkgpanda is the libprocess process "pkgpanda": it serves the
// DC/OS Pkgpanda HTTP API and the pkgpanda command-line surface under
// /pkgpanda/..., and the same operations as PkgpandaCall messages, by
// running the pkgpanda command-line tool as a subprocess (the command line
// is the ABI: its argv, stdout, stderr and exit status are all it uses).
// The messages (PkgpandaCall, PkgpandaResponse) are in package pkgpandapb;
// Go programs call the process with package client, which needs only them.
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
// flowing. Answers are sent later through the route's Responder, or as a
// PkgpandaResponse message to the sender of a PkgpandaCall.
//
// # The path of an operation
//
// Reading these functions in order follows GET /pkgpanda/list.json from
// the runtime to the answer (the runtime's own path, from accept to the
// route handler, is drawn in package libprocess' documentation):
//
//  1. authenticated (http.go): the route handler libprocess calls; it
//     authenticates the Authorization header once and answers 401 at
//     once for a caller no operation would admit.
//  2. serveListJSON → serveIDList (http.go): the route's own checks
//     (method, path), then serveTableOp (apiroutes.go), where every HTTP
//     route ends: prepareOp runs the table row's prepare (operations.go),
//     httpReply (or a streamer) becomes the call's reply, and newCall
//     makes the call (call.go).
//  3. call.submit (call.go): admit (auth.go: authentication result and
//     ACL), then the row's stage if it has one (a fetch's downloads, on a
//     goroutine of their own), then enqueue (actor.go) on the route's
//     actor; a refusal, a failed stage, a full queue or a draining
//     process answers through call.refuse.
//  4. loop (actor.go): the actor's goroutine takes the call and runs
//     call.execute, which contains a panic (contain.go) and answers.
//  5. call.underLocks (call.go): the locks (write lock and repository
//     lock for a mutation, read lock for a read), the drain, the
//     interrupted-activation and client-gone checks, then call.perform.
//  6. Process.perform (operations.go): the row's pre-checks, then its
//     command: runCommand (ops.go) reuses a cached `pkgpanda list` while
//     its inputs are unchanged on disk (cache.go), else runs it on the
//     actor's subprocess.Runner (Process.run) and parses its stdout.
//  7. call.finish (call.go): once — removes the call's uploads, writes a
//     mutation's audit line (audit.go), then reply: httpReply renders
//     the PkgpandaResponse with the row's body (http.go: idsBody) and
//     calls the Responder, and libprocess writes it to the socket.
//
// api/v1 (serveAPIv1 → callWithTarball → dispatchCall, api.go) and
// PkgpandaCall messages (installMessages, messages.go) take the same
// steps from prepare on; only their reply differs (an encoded
// PkgpandaResponse as the HTTP body, or sent back as a message).
//
// # Operations, authentication and authorization
//
// Every front-end (the CLI-surface routes, the Pkgpanda API routes,
// POST /pkgpanda/api/v1 and PkgpandaCall messages) maps its request to one
// operation of a single table (operations.go: name, actor, mutates, its
// Pkgpanda API path and method, its api/v1 call, its prepare, stage and
// pre-checks, the argv and output parser of its pkgpanda command, its
// status mapping, its HTTP body and its help) and submits it as a call
// (call.submit), the only way into the actors, where one function
// (perform) runs every operation from its table row. An HTTP route, the
// api/v1 call and the message for the same operation run the same steps,
// so a PkgpandaResponse carries the status and error text the HTTP route
// answers (DC/OS's texts on the Pkgpanda API routes), and /help shows
// what the table says. A call asks the
// configured Authenticator and ACL (Config.Authenticator, Config.ACL)
// before anything is queued, so no front-end, present or future, can skip
// them. Credentials are what an HTTP Authorization header holds
// ("Basic …" or "Bearer …"): HTTP routes and api/v1 use the request's
// header; a message uses the PkgpandaCall.authorization field. On api/v1
// the header is the credential; a non-empty authorization field in the
// body must equal it (else 400), so a body never switches principals.
// Without valid credentials an operation is refused 401 (HTTP: JSON
// {"error": …} and a WWW-Authenticate challenge for Config.Realm;
// messages: a PkgpandaResponse with status 401); a principal the ACL does
// not allow is refused 403. Refusals are logged (operation, principal or
// sender UPID, peer address over HTTP) and counted
// (pkgpanda/auth/unauthenticated, pkgpanda/auth/forbidden); the
// credential is never logged nor echoed. Config.OpenReads leaves
// read-only operations open to callers that present no credentials.
// Bodies (add tarballs, api/v1 calls) are accepted only from callers that
// could be admitted, so nothing is written for a refused one.
//
// The ACL (ParseACL; pkgpandad --acls FILE) is JSON in the spirit of
// Mesos' ACLs:
//
//	{"permissive": false,
//	 "read":   {"principals": ["ops", "monitor"]},
//	 "mutate": {"principals": ["ops"]}}
//
// "read" covers list, active, get and check; "mutate" covers add, fetch,
// remove, activate and swap. Each holds "principals" (a list) or "type"
// ("ANY": every authenticated principal, "NONE": nobody); an absent one is
// ANY when "permissive" is true, NONE otherwise. Unknown keys are errors.
//
// A PkgpandaCall message whose sender UPID is empty (libprocess delivers a
// malformed Libprocess-From that way) or whose body does not decode is
// dropped and counted (pkgpanda/messages/no_sender, .../undecodable):
// nothing is dialled for it. Replies to refused messages come out of a
// token bucket (10 per second, burst 20), so a flood of calls with fake
// senders cannot become as many outbound connections; the excess is
// dropped and counted (pkgpanda/messages/replies_dropped).
//
// # Uploads
//
// Request and message bodies that carry a tarball never stay in memory:
// POST /add streams its body to a file; a protobuf api/v1 body is scanned
// field by field from the socket, its tarball field written straight to
// a file (other fields: at most 1 MiB); a JSON api/v1 body is capped at
// 1 MiB (413 names the protobuf media type and /pkgpanda/add); an ADD
// message's tarball is written to a file at once. A queued add holds only
// the file name. Files live in a private directory the process creates
// (Config.TempDir/pkgpanda-uploads-<random>), locked while it runs and
// removed when it stops; at Start, what killed processes left goes. At most
// Config.MaxUploads bodies are received at once and all upload files
// together hold at most Config.MaxUploadBytes; beyond either, 503 with
// Retry-After (messages: PkgpandaResponse 503), counted in
// pkgpanda/uploads/rejected. Drain waits for bodies being received.
//
// # Crash safety
//
// Every mutation holds an exclusive flock on Config.LockFile (default
// <repository>/../.pkgpanda.lock), which its CLI children inherit: a
// restarted daemon, or a second one over the same repository, cannot run
// a mutation while a CLI child of the other still runs. A mutation that
// finds the lock held waits up to Config.LockTimeout, then answers 503
// (pkgpanda/repository_lock/busy, .../timeouts). On Linux the CLI child
// also gets SIGKILL when the daemon dies. An interrupted activation left
// on disk (<root>/X.new, or <root>/X.old without X) is logged at Start,
// shown in the gauge pkgpanda/interrupted_activation/leftovers, and makes
// mutations and reads of the active set answer 409 naming the leftovers
// and how to recover, re-checked on every request.
//
// A fetch downloads its packages before it is queued, outside every lock
// and actor, into upload files (bounded as uploads); then, as an ordinary
// mutation, `pkgpanda add` installs each one. A file:// fetch answers one
// generic error for every failure, logging the cause.
package pkgpanda
