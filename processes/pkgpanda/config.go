package pkgpanda

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	"github.com/procpanda/procpanda/processes/pkgpanda/subprocess"
	"github.com/rs/zerolog"
)

// processID is the libprocess id of the pkgpanda process: its routes are
// /pkgpanda/<route> and its UPID is pkgpanda@host:port.
const processID = "pkgpanda"

// Route names: each is one HTTP route under /pkgpanda/ and one actor.
const (
	routeListJSON   = "list.json"   // GET: repository ids (pkgpanda list)
	routeActiveJSON = "active.json" // GET: active ids (pkgpanda active)
	routeAdd        = "add"         // POST: add the tarball in the body
	routeRemove     = "remove"      // POST: pkgpanda remove
	routeActivate   = "activate"    // POST: pkgpanda activate
	routeSwap       = "swap"        // POST: pkgpanda swap
	routeFetch      = "fetch"       // POST: pkgpanda fetch, streamed
	routeCheck      = "check"       // GET: pkgpanda check [--list]
	routeRepository = "repository"  // Pkgpanda API: /repository/[<id>]
	routeActive     = "active"      // Pkgpanda API: /active/[<id>]
	routeAPIv1      = "api/v1"      // POST: PkgpandaCall in JSON or protobuf
)

// RouteNames returns, sorted, the names of the routes that run the tool,
// each with its own actor, limits and metrics. api/v1 is not among
// them: an api/v1 call or a PkgpandaCall message runs on the actor of the
// route serving the same operation (LIST, GET_PACKAGE, FETCH and REMOVE on
// "repository"; ACTIVE, GET_ACTIVE_PACKAGE and ACTIVATE on "active"; ADD
// on "add"; SWAP on "swap"; CHECK on "check").
func RouteNames() []string {
	names := []string{routeListJSON, routeActiveJSON, routeAdd, routeRemove, routeActivate,
		routeSwap, routeFetch, routeCheck, routeRepository, routeActive}
	sort.Strings(names)
	return names
}

// Timeouts used when RouteLimits.Timeout is zero, and the child's kill
// grace when Config.KillGrace is.
const (
	// defaultTimeout bounds one subprocess run of a route.
	defaultTimeout = 5 * time.Minute
	// defaultLongTimeout bounds one run of fetch, add and check, which
	// download, unpack or run checks.
	defaultLongTimeout = 30 * time.Minute
	// defaultKillGrace is the SIGTERM to SIGKILL delay for a child.
	defaultKillGrace = subprocess.DefaultKillGrace
)

// Defaults used when the corresponding Config field is zero.
const (
	// DefaultQueueLimit bounds the requests waiting for one route's actor.
	DefaultQueueLimit = 64
	// DefaultMaxAddSize caps the tarball accepted by add.
	DefaultMaxAddSize = 1 << 30
	// DefaultMaxUploads bounds the request and message bodies being
	// written to disk at once (add, api/v1, ADD messages).
	DefaultMaxUploads = 4
	// DefaultMaxUploadBytes bounds the bytes of all upload files on disk
	// at once: those being received and the tarballs of queued adds.
	DefaultMaxUploadBytes = 4 << 30
	// DefaultLockTimeout bounds the wait of a mutation for the on-disk
	// repository lock held by another process.
	DefaultLockTimeout = 30 * time.Second
	// DefaultRealm is the authentication realm named in challenges.
	DefaultRealm = "pkgpanda"
)

// RouteLimits bounds one route's actor.
type RouteLimits struct {
	// Timeout bounds each subprocess run of the route; zero means the
	// default for the route: 30 minutes for fetch, add and check, which
	// download, unpack or run checks, 5 minutes for the others.
	Timeout time.Duration
	// QueueLimit bounds the requests waiting while one runs; zero means
	// DefaultQueueLimit. The running request is not counted.
	QueueLimit int
}

