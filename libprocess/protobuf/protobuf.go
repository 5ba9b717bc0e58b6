// Package protobuf sends and receives protobuf messages between
// libprocess processes, as libprocess' ProtobufProcess does: a message
// travels under its full protobuf type name (or a name the caller gives,
// such as the "mesos.internal.<GoType>" form mesos-go uses, docs/libprocess-wire.md §11.1) and
// its body is the serialized message.
//
// It is apart from package libprocess so that the runtime itself does not
// depend on a protobuf library; it works on the public Process API only:
//
//	p := libprocess.NewProcess("scheduler")
//	err := protobuf.Install(p, func() *mesos.FrameworkRegisteredMessage { return new(mesos.FrameworkRegisteredMessage) },
//		func(from libprocess.UPID, msg *mesos.FrameworkRegisteredMessage) { ... })
//	...
//	err = protobuf.Send(p, master, &mesos.RegisterFrameworkMessage{...})
//
// The messages are gogo/protobuf (github.com/gogo/protobuf/proto) messages,
// as mesos-go's are.
package protobuf

import (
	"fmt"

	"github.com/gogo/protobuf/proto"
	"github.com/procpanda/procpanda/libprocess"
)

// Handler handles a decoded protobuf message of type T on its process'
// goroutine. from is the sender's UPID.
type Handler[T proto.Message] func(from libprocess.UPID, msg T)

// Install installs h on p for messages named by T's full protobuf type
// name (proto.MessageName), decoding each body into a new T from newT.
// Bodies that do not decode are logged (p.Logger) and dropped. Extra
// names (for example "mesos.internal.<GoType>") may be given and reach the
// same handler; a type missing from the protobuf registry needs at least
// one. Like Process.Install, call it before Spawn or from p's handlers.
func Install[T proto.Message](p *libprocess.Process, newT func() T, h Handler[T], extraNames ...string) error {
	names := extraNames
	if name := proto.MessageName(newT()); name != "" {
		names = append([]string{name}, extraNames...)
	}
	if len(names) == 0 {
		return fmt.Errorf("install protobuf handler on %q: type %T is not in the protobuf registry and no name was given", p.ID(), newT())
	}
	handler := func(m *libprocess.Message) {
		msg := newT()
		if err := proto.Unmarshal(m.Body, msg); err != nil {
			log := p.Logger()
			log.Warn().Str("process", p.ID()).Str("message", m.Name).Str("from", m.From.String()).Err(err).
				Msg("dropped message: body does not decode")
			return
		}
		h(m.From, msg)
	}
	for _, n := range names {
		p.Install(n, handler)
	}
	return nil
}

// Send serializes msg and sends it from p to to under its full protobuf
// type name. A type missing from the protobuf registry has none: use
// SendAs. Errors are those of Process.Send, or the encoding's.
func Send(p *libprocess.Process, to libprocess.UPID, msg proto.Message) error {
	return SendAs(p, to, proto.MessageName(msg), msg)
}

// SendAs serializes msg and sends it from p to to under name.
func SendAs(p *libprocess.Process, to libprocess.UPID, name string, msg proto.Message) error {
	if name == "" {
		return fmt.Errorf("send %T to %s: type is not registered with the protobuf registry and no name was given", msg, to)
	}
	b, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("send %s to %s: encoding: %w", name, to, err)
	}
	return p.Send(to, name, b)
}
