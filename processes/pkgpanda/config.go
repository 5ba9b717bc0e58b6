package pkgpanda

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	"github.com/procpanda/procpanda/processes/pkgpanda/subprocess"
	"github.com/rs/zerolog"
)

// ProcessID is the libprocess id of the pkgpanda process: its routes are
// /pkgpanda/<route> and its UPID is pkgpanda@host:port.
const ProcessID = "pkgpanda"

// Route names: each is one HTTP route under /pkgpanda/ and one actor.
const (
	RouteListJSON   = "list.json"   // GET: repository ids (pkgpanda list)
	RouteActiveJSON = "active.json" // GET: active ids (pkgpanda active)
	RouteAdd        = "add"         // POST: add the tarball in the body
	RouteRemove     = "remove"      // POST: pkgpanda remove
	RouteActivate   = "activate"    // POST: pkgpanda activate
	RouteSwap       = "swap"        // POST: pkgpanda swap
	RouteFetch      = "fetch"       // POST: pkgpanda fetch, streamed
	RouteCheck      = "check"       // GET: pkgpanda check [--list]
	RouteRepository = "repository"  // Pkgpanda API: /repository/[<id>]
	RouteActive     = "active"      // Pkgpanda API: /active/[<id>]
	RouteAPIv1      = "api/v1"      // POST: PkgpandaCall in JSON or protobuf
)

// RouteNames returns, sorted, the names of the routes that run the tool,
// each with its own actor, limits and metrics. RouteAPIv1 is not among
// them: an api/v1 call or a PkgpandaCall message runs on the actor of the
// route serving the same operation (LIST, GET_PACKAGE, FETCH and REMOVE on
// "repository"; ACTIVE, GET_ACTIVE_PACKAGE and ACTIVATE on "active"; ADD
// on "add"; SWAP on "swap"; CHECK on "check").
func RouteNames() []string {
	names := []string{RouteListJSON, RouteActiveJSON, RouteAdd, RouteRemove, RouteActivate,
		RouteSwap, RouteFetch, RouteCheck, RouteRepository, RouteActive}
	sort.Strings(names)
	return names
}

// Defaults used when the corresponding Config field is zero.
const (
	// DefaultTimeout bounds one subprocess run of a route.
	DefaultTimeout = 5 * time.Minute
	// DefaultLongTimeout bounds one run of fetch, add and check, which
	// download, unpack or run checks.
	DefaultLongTimeout = 30 * time.Minute
	// DefaultQueueLimit bounds the requests waiting for one route's actor.
	DefaultQueueLimit = 64
	// DefaultMaxAddSize caps the tarball accepted by add.
	DefaultMaxAddSize = 1 << 30
	// DefaultKillGrace is the SIGTERM to SIGKILL delay for a child.
	DefaultKillGrace = subprocess.DefaultKillGrace
)

// RouteLimits bounds one route's actor.
type RouteLimits struct {
	// Timeout bounds each subprocess run of the route; zero means the
	// default for the route.
	Timeout time.Duration
	// QueueLimit bounds the requests waiting while one runs; zero means
	// DefaultQueueLimit. The running request is not counted.
	QueueLimit int
}

// RunInfo describes one finished subprocess run, for Config.OnRun.
type RunInfo struct {
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
	// Realm is the HTTP authentication realm of every route; the runtime's
	// authenticator for it (Runtime.SetAuthenticator) then guards them.
	// Empty leaves the routes open. Messages are not authenticated, as in
	// libprocess.
	Realm string
	// Tool is the pkgpanda executable and the global options passed to
	// every command. Tool.Path is required.
	Tool cli.Tool
	// Env is the child's whole environment ("KEY=value"); nothing else
	// is inherited.
	Env []string
	// Dir is the child's working directory; empty means the current one.
	Dir string
	// TempDir is where add creates its private temporary directories;
	// empty means os.TempDir().
	TempDir string
	// MaxAddSize caps the tarball add accepts (body or message), in
	// bytes; zero means DefaultMaxAddSize. The runtime's MaxMessageSize
	// caps request bodies too.
	MaxAddSize int64
	// Limits overrides RouteLimits per route name (see RouteNames).
	Limits map[string]RouteLimits
	// KillGrace is the delay between SIGTERM and SIGKILL to a child;
	// zero means DefaultKillGrace.
	KillGrace time.Duration
	// Logger receives structured logs: one line per run at debug level,
	// failures at warn.
	Logger zerolog.Logger
	// OnRun, if set, is called after every subprocess run, on the
	// running actor's goroutine, before the run's response is sent.
	OnRun func(RunInfo)
}

