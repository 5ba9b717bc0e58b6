// Command pkgpandad runs the pkgpanda libprocess process: the DC/OS
// Pkgpanda HTTP API and the pkgpanda command-line surface under
// http://IP:PORT/pkgpanda/..., and PkgpandaCall messages to
// pkgpanda@IP:PORT, each operation run by the pkgpanda command-line tool as
// a subprocess.
//
// The listening address comes from the LIBPROCESS_* environment variables
// (LIBPROCESS_IP, LIBPROCESS_PORT, LIBPROCESS_ADVERTISE_IP, ...). At start
// pkgpandad prints its UPID (e.g. `pkgpanda@127.0.0.1:5052`) as one line on
// stdout; logs are zerolog JSON lines on stderr. SIGTERM or SIGINT drains:
// new and queued requests get 503, running mutations finish, then the
// process exits 0.
//
// Usage:
//
//	pkgpandad [--pkgpanda PATH] [--pkgpanda-arg=--root=DIR ...] [--demo DIR]
//	          [--timeout ROUTE=DURATION ...] [--queue ROUTE=N ...]
//	          [--default-timeout DURATION] [--default-queue N]
//	          [--max-add-size BYTES] [--max-message-size BYTES] [--tmp-dir DIR] [--env KEY=VALUE ...]
//	          [--env-pass NAME ...] [--drain-timeout DURATION] [--log-level LEVEL]
//	          [--firewall-rules JSON|FILE]
//	          [--http-credentials FILE | --jwt-secret-key FILE] [--authentication-realm REALM]
//	          [--acls FILE] [--authenticate-reads=false]
//	          [--max-uploads N] [--max-upload-bytes BYTES]
//	          [--lock-file PATH] [--lock-timeout DURATION]
//	          [--unix-socket PATH [--unix-socket-mode 0660] [--unix-socket-group GROUP]]
//	          [--delegate pkgpanda] [--access-log=false] [--version]
//	          [--tcp=false] [--insecure-allow-unauthenticated-mutations]
//	          [--env-file FILE]
//
// pkgpandad refuses to start (exit 2) when it would serve its TCP port
// without --http-credentials or --jwt-secret-key, unless
// --insecure-allow-unauthenticated-mutations asks for exactly that (it
// then warns at start and in every route's /help). --tcp=false serves only
// --unix-socket, as the drop-in unit does by default; no message can reach
// the process then.
//
// As a drop-in for DC/OS' dcos-pkgpanda-api (see dcos-pkgpanda-api.service
// beside this file), --unix-socket serves HTTP, and only HTTP, on a unix
// socket as well as on the libprocess port: the socket file is created
// owner-only, then given --unix-socket-group and --unix-socket-mode before
// anything is served; a stale socket is replaced, but never a file that is
// not a socket nor a socket something listens on; it is removed on exit.
// A libprocess message sent over it is answered 403. --delegate pkgpanda
// makes the unprefixed paths Admin Router sends (/repository/…,
// /active/…) reach the pkgpanda process (libprocess' delegate rule).
//
// Every HTTP request is logged as one access line (--access-log=false
// turns it off) and every mutation as one audit line; metrics are in
// /metrics/snapshot and, for Prometheus, /metrics/prometheus. --version
// prints the version stamped at build time.
//
// Authentication and authorization belong to the operation, whatever
// front-end asks for it: with --http-credentials or --jwt-secret-key every
// HTTP route, POST /pkgpanda/api/v1 (its Authorization header) and every
// PkgpandaCall message (its authorization field, holding what an
// Authorization header would) must authenticate; refusals are 401 (with a
// WWW-Authenticate challenge over HTTP) or 403, and a PkgpandaResponse with
// that status for messages. --acls FILE restricts which principals may
// read and which may mutate:
//
//	{"permissive": false,
//	 "read":   {"principals": ["ops", "monitor"]},
//	 "mutate": {"principals": ["ops"]}}
//
// where "read" and "mutate" each hold "principals" (a list) or "type"
// ("ANY" or "NONE"); an absent permission is ANY if "permissive" is true,
// NONE otherwise; unknown keys are an error. --authenticate-reads=false
// lets callers without credentials run read-only operations.
//
// Uploads (add bodies, api/v1 bodies, ADD message tarballs) go to disk in
// a private <tmp-dir>/pkgpanda-uploads-<random>, removed at exit (a killed
// daemon's is removed at the next start);
// at most --max-uploads are received at once and all upload files together
// hold at most --max-upload-bytes (more: 503 with Retry-After). Every
// mutation holds an flock on --lock-file (default: .pkgpanda.lock beside
// the repository), which its CLI children inherit, so a restarted daemon
// never runs a mutation beside a CLI child that outlived a crash, nor
// beside a second daemon; CLI children also get SIGKILL when the daemon
// dies.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/libprocess/httpauth"
	"github.com/procpanda/procpanda/processes/pkgpanda"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	"github.com/rs/zerolog"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, sigs))
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// options are pkgpandad's parsed flags.
type options struct {
	tool         string
	toolArgs     listFlag
	demo         string
	timeouts     listFlag
	queues       listFlag
	defTimeout   time.Duration
	defQueue     int
	maxAdd       int64
	maxMessage   int
	tmpDir       string
	env          listFlag
	envPass      listFlag
	drainTimeout time.Duration
	logLevel     string
	credentials  string
	jwtSecret    string
	realm        string
	firewall     string
	// Authorization and uploads (pkgpanda.Config fields of the same names).
	acls          string
	authReads     bool
	maxUploads    int
	maxUploadSize int64
	lockFile      string
	lockTimeout   time.Duration
	cache         bool // reuse list/active results (pkgpanda.Config.DisableCache)
	// The drop-in for dcos-pkgpanda-api, and what an operator sees.
	unixSocket  string
	socketMode  string
	socketGroup string
	delegate    string
	accessLog   bool
	version     bool
	// Listeners and authentication policy.
	tcp          bool
	insecureOpen bool
	envFile      string
}

