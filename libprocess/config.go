package libprocess

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/procpanda/procpanda/libprocess/internal/wire"
	"github.com/rs/zerolog"
)

// Config configures a Runtime. Start from DefaultConfig (and ApplyEnv(os.LookupEnv) for the LIBPROCESS_* variables)
// and change fields; New validates it.
type Config struct {
	// IP is the address to bind (LIBPROCESS_IP); empty or "0.0.0.0" binds
	// every interface.
	IP string
	// Port is the port to bind (LIBPROCESS_PORT); 0 picks a free port.
	Port int
	// AdvertiseIP, if set, is the IP put into this instance's UPIDs
	// instead of the bound one (LIBPROCESS_ADVERTISE_IP), for NAT.
	AdvertiseIP string
	// AdvertisePort, if non-zero, is the port put into UPIDs instead of the
	// bound one (LIBPROCESS_ADVERTISE_PORT).
	AdvertisePort int
	// RequirePeerAddressIPMatch rejects messages whose sender UPID's IP
	// differs from the connection's peer IP with 400
	// (LIBPROCESS_REQUIRE_PEER_ADDRESS_IP_MATCH, docs/libprocess-wire.md §2.6).
	RequirePeerAddressIPMatch bool
	// Delegate names the process that receives HTTP requests for unknown
	// processes and for "/" (docs/libprocess-wire.md §4.2); empty means none.
	Delegate string

	// MaxMessageSize bounds an inbound message body or HTTP request body;
	// larger ones are answered 413 and the connection is closed.
	MaxMessageSize int
	// MaxRequestBodySize bounds an HTTP request body handed to a route as
	// a stream (see Request.BodyStream); reading past it fails with
	// ErrBodyTooLarge.
	MaxRequestBodySize int64
	// BufferedBodyLimit is the largest HTTP request body a route receives
	// in memory (Request.Body); larger ones arrive as Request.BodyStream.
	BufferedBodyLimit int
	// MailboxCapacity bounds each process' queued events. When full,
	// messages are dropped and counted, HTTP requests are answered 503 and
	// Dispatch returns ErrMailboxFull.
	MailboxCapacity int
	// OutboundQueueCapacity bounds messages queued to one remote peer
	// while its connection is being (re)established or written; beyond it
	// sends are dropped and counted (libprocess is at-most-once).
	OutboundQueueCapacity int
	// OutboundQueueBytes bounds the bytes queued to one remote peer:
	// messages waiting for its connection or being written to it. A
	// message counts its body, name and target id plus 64 bytes for its
	// place in the queue, from Send until its write ends (a peer that
	// accepts a connection but never reads keeps its bytes counted). A
	// send that does not fit fails with ErrQueueBytes; the message is
	// dropped and counted. The default, 17 MiB, holds one message of the
	// default MaxMessageSize (16 MiB) and a MiB of ordinary messages
	// behind it. A bound smaller than MaxMessageSize plus 64 KiB (the
	// largest request head) is raised to that, so one message of the
	// largest size a peer accepts always fits.
	OutboundQueueBytes int64
	// OutboundQueueBudget bounds the bytes queued to all remote peers
	// together, counted as for OutboundQueueBytes; a send that does not
	// fit fails with ErrQueueBytes. The default, 32 MiB, holds a maximal
	// message and 15 MiB for every other peer. With InboundBodyBudget
	// (32 MiB) it bounds what peers can make the runtime hold to 64 MiB;
	// Go's collector lets the heap grow to about twice what is live, so
	// a pkgpandad whose queues and mailboxes are full stays near 200 MB,
	// under the 256 MB it is held to under attack. Besides the budget, a
	// writer holds the encoded copy of the small messages it is writing,
	// at most about 320 KiB a peer. A budget smaller than the (raised)
	// OutboundQueueBytes is raised to it.
	OutboundQueueBudget int64

	// ReadTimeout bounds reading one inbound request, head and body, from
	// its first byte: it is armed once per request, not per read, so a
	// peer dribbling bytes cannot hold a request open. At the deadline the
	// peer gets 408 and the connection closes. A body streamed to a route
	// (Request.BodyStream) is bounded by the route's deadline instead.
	ReadTimeout time.Duration
	// IdleTimeout closes an inbound connection that has carried ordinary
	// HTTP requests but no libprocess message once it has waited this long
	// for its next request; 0 never closes it. Connections that carried a
	// message, or nothing yet, wait MessageIdleTimeout instead. A busy
	// connection re-arms its idle deadline only when it has moved by an
	// eighth of the timeout (at most a second), so the wait may end that
	// much early; the same holds for MessageIdleTimeout and WriteTimeout.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to a socket (a batch of answers, or
	// one piece of a streamed response), not a whole response; see
	// IdleTimeout for its granularity.
	WriteTimeout time.Duration
	// DialTimeout bounds connecting to a remote peer.
	DialTimeout time.Duration
	// MetricsSnapshotRateLimit, if positive, limits /metrics/snapshot to
	// this many requests per second
	// (LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT, "N/1secs" style).
	MetricsSnapshotRateLimit float64

	// Outbound limits and firewall.

	// MaxOutboundPeers bounds the remote peers the runtime keeps, one
	// connection each (a peer is a local process and a remote address).
	// Every sender of a message is answered on such a connection, so
	// without a bound a flood of senders exhausts file descriptors. At
	// the bound the least recently used idle, unlinked peer is closed; if
	// every peer is busy or linked, Send and Link fail with
	// ErrTooManyPeers. Keep it well below RLIMIT_NOFILE.
	MaxOutboundPeers int
	// OutboundIdleTimeout closes the connection of an unlinked peer with
	// nothing queued after this long without a send (docs/libprocess-wire.md §3.2: only
	// linked peers need persistent connections; a linked peer's
	// connection is never idle-closed).
	OutboundIdleTimeout time.Duration
	// MaxConcurrentDials bounds outbound connection attempts (TCP
	// connect plus TLS handshake) in progress at once; further dials wait
	// for a slot.
	MaxConcurrentDials int
	// DisabledEndpoints are paths answered 403 Forbidden, as libprocess'
	// --firewall_rules disabled_endpoints (docs/libprocess-wire.md §4.4): each is an absolute
	// path such as "/pkgpanda/add". It applies to HTTP requests and, unlike
	// C++, to messages, whose path is "/<id>/<name>", so a process'
	// message API can be turned off ("/pkgpanda/mesos.internal.PkgpandaCall").
	// A request is refused when its percent-decoded path, with repeated
	// slashes collapsed and a trailing slash dropped, equals a disabled path
	// or lies below one at a slash.
	DisabledEndpoints []string

	// TLS configures SSL on the port and on outbound connections.
	TLS TLSConfig

	// Inbound limits.

	// MaxHeaderBytes bounds one inbound request head (request line and
	// headers), messages and HTTP requests alike; a longer head is
	// answered 431 and the connection closed. The default, 32 KiB, holds
	// bearer tokens of several KiB (a DC/OS service-account JWT is about
	// 6 KiB); the most it can be is 64 KiB. Each connection serving HTTP
	// keeps a read buffer of about this size.
	MaxHeaderBytes int
	// MaxInboundConnections caps open inbound connections. A connection
	// accepted beyond it is closed at once, counted in
	// libprocess/connections_refused; the accept loop never stops. 0 sizes
	// it when the runtime starts from the RLIMIT_NOFILE soft limit, less a
	// quarter of it (at least 64) kept for outbound connections, files and
	// the subprocesses a process spawns.
	MaxInboundConnections int
	// InboundBodyBudget bounds the bytes held, across all inbound
	// connections, for request bodies still being read, message bodies
	// waiting in mailboxes, and the HTTP bodies the runtime buffers for
	// routes (Request.Body). A message body holds its share until its
	// handler returns (or the message is dropped), so a process that does
	// not keep up slows its senders down instead of filling memory. Bodies
	// are grown as their bytes arrive, never reserved from a declared
	// length. The default, 32 MiB, is two maximal messages; see
	// OutboundQueueBudget for how the two budgets bound memory. A request that needs more than is left stops being read
	// (back-pressure on its connection) until other requests finish; if
	// none does before its ReadTimeout deadline it is answered 503 and the
	// connection closed. A budget smaller than MaxMessageSize or
	// BufferedBodyLimit is raised to the larger of them, so one request of
	// the largest size allowed can always be read.
	InboundBodyBudget int64
	// MessageIdleTimeout closes an inbound connection that has carried a
	// libprocess message, or nothing yet, once it has waited this long for
	// its next request; 0 (the default) never closes it. C++ libprocess
	// peers that link to a process hold such a connection open, often
	// without sending anything, and take its close as the linked process
	// exiting; MaxInboundConnections bounds how many there can be.
	MessageIdleTimeout time.Duration
	// TLSHandshakeTimeout bounds an inbound TLS handshake, and with
	// SupportDowngrade the wait for the byte that tells TLS from
	// plaintext, from accept; failures are counted in
	// libprocess/tls_handshake_failures.
	TLSHandshakeTimeout time.Duration
	// RouteTimeout is the deadline of an HTTP request routed to a process,
	// from the arrival of its first byte, unless the route sets its own
	// (Process.SetRouteTimeout). At the deadline a request still waiting is
	// answered 504, its context is cancelled, and a streamed response is
	// ended.
	RouteTimeout time.Duration

	// NoListener makes Start open no TCP port: the runtime then serves
	// HTTP only on the listeners given to ServeHTTPOn (which are HTTP
	// only), so no libprocess message can reach its processes. Its
	// address (Addr, the UPIDs of its processes) is AdvertiseIP and
	// AdvertisePort, 127.0.0.1:0 when unset; messages its processes send
	// carry it as their sender, so no reply can come back.
	NoListener bool

	// ReadonlyRealm, if set, is the authentication realm of the runtime's
	// read-only endpoints that C++ libprocess authenticates with its
	// read-only realm: /metrics/snapshot and /metrics/prometheus
	// (process::initialize's readonlyAuthenticationRealm, given to the
	// metrics process: 3rdparty/libprocess/src/process.cpp:1206-1208,
	// src/metrics/metrics.cpp:97-100). /help and /__processes__ are never
	// authenticated, as in C++ (src/help.cpp:124 and :153,
	// src/process.cpp:1245). Requests to the realm's routes are
	// authenticated only once an Authenticator is installed for it
	// (SetAuthenticator).
	ReadonlyRealm string

	// AccessLog writes one info-level line per HTTP request to Logger:
	// method, path (without its query), status, bytes (the body as sent, -1
	// when streamed), duration_ms, principal (empty for none). Off by default.
	AccessLog bool

	// Logger receives the runtime's structured logs.
	Logger zerolog.Logger
}