// limits returns the effective limits of a route.
func (c *Config) limits(route string) RouteLimits {
	l := c.Limits[route]
	if l.Timeout <= 0 {
		switch route {
		case RouteFetch, RouteAdd, RouteCheck:
			l.Timeout = DefaultLongTimeout
		default:
			l.Timeout = DefaultTimeout
		}
	}
	if l.QueueLimit <= 0 {
		l.QueueLimit = DefaultQueueLimit
	}
	return l
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
	return nil
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

// ParseGlobalArgs parses pkgpanda global options as given on a command line
// (`--root=DIR`, `--repository=DIR`, `--config-dir=DIR`,
// `--state-dir-root=DIR`, `--rooted-systemd`, `--no-systemd`,
// `--no-block-systemd`, `--silent`) into cli.Options. Directory options
// need the `=value` form with a non-empty value; flags take no value.
// An unknown option, a repeated one or a bad value is an error, so that
// nothing unexpected ever reaches the tool's argv.
func ParseGlobalArgs(args []string) (cli.Options, error) {
	var o cli.Options
	seen := map[string]bool{}
	for _, a := range args {
		name, value, hasValue := strings.Cut(a, "=")
		if seen[name] {
			return cli.Options{}, fmt.Errorf("pkgpanda option %q given twice", name)
		}
		seen[name] = true
		var dir *string
		var flag *bool
		switch name {
		case "--root":
			dir = &o.Root
		case "--repository":
			dir = &o.Repository
		case "--config-dir":
			dir = &o.ConfigDir
		case "--state-dir-root":
			dir = &o.StateDirRoot
		case "--rooted-systemd":
			flag = &o.RootedSystemd
		case "--no-systemd":
			flag = &o.NoSystemd
		case "--no-block-systemd":
			flag = &o.NoBlockSystemd
		case "--silent":
			flag = &o.Silent
		default:
			return cli.Options{}, fmt.Errorf("unknown pkgpanda global option %q", a)
		}
		if flag != nil {
			if hasValue {
				return cli.Options{}, fmt.Errorf("pkgpanda option %s takes no value", name)
			}
			*flag = true
			continue
		}
		if !hasValue || strings.TrimSpace(value) == "" {
			return cli.Options{}, fmt.Errorf("pkgpanda option %s needs =DIR", name)
		}
		*dir = value
	}
	if _, err := o.Args(); err != nil {
		return cli.Options{}, fmt.Errorf("pkgpanda global options: %w", err)
	}
	return o, nil
}

// ParseRouteSetting parses a per-route setting "ROUTE=VALUE" as given to
// pkgpandad's --timeout and --queue flags: ROUTE must be one of RouteNames.
// It returns the route and the value text.
func ParseRouteSetting(s string) (route, value string, err error) {
	route, value, ok := strings.Cut(s, "=")
	if !ok || value == "" {
		return "", "", fmt.Errorf("route setting %q: want ROUTE=VALUE", s)
	}
	for _, n := range RouteNames() {
		if n == route {
			return route, value, nil
		}
	}
	return "", "", fmt.Errorf("route setting %q: unknown route %q (routes: %s)", s, route, strings.Join(RouteNames(), ", "))
}

// ParseQueueLimit parses a queue bound: a positive decimal integer.
func ParseQueueLimit(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("queue limit %q: want a positive integer", s)
	}
	return n, nil
}