// defaultEnvPass returns the variables handed to the tool when --env-pass
// is not given.
func defaultEnvPass() []string { return []string{"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"} }

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("pkgpandad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.tool, "pkgpanda", "pkgpanda", "the pkgpanda command-line tool (a path, or a name looked up in PATH)")
	fs.Var(&o.toolArgs, "pkgpanda-arg", "a global option for every pkgpanda command, e.g. --pkgpanda-arg=--root=/opt/mesosphere (repeatable; --root, --repository, --config-dir, --state-dir-root, --rooted-systemd, --no-systemd, --no-block-systemd, --silent)")
	fs.StringVar(&o.demo, "demo", "", "create a demo repository in `DIR` with the stand-in's demo-init and point the tool at it")
	fs.Var(&o.timeouts, "timeout", "per-route subprocess timeout `ROUTE=DURATION` (repeatable; routes: "+strings.Join(pkgpanda.RouteNames(), ", ")+")")
	fs.Var(&o.queues, "queue", "per-route queue bound `ROUTE=N` (repeatable)")
	fs.DurationVar(&o.defTimeout, "default-timeout", 0, "subprocess timeout of routes without --timeout (0: 5m, 30m for add/fetch/check)")
	fs.IntVar(&o.defQueue, "default-queue", 0, fmt.Sprintf("queue bound of routes without --queue (0: %d)", pkgpanda.DefaultQueueLimit))
	fs.Int64Var(&o.maxAdd, "max-add-size", 0, fmt.Sprintf("largest tarball POST /pkgpanda/add accepts, in bytes (0: %d); uploads stream to disk", int64(pkgpanda.DefaultMaxAddSize)))
	fs.IntVar(&o.maxMessage, "max-message-size", 0, "the runtime's cap on a libprocess message body, in bytes (0: libprocess' default); bounds ADD tarballs sent inside PkgpandaCall messages")
	fs.StringVar(&o.credentials, "http-credentials", "", "require HTTP Basic authentication on every route, with the principals and secrets of this Mesos credentials `FILE` ({\"credentials\":[{\"principal\":…,\"secret\":…}]})")
	fs.StringVar(&o.jwtSecret, "jwt-secret-key", "", "require HS256 JWT bearer tokens on every route, signed with the key in this `FILE` (exclusive with --http-credentials)")
	fs.StringVar(&o.firewall, "firewall-rules", "", "endpoints answered 403, as Mesos' --firewall_rules: `JSON` {\"disabled_endpoints\":{\"paths\":[\"/pkgpanda/add\"]}} inline, or a file holding it; a path also disables everything below it, and /pkgpanda/mesos.internal.PkgpandaCall turns off the message API")
	fs.StringVar(&o.realm, "authentication-realm", pkgpanda.DefaultRealm, "the authentication realm named in 401 challenges")
	// Authorization, uploads and the repository lock.
	fs.StringVar(&o.acls, "acls", "", "authorize operations with this ACL `FILE` ({\"permissive\": false, \"read\": {\"principals\": [...]}, \"mutate\": {\"principals\": [...]}}; each permission may be {\"type\": \"ANY\"|\"NONE\"} instead); needs --http-credentials or --jwt-secret-key")
	fs.BoolVar(&o.authReads, "authenticate-reads", true, "with an authenticator, require credentials for read-only operations too (false: reads are open)")
	fs.IntVar(&o.maxUploads, "max-uploads", 0, fmt.Sprintf("uploads (add, api/v1 and ADD message bodies) written to disk at once; more get 503 (0: %d)", pkgpanda.DefaultMaxUploads))
	fs.Int64Var(&o.maxUploadSize, "max-upload-bytes", 0, fmt.Sprintf("bytes of all upload files on disk at once, received or queued; more get 503 (0: %d)", int64(pkgpanda.DefaultMaxUploadBytes)))
	fs.StringVar(&o.lockFile, "lock-file", "", "the file locked around every mutation (default: .pkgpanda.lock beside the repository)")
	fs.DurationVar(&o.lockTimeout, "lock-timeout", 0, fmt.Sprintf("how long a mutation waits for a lock file held by another process before 503 (0: %s)", pkgpanda.DefaultLockTimeout))
	// Reuse of read results.
	fs.BoolVar(&o.cache, "cache", true, "reuse the results of `pkgpanda list` and `pkgpanda active` while stat(2) shows their inputs unchanged on disk (false: every read runs the tool)")
	fs.StringVar(&o.tmpDir, "tmp-dir", "", "where add writes uploaded tarballs (default: the system temp dir)")
	fs.Var(&o.env, "env", "set `KEY=VALUE` in the tool's environment (repeatable)")
	fs.Var(&o.envPass, "env-pass", "pass this variable of pkgpandad's environment to the tool (repeatable; default: "+strings.Join(defaultEnvPass(), ", ")+")")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Minute, "on SIGTERM, how long running mutations may take to finish")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.StringVar(&o.unixSocket, "unix-socket", "", "also serve HTTP (not libprocess messages, which get 403) on a unix socket at `PATH`, e.g. /run/dcos/pkgpanda-api.sock; a stale socket there is replaced, anything else is refused")
	fs.StringVar(&o.socketMode, "unix-socket-mode", "0660", "permission bits of the --unix-socket file, octal")
	fs.StringVar(&o.socketGroup, "unix-socket-group", "", "group (name or gid) of the --unix-socket file, e.g. dcos_adminrouter (default: the daemon's)")
	fs.StringVar(&o.delegate, "delegate", "", "the process that answers paths naming no process (libprocess' delegate), e.g. pkgpanda so that /repository/ is /pkgpanda/repository/")
	fs.BoolVar(&o.accessLog, "access-log", true, "log one info line per HTTP request (method, path, status, bytes, duration_ms, principal)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.tcp, "tcp", true, "serve the libprocess port (LIBPROCESS_IP:LIBPROCESS_PORT): HTTP and PkgpandaCall messages; false serves only --unix-socket, and no message can reach the process")
	fs.BoolVar(&o.insecureOpen, "insecure-allow-unauthenticated-mutations", false, "DANGEROUS: serve the TCP port without --http-credentials or --jwt-secret-key, so that anyone who reaches it may add, activate and remove packages (run as this daemon's user)")
	fs.StringVar(&o.envFile, "env-file", "", "also give the tool every variable of this environment `FILE` (systemd EnvironmentFile syntax), e.g. /opt/mesosphere/environment, where pkgpanda writes PATH and LD_LIBRARY_PATH")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(o.envPass) == 0 {
		o.envPass = defaultEnvPass()
	}
	return o, nil
}