// DefaultConfig returns libprocess' defaults: bind all interfaces on a free
// port, 16 MiB message limit, HTTP bodies over 1 MiB streamed (4 GiB at
// most), 8192-event mailboxes, 30 s per request read and per write, HTTP
// connections closed after 60 s idle, message connections kept, 32 KiB
// heads, 32 MiB for bodies being read or waiting in mailboxes, 10 s TLS
// handshakes, 60 s route deadlines, at most 256 outbound peers closed
// after 60 s idle (unless linked) and 16 dials at once, outbound queues of
// 17 MiB a peer and 32 MiB in all, no disabled endpoints, and a logger
// that writes nothing.
func DefaultConfig() Config {
	return Config{
		MaxMessageSize:        16 << 20,
		MaxRequestBodySize:    4 << 30,
		BufferedBodyLimit:     1 << 20,
		MailboxCapacity:       8192,
		OutboundQueueCapacity: 65536,
		OutboundQueueBytes:    17 << 20,
		OutboundQueueBudget:   32 << 20,
		MaxOutboundPeers:      256,
		OutboundIdleTimeout:   60 * time.Second,
		MaxConcurrentDials:    16,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           60 * time.Second,
		WriteTimeout:          30 * time.Second,
		DialTimeout:           10 * time.Second,
		MaxHeaderBytes:        32 << 10,
		InboundBodyBudget:     32 << 20,
		TLSHandshakeTimeout:   10 * time.Second,
		RouteTimeout:          60 * time.Second,
		Logger:                zerolog.Nop(),
	}
}