// runInfo describes one finished subprocess run, for Config.onRun.
type runInfo struct {
	// Route is the actor that ran it.
	Route string
	// Argv is the command.
	Argv []string
	// Result is the finished run, nil if the child never started.
	Result *subprocess.Result
	// Err is the run's error (nil on exit status 0).
	Err error
}

// Config configures a pkgpanda Process.
type Config struct {
	// Authenticator, if set, authenticates every operation, whatever
	// front-end asked for it: the HTTP routes and POST /pkgpanda/api/v1 by
	// the request's Authorization header, PkgpandaCall messages by their
	// authorization field. Nil leaves every operation open. The process
	// authenticates by itself: do not also put its routes in a runtime
	// realm.
	Authenticator libprocess.Authenticator
	// ACL, if set, says which authenticated principals may read and which
	// may mutate; nil lets every authenticated principal do everything.
	// It needs an Authenticator.
	ACL *ACL
	// OpenReads lets callers without credentials run read-only
	// operations (list, active, get, check) when an Authenticator is set;
	// credentials that are presented are still checked. By default reads
	// need authentication too.
	OpenReads bool
	// Unauthenticated, with no Authenticator, says the process serves
	// every operation to anyone on purpose (pkgpandad's
	// --insecure-allow-unauthenticated-mutations): every route's /help
	// then carries a warning. It changes nothing else.
	Unauthenticated bool
	// Realm is the realm named in 401 challenges; empty means DefaultRealm.
	Realm string
	// LockFile is the file locked (flock) around every mutation, so that
	// no two processes, nor a CLI child that survived a crashed daemon
	// (mutation children inherit the lock), change the install at once.
	// Empty means ".pkgpanda.lock" beside the repository directory.
	LockFile string
	// LockTimeout bounds how long a mutation waits for a lock held by
	// another process before it is answered 503; zero means
	// DefaultLockTimeout (never more than the route's timeout).
	LockTimeout time.Duration
	// MaxUploads bounds the uploads (add bodies, api/v1 bodies, ADD
	// message tarballs) being written to disk at once; zero means
	// DefaultMaxUploads. More are answered 503.
	MaxUploads int
	// MaxUploadBytes bounds the bytes of all upload files on disk (being
	// received, or waiting in a queued add); zero means
	// DefaultMaxUploadBytes. An upload that would pass it is answered 503.
	MaxUploadBytes int64
	// Tool is the pkgpanda executable and the global options passed to
	// every command. Tool.Path is required.
	Tool cli.Tool
	// Env is the child's whole environment ("KEY=value"); nothing else
	// is inherited.
	Env []string
	// Dir is the child's working directory; empty means the current one.
	Dir string
	// TempDir holds the process' upload directory, a private (0700)
	// directory TempDir/pkgpanda-uploads-<random> that the process creates
	// at Start, locks while it runs and removes when Drain is done. At
	// Start, such directories of the same user that no running process
	// locks (left by a killed process) are removed; other users' are left
	// alone. A TempDir others may write to without the sticky bit is
	// refused. Empty means os.TempDir().
	TempDir string
	// MaxAddSize caps the tarball add accepts (body or message), in
	// bytes; zero means DefaultMaxAddSize. The runtime's MaxMessageSize
	// caps request bodies too.
	MaxAddSize int64
	// Limits overrides RouteLimits per route name (see RouteNames).
	Limits map[string]RouteLimits
	// KillGrace is the delay between SIGTERM and SIGKILL to a child;
	// zero means subprocess.DefaultKillGrace.
	KillGrace time.Duration
	// Logger receives structured logs: one line per run at debug level,
	// failures at warn.
	Logger zerolog.Logger
	// DisableCache turns off the reuse of `list` and `active` results:
	// every read runs the CLI. The zero value reuses a result while the
	// stat(2) stamps of everything it read on disk are unchanged.
	DisableCache bool
	// onRun, if set, is called after every subprocess run, on the
	// running actor's goroutine, before the run's response is sent.
	onRun func(runInfo)
}