// buildConfig turns flags into the process configuration; demo-init runs
// here when --demo is given.
func buildConfig(o *options, lookup func(string) (string, bool), log zerolog.Logger) (pkgpanda.Config, error) {
	var cfg pkgpanda.Config
	tool, err := toolPath(o.tool)
	if err != nil {
		return cfg, err
	}
	env, err := toolEnv(o, lookup)
	if err != nil {
		return cfg, err
	}
	args := []string(o.toolArgs)
	if o.demo != "" {
		demoArgs, err := demoInit(tool, o.demo, env)
		if err != nil {
			return cfg, err
		}
		log.Info().Str("dir", o.demo).Strs("options", demoArgs).Msg("demo repository ready")
		args = append(demoArgs, args...)
	}
	opts, err := parseGlobalArgs(args)
	if err != nil {
		return cfg, err
	}
	limits, err := routeLimits(o)
	if err != nil {
		return cfg, err
	}
	if o.maxAdd < 0 || o.maxUploads < 0 || o.maxUploadSize < 0 || o.lockTimeout < 0 {
		return cfg, errors.New("--max-add-size, --max-uploads, --max-upload-bytes and --lock-timeout must not be negative")
	}
	cfg = pkgpanda.Config{
		Tool:           cli.Tool{Path: tool, Options: opts},
		Env:            env,
		TempDir:        o.tmpDir,
		MaxAddSize:     o.maxAdd,
		Limits:         limits,
		Logger:         log,
		Realm:          o.realm,
		OpenReads:      !o.authReads,
		MaxUploads:     o.maxUploads,
		MaxUploadBytes: o.maxUploadSize,
		LockFile:       o.lockFile,
		LockTimeout:    o.lockTimeout,
		DisableCache:   !o.cache,
	}
	return cfg, authConfig(o, &cfg)
}