// ApplyEnv overrides c's fields from LIBPROCESS_IP, LIBPROCESS_PORT,
// LIBPROCESS_ADVERTISE_IP, LIBPROCESS_ADVERTISE_PORT,
// LIBPROCESS_REQUIRE_PEER_ADDRESS_IP_MATCH,
// LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT and the LIBPROCESS_SSL_*
// variables (ENABLED, CERT_FILE, KEY_FILE, CA_FILE, CA_DIR, VERIFY_CERT,
// REQUIRE_CERT, SUPPORT_DOWNGRADE) as looked up by lookup.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	if v, ok := lookup("LIBPROCESS_IP"); ok {
		c.IP = v
	}
	if v, ok := lookup("LIBPROCESS_PORT"); ok {
		p, err := parsePort(v)
		if err != nil {
			return fmt.Errorf("LIBPROCESS_PORT: %w", err)
		}
		c.Port = p
	}
	if v, ok := lookup("LIBPROCESS_ADVERTISE_IP"); ok {
		c.AdvertiseIP = v
	}
	if v, ok := lookup("LIBPROCESS_ADVERTISE_PORT"); ok {
		p, err := parsePort(v)
		if err != nil {
			return fmt.Errorf("LIBPROCESS_ADVERTISE_PORT: %w", err)
		}
		c.AdvertisePort = p
	}
	if v, ok := lookup("LIBPROCESS_REQUIRE_PEER_ADDRESS_IP_MATCH"); ok {
		b, err := parseBool(v)
		if err != nil {
			return fmt.Errorf("LIBPROCESS_REQUIRE_PEER_ADDRESS_IP_MATCH: %w", err)
		}
		c.RequirePeerAddressIPMatch = b
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"LIBPROCESS_SSL_ENABLED", &c.TLS.Enabled},
		{"LIBPROCESS_SSL_VERIFY_CERT", &c.TLS.VerifyCert},
		{"LIBPROCESS_SSL_REQUIRE_CERT", &c.TLS.RequireCert},
		{"LIBPROCESS_SSL_SUPPORT_DOWNGRADE", &c.TLS.SupportDowngrade},
	} {
		if v, ok := lookup(b.name); ok {
			v, err := parseBool(v)
			if err != nil {
				return fmt.Errorf("%s: %w", b.name, err)
			}
			*b.dst = v
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"LIBPROCESS_SSL_CERT_FILE", &c.TLS.CertFile},
		{"LIBPROCESS_SSL_KEY_FILE", &c.TLS.KeyFile},
		{"LIBPROCESS_SSL_CA_FILE", &c.TLS.CAFile},
		{"LIBPROCESS_SSL_CA_DIR", &c.TLS.CADir},
	} {
		if v, ok := lookup(f.name); ok {
			*f.dst = v
		}
	}
	if v, ok := lookup("LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT"); ok {
		r, err := parseRate(v)
		if err != nil {
			return fmt.Errorf("LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT: %w", err)
		}
		c.MetricsSnapshotRateLimit = r
	}
	return nil
}

