package libprocess

import (
	"errors"
	"fmt"
	"net"
	"net/http"
)

// errHTTPOnly is the answer to a libprocess message that arrives on an
// HTTP-only listener.
const errHTTPOnly = "libprocess messages are not accepted on this listener"

// ServeHTTPOn serves ordinary HTTP requests from ln beside the runtime's
// port, for example a unix socket a reverse proxy forwards to. Its
// connections are owned, limited and timed exactly as the port's
// (MaxInboundConnections counts both, and every deadline applies), reach
// the same routes and delegate, and finish on Shutdown, which closes ln.
//
// The listener is HTTP only: its connections never speak TLS, and a
// libprocess message arriving on one is read and answered 403 Forbidden
// (the connection goes on), counted in
// libprocess/messages_refused_http_only. A message's sender is
// authenticated by nothing but its address, which a unix socket does not
// have, and its answers travel over the sender's own port anyway.
//
// Call it after Start; it fails once Shutdown has begun.
func (rt *Runtime) ServeHTTPOn(ln net.Listener) error {
	if ln == nil {
		return errors.New("libprocess: serve HTTP: nil listener")
	}
	if rt.server == nil {
		return errors.New("libprocess: serve HTTP: runtime not started (call Start first)")
	}
	if err := rt.server.serveExtra(ln); err != nil {
		return fmt.Errorf("libprocess: serving HTTP on %s: %w", ln.Addr(), err)
	}
	rt.log.Info().Str("listen", ln.Addr().String()).Str("network", ln.Addr().Network()).Msg("libprocess runtime serving HTTP")
	return nil
}

// refuseHTTPOnlyMessage answers a message read on an HTTP-only listener.
func (rt *Runtime) refuseHTTPOnlyMessage(target []byte) (int, string) {
	rt.metrics.messagesHTTPOnly.Add(1)
	rt.log.Warn().Bytes("target", target).Msg("message refused: it arrived on an HTTP-only listener")
	return http.StatusForbidden, errHTTPOnly
}
