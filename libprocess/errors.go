package libprocess

import "errors"

// The sentinel errors of the runtime, in one place; match them with
// errors.Is. Each says which call returns it.

// ErrUnauthenticated is what authenticators (package libprocess/httpauth's,
// and any Authenticator) wrap for missing or invalid credentials.
var ErrUnauthenticated = errors.New("libprocess: unauthenticated")

// ErrBodyTooLarge is returned by reads of Request.BodyStream past
// Config.MaxRequestBodySize.
var ErrBodyTooLarge = errors.New("libprocess: request body too large")

// ErrMailboxFull is returned when a process' mailbox holds
// Config.MailboxCapacity events and another one arrives.
var ErrMailboxFull = errors.New("libprocess: mailbox full")

// ErrTerminated is returned when an event is sent to a process that has
// terminated (or was never spawned).
var ErrTerminated = errors.New("libprocess: process terminated")

// ErrQueueFull is returned by Send when the queue to a remote peer holds
// Config.OutboundQueueCapacity messages; the message is dropped.
var ErrQueueFull = errors.New("libprocess: outbound queue full")

// ErrQueueBytes is returned by Send when the message does not fit in
// the bytes left to its peer's queue (Config.OutboundQueueBytes) or to all
// outbound queues (Config.OutboundQueueBudget); the message is dropped.
var ErrQueueBytes = errors.New("libprocess: outbound queue bytes exhausted")

// ErrTooManyPeers is returned by Send and Link when a new remote peer is
// needed while Config.MaxOutboundPeers peers exist and none of them is
// idle (nothing queued, not linked) so that it could be closed to make
// room; the message is dropped.
var ErrTooManyPeers = errors.New("libprocess: too many outbound peers")

// ErrInvalidTarget is returned by Send when the receiver's id or host or
// the message name holds bytes that cannot be written into a request head
// (see Send); nothing is sent.
var ErrInvalidTarget = errors.New("libprocess: invalid message target")