// validate reports the first invalid field; New calls it.
func (c *Config) validate() error {
	if c.IP != "" {
		if _, err := netip.ParseAddr(c.IP); err != nil {
			return fmt.Errorf("config: IP %q is not an IP address", c.IP)
		}
	}
	if c.AdvertiseIP != "" {
		if _, err := netip.ParseAddr(c.AdvertiseIP); err != nil {
			return fmt.Errorf("config: AdvertiseIP %q is not an IP address", c.AdvertiseIP)
		}
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("config: Port %d out of range 0-65535", c.Port)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return fmt.Errorf("config: AdvertisePort %d out of range 0-65535", c.AdvertisePort)
	}
	if c.MaxMessageSize <= 0 {
		return errors.New("config: MaxMessageSize must be positive")
	}
	if c.MaxRequestBodySize <= 0 || c.BufferedBodyLimit <= 0 {
		return errors.New("config: MaxRequestBodySize and BufferedBodyLimit must be positive")
	}
	if c.MailboxCapacity <= 0 {
		return errors.New("config: MailboxCapacity must be positive")
	}
	if c.OutboundQueueCapacity <= 0 {
		return errors.New("config: OutboundQueueCapacity must be positive")
	}
	if c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.DialTimeout <= 0 {
		return errors.New("config: ReadTimeout, WriteTimeout and DialTimeout must be positive")
	}
	if c.IdleTimeout < 0 {
		return errors.New("config: IdleTimeout must not be negative")
	}
	if err := c.validateOutboundAndFirewall(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return c.validateInbound()
}

// validateInbound checks the inbound limits.
func (c *Config) validateInbound() error {
	if c.MaxHeaderBytes < 1<<10 || c.MaxHeaderBytes > wire.MaxHeadSize {
		return fmt.Errorf("config: MaxHeaderBytes %d out of range %d-%d", c.MaxHeaderBytes, 1<<10, wire.MaxHeadSize)
	}
	if c.MaxInboundConnections < 0 {
		return errors.New("config: MaxInboundConnections must not be negative (0 sizes it from RLIMIT_NOFILE)")
	}
	if c.InboundBodyBudget <= 0 {
		return errors.New("config: InboundBodyBudget must be positive")
	}
	if c.MessageIdleTimeout < 0 {
		return errors.New("config: MessageIdleTimeout must not be negative")
	}
	if c.TLSHandshakeTimeout <= 0 || c.RouteTimeout <= 0 {
		return errors.New("config: TLSHandshakeTimeout and RouteTimeout must be positive")
	}
	if c.TLS.RequireCert && c.TLS.SupportDowngrade {
		// A plaintext client presents no certificate at all: downgrade
		// would let it past the requirement.
		return errors.New("config: LIBPROCESS_SSL_REQUIRE_CERT and LIBPROCESS_SSL_SUPPORT_DOWNGRADE cannot both be set: plaintext connections would bypass the certificate requirement")
	}
	return nil
}

func parsePort(v string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("%q is not a port number", v)
	}
	return p, nil
}