// toolPath resolves the CLI to an absolute path (a bare name through
// PATH).
func toolPath(tool string) (string, error) {
	if !strings.Contains(tool, "/") {
		p, err := exec.LookPath(tool)
		if err != nil {
			return "", fmt.Errorf("finding the pkgpanda tool %q: %w", tool, err)
		}
		tool = p
	}
	abs, err := filepath.Abs(tool)
	if err != nil {
		return "", fmt.Errorf("resolving the pkgpanda tool path: %w", err)
	}
	return abs, nil
}

// toolEnv builds the CLI's environment: the --env-pass variables of ours,
// then --env-file's, then --env's.
func toolEnv(o *options, lookup func(string) (string, bool)) ([]string, error) {
	var env []string
	for _, name := range o.envPass {
		if v, ok := lookup(name); ok {
			env = append(env, name+"="+v)
		}
	}
	if o.envFile != "" {
		fileEnv, err := readEnvFile(o.envFile)
		if err != nil {
			return nil, err
		}
		env = append(env, fileEnv...)
	}
	for _, kv := range o.env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		env = append(env, kv)
	}
	return env, nil
}

// routeLimits builds every route's timeout and queue bound from the
// defaults and the --timeout/--queue settings.
func routeLimits(o *options) (map[string]pkgpanda.RouteLimits, error) {
	if o.defTimeout < 0 || o.defQueue < 0 {
		return nil, errors.New("--default-timeout and --default-queue must not be negative")
	}
	limits := map[string]pkgpanda.RouteLimits{}
	for _, name := range pkgpanda.RouteNames() {
		limits[name] = pkgpanda.RouteLimits{Timeout: o.defTimeout, QueueLimit: o.defQueue}
	}
	for _, s := range o.timeouts {
		route, v, err := parseRouteSetting(s)
		if err != nil {
			return nil, fmt.Errorf("--timeout: %w", err)
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--timeout %q: want a positive duration such as 90s", s)
		}
		l := limits[route]
		l.Timeout = d
		limits[route] = l
	}
	for _, s := range o.queues {
		route, v, err := parseRouteSetting(s)
		if err != nil {
			return nil, fmt.Errorf("--queue: %w", err)
		}
		n, err := parseQueueLimit(v)
		if err != nil {
			return nil, fmt.Errorf("--queue: %w", err)
		}
		l := limits[route]
		l.QueueLimit = n
		limits[route] = l
	}
	return limits, nil
}