// limits returns the effective limits of a route.
func (c *Config) limits(route string) RouteLimits {
	l := c.Limits[route]
	if l.Timeout <= 0 {
		switch route {
		case routeFetch, routeAdd, routeCheck:
			l.Timeout = defaultLongTimeout
		default:
			l.Timeout = defaultTimeout
		}
	}
	if l.QueueLimit <= 0 {
		l.QueueLimit = DefaultQueueLimit
	}
	return l
}

// routeDeadline is the runtime's deadline for one request to route: long
// enough for the longest work the route can start — two CLI runs (the API
// routes' pre-check and mutation) of the slowest actor it may use, each
// killed at its timeout plus the kill grace, and the wait for the
// repository lock — plus a minute of slack for queueing and answering. A
// request still queued at its deadline is answered 504 by the runtime and
// never run (see execute).
func (c *Config) routeDeadline(route string) time.Duration {
	run := c.limits(route).Timeout
	switch route {
	case routeRepository, routeActive, routeAPIv1:
		for _, r := range RouteNames() {
			run = max(run, c.limits(r).Timeout)
		}
	}
	grace := c.KillGrace
	if grace <= 0 {
		grace = defaultKillGrace
	}
	return 2*(run+grace) + c.lockTimeout() + time.Minute
}

func (c *Config) validate() error {
	if c.Tool.Path == "" {
		return fmt.Errorf("pkgpanda config: the tool path is empty")
	}
	if _, err := c.Tool.Options.Args(); err != nil {
		return fmt.Errorf("pkgpanda config: global options: %w", err)
	}
	valid := map[string]bool{}
	for _, n := range RouteNames() {
		valid[n] = true
	}
	for name := range c.Limits {
		if !valid[name] {
			return fmt.Errorf("pkgpanda config: limits for unknown route %q", name)
		}
	}
	if c.MaxAddSize < 0 {
		return fmt.Errorf("pkgpanda config: negative MaxAddSize")
	}
	if c.MaxUploads < 0 || c.MaxUploadBytes < 0 || c.LockTimeout < 0 {
		return fmt.Errorf("pkgpanda config: negative MaxUploads, MaxUploadBytes or LockTimeout")
	}
	if c.ACL != nil && c.Authenticator == nil {
		return fmt.Errorf("pkgpanda config: an ACL needs an authenticator")
	}
	return nil
}

func (c *Config) realm() string {
	if c.Realm != "" {
		return c.Realm
	}
	return DefaultRealm
}

// lockFile is the path of the on-disk repository lock.
func (c *Config) lockFile() string {
	if c.LockFile != "" {
		return c.LockFile
	}
	return filepath.Join(filepath.Dir(filepath.Clean(c.repository())), ".pkgpanda.lock")
}

func (c *Config) lockTimeout() time.Duration {
	if c.LockTimeout > 0 {
		return c.LockTimeout
	}
	return DefaultLockTimeout
}

func (c *Config) maxUploads() int {
	if c.MaxUploads > 0 {
		return c.MaxUploads
	}
	return DefaultMaxUploads
}

func (c *Config) maxUploadBytes() int64 {
	if c.MaxUploadBytes > 0 {
		return c.MaxUploadBytes
	}
	return DefaultMaxUploadBytes
}

// root is the install root (pkgpanda's --root).
func (c *Config) root() string {
	if c.Tool.Options.Root != "" {
		return c.Tool.Options.Root
	}
	return cli.DefaultRoot
}

func (c *Config) repository() string {
	if c.Tool.Options.Repository != "" {
		return c.Tool.Options.Repository
	}
	return cli.DefaultRepository
}

func (c *Config) tempDir() string {
	if c.TempDir != "" {
		return c.TempDir
	}
	return os.TempDir()
}

func (c *Config) maxAddSize() int64 {
	if c.MaxAddSize > 0 {
		return c.MaxAddSize
	}
	return DefaultMaxAddSize
}