// parseBool accepts the spellings stout's flags accept.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean", v)
}

// parseRate parses a rate limit "N/DURATION" with a libprocess duration such
// as "1secs" or "2mins" (a bare "N" means per second), into requests per
// second.
func parseRate(v string) (float64, error) {
	v = strings.TrimSpace(v)
	num, per, ok := strings.Cut(v, "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: rate must be a positive number", v)
	}
	if !ok {
		return n, nil
	}
	d, err := parseDuration(per)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", v, err)
	}
	return n / d.Seconds(), nil
}

// parseDuration parses a libprocess/stout duration such as "5secs",
// "100ms", "2mins" or "1hrs" (units ns, us, ms, secs, mins, hrs, days,
// weeks), as used by the timeout query parameter of /metrics/snapshot.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] == '.' || (s[i] >= '0' && s[i] <= '9')) {
		i++
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	units := map[string]time.Duration{
		"ns": time.Nanosecond, "us": time.Microsecond, "ms": time.Millisecond,
		"secs": time.Second, "mins": time.Minute, "hrs": time.Hour,
		"days": 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
	}
	u, ok := units[s[i:]]
	if !ok {
		return 0, fmt.Errorf("invalid duration %q: unknown unit %q", s, s[i:])
	}
	d := time.Duration(n * float64(u))
	if d <= 0 {
		return 0, fmt.Errorf("invalid duration %q: must be positive", s)
	}
	return d, nil
}

// effectiveQueueBytes is OutboundQueueBytes raised, if need be, so that
// one message of the largest size a peer accepts always fits.
func effectiveQueueBytes(c *Config) int64 {
	return max(c.OutboundQueueBytes, int64(c.MaxMessageSize)+wire.MaxHeadSize)
}

// effectiveQueueBudget is OutboundQueueBudget raised, if need be, to
// effectiveQueueBytes.
func effectiveQueueBudget(c *Config) int64 {
	return max(c.OutboundQueueBudget, effectiveQueueBytes(c))
}

// validateOutboundAndFirewall checks the outbound limits and the firewall.
func (c *Config) validateOutboundAndFirewall() error {
	if c.MaxOutboundPeers <= 0 {
		return errors.New("MaxOutboundPeers must be positive")
	}
	if c.OutboundIdleTimeout <= 0 {
		return errors.New("OutboundIdleTimeout must be positive")
	}
	if c.MaxConcurrentDials <= 0 {
		return errors.New("MaxConcurrentDials must be positive")
	}
	if c.OutboundQueueBytes <= 0 || c.OutboundQueueBudget <= 0 {
		return errors.New("OutboundQueueBytes and OutboundQueueBudget must be positive")
	}
	for _, p := range c.DisabledEndpoints {
		if err := validEndpointPath(p); err != nil {
			return fmt.Errorf("DisabledEndpoints: %w", err)
		}
	}
	return nil
}