// authConfig sets cfg's authenticator and ACL from the flags, and
// refuses an exposure nobody asked for (checkExposure).
func authConfig(o *options, cfg *pkgpanda.Config) error {
	var err error
	if cfg.Authenticator, err = authenticator(o); err != nil {
		return err
	}
	if err := checkExposure(o, cfg.Authenticator != nil); err != nil {
		return err
	}
	cfg.Unauthenticated = cfg.Authenticator == nil && o.insecureOpen && o.tcp // the socket alone is Admin Router's to guard
	if o.acls == "" {
		return nil
	}
	if cfg.Authenticator == nil {
		return errors.New("--acls needs --http-credentials or --jwt-secret-key")
	}
	b, err := os.ReadFile(o.acls)
	if err != nil {
		return fmt.Errorf("reading --acls: %w", err)
	}
	if cfg.ACL, err = pkgpanda.ParseACL(b); err != nil {
		return fmt.Errorf("--acls %s: %w", o.acls, err)
	}
	return nil
}

// demoInit runs `<tool> demo-init DIR` (the stand-in CLI's command) and
// returns the global options it prints, one per line.
func demoInit(tool, dir string, env []string) ([]string, error) {
	cmd := exec.Command(tool, "demo-init", dir)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("creating the demo repository with %s demo-init %s: %w: %s", tool, dir, err, strings.TrimSpace(stderr.String()))
	}
	var args []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			args = append(args, l)
		}
	}
	return args, nil
}

func run(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "pkgpandad:", err)
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, "pkgpandad", versionString())
		return 0
	}
	var sock *unixSocket
	if o.unixSocket != "" {
		mode, err := parseSocketMode(o.socketMode)
		if err != nil {
			fmt.Fprintln(stderr, "pkgpandad:", err)
			return 2
		}
		sock = &unixSocket{path: o.unixSocket, mode: mode, group: o.socketGroup}
	}
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil || o.logLevel == "" {
		fmt.Fprintf(stderr, "pkgpandad: --log-level %q: want trace, debug, info, warn or error\n", o.logLevel)
		return 2
	}
	base := zerolog.New(stderr).Level(level).With().Timestamp().Logger()
	log := base.With().Str("component", "pkgpandad").Logger()

	cfg, err := buildConfig(o, lookup, log)
	cfg.Logger = base.With().Str("component", "pkgpanda").Logger()
	if err != nil {
		log.Error().Err(err).Msg("bad configuration")
		return 2
	}
	rt, err := newRuntime(o, &cfg, lookup, base)
	if err != nil {
		log.Error().Err(err).Msg("bad runtime configuration")
		return 2
	}
	if cfg.Unauthenticated {
		log.Warn().Msg("authentication is OFF on the TCP port (--insecure-allow-unauthenticated-mutations): anyone who can reach it may add, activate and remove packages")
	}
	if authn := cfg.Authenticator; authn != nil {
		log.Info().Str("realm", o.realm).Str("scheme", authn.Scheme()).Bool("acls", cfg.ACL != nil).
			Bool("authenticate_reads", !cfg.OpenReads).Msg("authentication enabled for every operation (HTTP and messages)")
	}
	p, err := pkgpanda.New(cfg)
	if err != nil {
		log.Error().Err(err).Msg("configuring the pkgpanda process")
		return 2
	}
	if code := serve(rt, p, sock, stdout, log.With().Str("tool", cfg.Tool.Path).Logger()); code != 0 {
		return code
	}
	sig := <-sigs
	log.Info().Str("signal", sig.String()).Msg("draining")
	return drain(rt, p, o.drainTimeout, log)
}

