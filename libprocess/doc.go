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
// ones, and process.go and mailbox.go the scheduling.
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
// saves two goroutine hand-offs per request:
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
