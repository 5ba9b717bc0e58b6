package libprocess

import (
	"fmt"

	"github.com/gogo/protobuf/proto"
)

// ProtoHandler handles a decoded protobuf message of type T, as libprocess'
// ProtobufProcess::install does. from is the sender's UPID.
type ProtoHandler[T proto.Message] func(from UPID, msg T)

// InstallProto installs h for messages named by T's full protobuf type
// name (proto.MessageName), decoding each body into a new T. Bodies that
// do not decode are logged and dropped. Extra names (for example the
// "mesos.internal.<GoType>" form mesos-go uses, spec 11.1) may be given
// and reach the same handler; a type missing from the protobuf registry
// needs at least one.
func InstallProto[T proto.Message](p *Process, newT func() T, h ProtoHandler[T], extraNames ...string) error {
	names := extraNames
	if name := proto.MessageName(newT()); name != "" {
		names = append([]string{name}, extraNames...)
	}
	if len(names) == 0 {
		return fmt.Errorf("install protobuf handler on %q: type %T is not in the protobuf registry and no name was given", p.id, newT())
	}
	handler := func(m *Message) {
		msg := newT()
		if err := proto.Unmarshal(m.Body, msg); err != nil {
			if p.rt != nil {
				p.rt.log.Warn().Str("process", p.id).Str("message", m.Name).Str("from", m.From.String()).Err(err).Msg("dropped message: body does not decode")
			}
			return
		}
		h(m.From, msg)
	}
	for _, n := range names {
		p.Install(n, handler)
	}
	return nil
}

// SendProto serializes msg and sends it under its full protobuf type name.
func (p *Process) SendProto(to UPID, msg proto.Message) error {
	return p.SendProtoAs(to, proto.MessageName(msg), msg)
}

// SendProtoAs serializes msg and sends it under name.
func (p *Process) SendProtoAs(to UPID, name string, msg proto.Message) error {
	if name == "" {
		return fmt.Errorf("send %T to %s: type is not registered with the protobuf registry", msg, to)
	}
	b, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("send %s to %s: encoding: %w", name, to, err)
	}
	return p.Send(to, name, b)
}