// newRuntime configures the libprocess runtime from the LIBPROCESS_*
// environment and the flags. With reads authenticated, the runtime's
// read-only endpoints authenticate as Mesos' do under
// --authenticate_http_readonly (libprocess.Config.ReadonlyRealm), with
// the process' credentials and the ACL's read permission.
func newRuntime(o *options, cfg *pkgpanda.Config, lookup func(string) (string, bool), base zerolog.Logger) (*libprocess.Runtime, error) {
	rcfg := libprocess.DefaultConfig()
	if err := rcfg.ApplyEnv(lookup); err != nil {
		return nil, fmt.Errorf("LIBPROCESS_* environment: %w", err)
	}
	if o.maxMessage < 0 {
		return nil, errors.New("--max-message-size must not be negative")
	}
	if o.maxMessage > 0 {
		rcfg.MaxMessageSize = o.maxMessage
	}
	if o.firewall != "" {
		var err error
		if rcfg.DisabledEndpoints, err = firewallRules(o.firewall); err != nil {
			return nil, fmt.Errorf("--firewall-rules: %w", err)
		}
	}
	rcfg.Logger = base.With().Str("component", "libprocess").Logger()
	rcfg.Delegate = o.delegate
	rcfg.AccessLog = o.accessLog
	rcfg.NoListener = !o.tcp
	if cfg.Authenticator != nil && !cfg.OpenReads {
		rcfg.ReadonlyRealm = o.realm
	}
	rt, err := libprocess.New(rcfg)
	if err != nil {
		return nil, err
	}
	if len(rcfg.DisabledEndpoints) > 0 {
		rcfg.Logger.Info().Strs("disabled_endpoints", rcfg.DisabledEndpoints).Msg("firewall enabled")
	}
	if rcfg.ReadonlyRealm != "" {
		rt.SetAuthenticator(rcfg.ReadonlyRealm, cfg.Authenticator)
		if acl := cfg.ACL; acl != nil {
			rt.SetAuthorizer(rcfg.ReadonlyRealm, func(principal string, _ *libprocess.Request) bool { return acl.Allows(principal, false) })
		}
	}
	return rt, nil
}

// serve creates the unix socket (before the runtime serves anything: its
// umask must not reach a CLI child), starts the runtime and the process,
// serves the socket and prints the UPID line. It returns the exit code
// of a failure, 0 once serving.
func serve(rt *libprocess.Runtime, p *pkgpanda.Process, sock *unixSocket, stdout io.Writer, log zerolog.Logger) int {
	var sockLn net.Listener
	if sock != nil {
		ln, err := sock.listen()
		if err != nil {
			log.Error().Err(err).Msg("creating the unix socket")
			return 1
		}
		sockLn = ln
	}
	fail := func(what string, err error) int {
		log.Error().Err(err).Msg(what)
		if sockLn != nil {
			sockLn.Close() // removes the file
		}
		_ = rt.Shutdown(context.Background())
		return 1
	}
	if err := rt.Start(); err != nil {
		return fail("starting the runtime", err)
	}
	upid, err := p.Start(rt)
	if err != nil {
		return fail("starting the pkgpanda process", err)
	}
	if sockLn != nil {
		if err := rt.ServeHTTPOn(sockLn); err != nil {
			return fail("serving the unix socket", err)
		}
		log.Info().Str("socket", sock.path).Str("mode", fmt.Sprintf("%#o", sock.mode)).Str("group", sock.group).Msg("serving HTTP on the unix socket")
	}
	fmt.Fprintln(stdout, upid.String())
	log.Info().Str("upid", upid.String()).Str("addr", rt.Addr().HostPort()).Str("version", versionString()).Msg("pkgpanda serving")
	return 0
}

