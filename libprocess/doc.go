// Package libprocess is a pure-Go implementation of the libprocess actor
// runtime used by Apache Mesos: processes (actors) addressed by UPIDs
// ("id@ip:port"), exchanging messages and serving HTTP routes over one
// HTTP/1.1 port, wire-compatible with C++ libprocess peers and mesos-go's
// messenger.
//
// A Runtime owns the port. A Process is an actor: it handles one event at
// a time (message, HTTP request, dispatched function, exited notification,
// termination) from its own bounded mailbox. The codec that turns bytes
// into messages and requests lives in libprocess/internal/wire and does no
// I/O; server.go and msgconn.go own inbound sockets, outbound.go outbound
// ones, mailbox.go the queue, and turn.go who serves a process' events.
//
// # The path of a request
//
// Every inbound byte takes one path, the same for a message and for a
// route until the codec tells them apart. Reading these functions in
// order follows a request from accept to answer:
//
//  1. server.acceptLoop (server.go) accepts the connection, counts it
//     against MaxInboundConnections, and starts server.serveConn on a
//     goroutine of its own, which owns the connection from then on.
//  2. server.serveConn (TLS first, server.wrapInbound, when configured)
//     wraps it in a msgConn (msgconn.go) and runs
//     msgConn.pump, which reads under the request's deadline (msgConn.fill,
//     msgConn.read) and parses each head with wire.ParseHeadLimit.
//  3. wire.IsMessage decides: a POST a libprocess peer sent (with
//     Libprocess-From, or a User-Agent starting "libprocess/") is a
//     message; any other request is an ordinary HTTP request.
//
// A message, say POST /master/mesos.internal.Ping, stays in the codec:
//
//  4. msgConn.readBody reads its body within InboundBodyBudget;
//     Runtime.acceptMessage splits the path (wire.SplitMessagePath),
//     applies the firewall, parses the sender and finds the process
//     (Runtime.lookupBytes).
//  5. Runtime.deliverTo puts it in the process' mailbox (mailbox.putWait,
//     which waits while the mailbox is full, so TCP pushes back on the
//     sender); msgConn.respond queues the 202 and msgConn.flush writes all
//     queued answers at once when the read buffer runs dry.
//  6. The process' goroutine, Process.run (turn.go), takes the mailbox's
//     events a batch at a time (mailbox.take) and passes each through
//     Process.serveAndRecover, which calls the MessageHandler installed
//     for its name (Process.handle) and recovers a panic in it.
//
// A route, say GET /pkgpanda/list.json, is handed to fasthttp:
//
//  4. msgConn.pump returns at its head; server.serveConn runs fasthttp's
//     ServeConn over httpConn, whose Read hands fasthttp the head restated
//     canonically (msgConn.beginPassthrough) and the body byte for byte,
//     and runs msgConn.pump again at the next request boundary, so
//     messages between requests are still served by the codec.
//  5. fasthttp calls server.serveHTTP (httpserver.go), which runs three
//     steps: server.parseRequest finds the process the path names
//     (server.receiver: "pkgpanda", or Config.Delegate), applies the
//     firewall and makes the Request (routed.strings copies its path,
//     query and the header lines the codec restated,
//     msgConn.headerLines; server.requestBody reads a small body whole);
//     server.routeRequest gives it to the process as an event;
//     server.answer writes the answer.
//  6. server.routeRequest calls Process.serveInline (turn.go): if the
//     process' turn is free and nothing is queued, the event is served
//     right there, on the connection's goroutine; otherwise it is queued
//     (Process.enqueue) and Process.run serves it in order. Either way it
//     goes through Process.serveAndRecover, whose recover answers 500 if
//     the handler panics.
//  7. Process.serveHTTP (http.go) finds the route (Process.lookupRoute:
//     "list.json"), checks its realm's authentication, and calls the
//     RouteHandler with the Request and a Responder (httpEvent.respond).
//  8. The handler answers through the Responder, at once or later from
//     any goroutine; server.await, on the connection's goroutine, takes
//     the answer (httpEvent.collect finds one given before it began to
//     wait in the connection's slot, a later one comes on a channel), or
//     answers 504 at the route's deadline and 503 when a shutdown's
//     deadline passes, cancelling the request's context.
//  9. server.answer hands the Response to writeResponse (headers, gzip),
//     and fasthttp writes it through httpConn.Write, WriteTimeout per
//     piece; a streamed body is written as it is read.
//
// Outbound, Process.Send goes through Runtime.send to outbound.send, which
// queues the message on one peer per remote address, written by
// peer.writeLoop (outbound.go); a local receiver gets it through
// Runtime.deliverTo without touching the network.
//
// # Usage
//
// Start a runtime. DefaultConfig holds validated limits;
// cfg.ApplyEnv(os.LookupEnv) reads the LIBPROCESS_* variables C++
// libprocess reads:
//
//	cfg := libprocess.DefaultConfig()
//	cfg.IP, cfg.Port = "10.0.0.2", 5051
//	rt, err := libprocess.New(cfg)
//	if err != nil {
//		return err
//	}
//	if err := rt.Start(); err != nil {
//		return err
//	}
//
// Create a process, install its message handlers and routes, then spawn
// it; Spawn returns its UPID. Handlers run one event at a time, in the
// order events were queued, so they need no locks for the process' state.
// They run on the process' own goroutine, except that an HTTP request
// finding the process idle is served on its connection's goroutine, which
// saves two goroutine hand-offs per request (see "The path of a
// request"):
//
//	p := libprocess.NewProcess("master")
//	p.Install("mesos.internal.Ping", func(m *libprocess.Message) {
//		_ = p.Send(m.From, "mesos.internal.Pong", nil)
//	})
//	p.Route("state", libprocess.Help{TLDR: "Current state."},
//		func(req *libprocess.Request, respond libprocess.Responder) {
//			respond(libprocess.JSONResponse(http.StatusOK, state))
//		})
//	pid, err := rt.Spawn(p) // master@10.0.0.2:5051
//
// Send a message to any UPID, local or remote. Send is asynchronous and
// delivery at most once, as in libprocess: it queues the message and
// returns; an error reports only what is known at once (ErrQueueFull,
// ErrQueueBytes, ErrTooManyPeers, ErrInvalidTarget, a local receiver
// missing or full):
//
//	to, _ := libprocess.ParseUPID("slave(1)@10.0.0.3:5051")
//	err = p.Send(to, "mesos.internal.Ping", body)
//
// Package libprocess/protobuf sends protobuf messages under their full
// type name (protobuf.Send) and decodes them for a typed handler
// (protobuf.Install), as libprocess' ProtobufProcess does.
//
// Routes answer GET/POST /<id>/<route> on the same port; a Responder may
// be called later from any goroutine, and route deadlines
// (Config.RouteTimeout, Process.SetRouteTimeout) answer 504 for it and
// for requests still queued. A handler must not block: it would stall
// its process, and one served on its connection's goroutine holds its
// client until it returns. Routes of an authentication realm
// (Process.SetRealm, Process.AuthenticatedRoute) answer 401 until the
// realm's Authenticator (Runtime.SetAuthenticator) accepts the request;
// package libprocess/httpauth has Mesos' Basic and JWT authenticators.
//
// Link to a process to learn when it goes away: OnExited's handler runs
// once when a linked local process terminates or the connection to a
// linked remote one breaks.
//
//	p.OnExited(func(pid libprocess.UPID) { ... })
//	err = p.Link(to)
//
// Shut down with a deadline: the runtime stops accepting connections, lets
// in-flight HTTP requests finish, flushes outbound queues, then terminates
// the processes (running their OnFinalize) in reverse spawn order.
//
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	err = rt.Shutdown(ctx)
//
// Every resource the runtime holds (connections, peers, body bytes,
// mailbox events) is bounded by a Config field and counted in
// /metrics/snapshot; see Config for the limits and their defaults. The
// examples show complete programs: ping/pong between two runtimes, a
// route, link/exited, a protobuf message, and a mesos-go messenger.
package libprocess