// drain stops the process (running mutations finish within timeout) and
// the runtime, and returns the exit code: 0, or 1 when the drain was cut
// short.
func drain(rt *libprocess.Runtime, p *pkgpanda.Process, timeout time.Duration, log zerolog.Logger) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	code := 0
	if err := p.Drain(ctx); err != nil {
		log.Warn().Err(err).Msg("drain cut short; running mutations may be interrupted")
		code = 1
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := rt.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("runtime shutdown cut short")
	}
	log.Info().Int("exit", code).Msg("stopped")
	return code
}

// checkExposure refuses a configuration that would serve mutations on
// the TCP port to callers without credentials, unless the operator asked
// for exactly that by name, and one that would serve nothing.
func checkExposure(o *options, authenticated bool) error {
	switch {
	case !o.tcp && o.unixSocket == "":
		return errors.New("--tcp=false needs --unix-socket PATH: nothing would be served")
	case o.tcp && !authenticated && !o.insecureOpen:
		return errors.New("refusing to serve the TCP port (LIBPROCESS_IP:LIBPROCESS_PORT) without authentication: " +
			"anyone who reaches it could add, activate and remove packages. Give --http-credentials FILE " +
			`(Mesos credentials JSON: {"credentials":[{"principal":"ops","secret":"..."}]}) or --jwt-secret-key FILE; ` +
			"or serve only a unix socket (--tcp=false --unix-socket PATH); " +
			"or, to run open anyway, --insecure-allow-unauthenticated-mutations")
	case o.insecureOpen && authenticated:
		return errors.New("--insecure-allow-unauthenticated-mutations contradicts --http-credentials/--jwt-secret-key: give one or the other")
	}
	return nil
}

// authenticator builds the HTTP authenticator the flags ask for, or nil.
func authenticator(o *options) (libprocess.Authenticator, error) {
	switch {
	case o.credentials != "" && o.jwtSecret != "":
		return nil, errors.New("--http-credentials and --jwt-secret-key are exclusive")
	case o.credentials != "":
		b, err := os.ReadFile(o.credentials)
		if err != nil {
			return nil, fmt.Errorf("reading --http-credentials: %w", err)
		}
		var f struct {
			Credentials []struct {
				Principal string `json:"principal"`
				Secret    string `json:"secret"`
			} `json:"credentials"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("parsing --http-credentials %s: %w", o.credentials, err)
		}
		creds := map[string]string{}
		for _, c := range f.Credentials {
			if c.Principal == "" {
				return nil, fmt.Errorf("--http-credentials %s: a credential has no principal", o.credentials)
			}
			creds[c.Principal] = c.Secret
		}
		if len(creds) == 0 {
			return nil, fmt.Errorf("--http-credentials %s: no credentials", o.credentials)
		}
		return httpauth.NewBasic(creds), nil
	case o.jwtSecret != "":
		b, err := os.ReadFile(o.jwtSecret)
		if err != nil {
			return nil, fmt.Errorf("reading --jwt-secret-key: %w", err)
		}
		key := []byte(strings.TrimRight(string(b), "\r\n"))
		if len(key) == 0 {
			return nil, fmt.Errorf("--jwt-secret-key %s is empty", o.jwtSecret)
		}
		return httpauth.NewJWT(key), nil
	}
	return nil, nil
}
