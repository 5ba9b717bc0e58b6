// Command pkgpanda-standin implements the pkgpanda command-line ABI (the
// docs/pkgpanda-cli.md §2–§5 and §7) over the same on-disk layout,
// doing what DC/OS's `pkgpanda` (pkgpanda/cli.py, actions.py, __init__.py)
// does, with the same output and error texts, except that it never manages
// users or sysctl and never touches the machine's systemd. Tests and `make
// run` use it where the real DC/OS tool is not installed.
//
// Usage:
//
//	pkgpanda-standin list [options]
//	pkgpanda-standin active [options]
//	pkgpanda-standin add <package-tarball> [options]
//	pkgpanda-standin fetch --repository-url=<url> <id>... [options]
//	pkgpanda-standin remove <id>... [options]
//	pkgpanda-standin activate <id>... [options]
//	pkgpanda-standin swap <package-id> [options]
//	pkgpanda-standin check [--list] [options]
//	pkgpanda-standin setup|uninstall [options]   (refused: exit 1)
//	pkgpanda-standin demo-init DIR
//
// Global options (anywhere on the line, as the real tool's docopt reads
// them: `--opt=value` or `--opt value`, a long option by any unique
// prefix, `--` ending the options; -h or --help prints the usage on
// stdout): --root=DIR
// (default /opt/mesosphere), --repository=DIR (default
// /opt/mesosphere/packages), --config-dir=DIR (default /etc/mesosphere),
// --state-dir-root=DIR (default /var/lib/dcos), --rooted-systemd,
// --no-systemd, --no-block-systemd, --silent.
//
// Behaviour, as in the real tool: success exits 0; a failure exits 1 with
// a last stderr line `Validation Error: …`, `Package Error: …` or `ERROR:
// …`; a usage error prints the usage text on stderr and exits 1.
//
//   - A package is a folder `<repository>/<id>/` whose pkginfo.json holds
//     a JSON object. `list` lists every repository entry whose name holds
//     exactly one `--`, and fails with the id grammar's Validation Error if
//     one of them is not a valid id.
//   - `add` and `fetch` unpack the tarball into `<id>_tmp` and rename it
//     into place. Extraction is what `tar -xf` does (xz, gzip, bzip2 or no
//     compression, sniffed; modes kept) but refuses anything that could
//     write or point outside the package folder; see extractStream. A
//     refused or broken tarball fails the way a failed tar does in the real
//     tool (`ERROR: Command '['tar', …]' returned non-zero exit status 2.`)
//     and leaves nothing behind. A relative `file://` repository URL is
//     resolved against the working directory.
//   - `activate` and `swap` validate the set first (the real
//     validate_compatible: one package per name, requires met, no
//     environment variable twice or reserved, no conflicting sysctl; the
//     package `username` must match the DC/OS pattern) and then build the
//     whole install exactly as the real tool orders it: `<root>/bin`,
//     `etc`, `include`, `lib` and the unit folder (role folders
//     `<dir>_<role>` from `<config-dir>/roles` included), `active`,
//     `environment`, `environment.export`, `active.buildinfo.full.json`
//     and `etc/dcos-service-configuration.json`, each built as `.new` and
//     swapped in with the previous one kept as `.old`, unit files copied
//     beside the unit folder, and `<state-dir-root>/<name>` created for
//     packages with a true `state_directory`. When `<root>/active` is
//     missing while `.new` or `.old` exists, every command that reads the
//     active set fails with `ERROR: Broken past deploy…`.
//   - The unit folder is `<root>/dcos.target.wants` with --rooted-systemd.
//     Without it the real tool uses /etc/systemd/system/dcos.target.wants;
//     the stand-in refuses to activate then, unless
//     PKGPANDA_STANDIN_SYSTEMD_DIR names a directory to use in place of
//     /etc/systemd/system.
//   - Unless --no-systemd is given, activation runs the systemctl calls the
//     real tool makes (`stop <units>` before the swap, then
//     `daemon-reload`, `enable dcos.target --no-reload`, `start
//     dcos.target`; --no-block-systemd adds `--no-block` to stop and
//     start) with the program named by PKGPANDA_STANDIN_SYSTEMCTL (default
//     `systemctl` from PATH). Tests point it at a recorder.
//   - Users are not created or checked and state folders are not chowned;
//     sysctl values are only written to dcos-service-configuration.json.
//   - The warnings the real tool logs (`Do not stop services`, …) go to
//     stderr unless --silent is given, as Python's logging does there.
//   - Checks are the files of `<repository>/<id>/check/` of each active
//     package that are executable (access(2) X_OK), run in name order; a
//     failing one prints `Check failed: <name>` on stderr; others are
//     skipped with a `WARNING:` line on stderr.
//
// Where the stand-in knowingly differs from the real tool:
//
//   - GNU tar, as the real tool runs it (root), extracts absolute symbolic
//     links, links that point outside the package, fifos, devices, sparse
//     files and setuid/setgid bits; the stand-in refuses the first five and
//     drops the last (see extractStream).
//   - The real tool walks the packages of a set in Python set order
//     (arbitrary); the stand-in uses the order of the command line (for
//     `swap`, the sorted active set with the package replaced), so the
//     environment files and the first conflict reported are deterministic.
//   - HTTP downloads are not retried.
//
// `demo-init DIR` creates (idempotently) a small demo install under DIR
// and prints the global options that point the CLI at it, one per line.
//
// Environment:
//
//   - PKGPANDA_STANDIN_TRACE=<file>: each run appends the line
//     `start <pid> <subcommand> <unixnano>` when it starts and
//     `end <pid> <subcommand> <unixnano>` when it ends, each with a single
//     O_APPEND write, so overlapping runs are visible in the file.
//   - PKGPANDA_STANDIN_DELAY=<duration> (Go syntax, e.g. 200ms): each run
//     sleeps that long between its start and end lines, so that overlap,
//     if any, would be observed.
//   - PKGPANDA_STANDIN_COST=<duration> (Go syntax, e.g. 300ms): every run,
//     demo-init and usage errors included, sleeps that long before doing
//     anything else (before its trace start line), as the real CLI spends
//     its Python start-up; for benchmarks of callers.
//   - PKGPANDA_STANDIN_SYSTEMCTL=<program>: what runs the systemctl calls
//     (default `systemctl`).
//   - PKGPANDA_STANDIN_SYSTEMD_DIR=<dir>: stands for /etc/systemd/system
//     when --rooted-systemd is not given.
//
// A malformed duration in DELAY or COST is ignored.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// Environment variables of the hooks.
const (
	traceEnv      = "PKGPANDA_STANDIN_TRACE"
	delayEnv      = "PKGPANDA_STANDIN_DELAY"
	costEnv       = "PKGPANDA_STANDIN_COST"
	systemctlEnv  = "PKGPANDA_STANDIN_SYSTEMCTL"
	systemdDirEnv = "PKGPANDA_STANDIN_SYSTEMD_DIR"
)

const usage = `Panda package management (stand-in)

Usage:
  pkgpanda activate <id>... [options]
  pkgpanda swap <package-id> [options]
  pkgpanda active [options]
  pkgpanda fetch --repository-url=<url> <id>... [options]
  pkgpanda add <package-tarball> [options]
  pkgpanda list [options]
  pkgpanda remove <id>... [options]
  pkgpanda setup [options]
  pkgpanda uninstall [options]
  pkgpanda check [--list] [options]
  pkgpanda demo-init <dir>

Options:
    --config-dir=<conf-dir>     Machine configuration [default: /etc/mesosphere]
    --no-systemd                Don't try starting/stopping systemd services
    --no-block-systemd          Don't block waiting for systemd services to come up.
    --root=<root>               Install root [default: /opt/mesosphere]
    --repository=<repository>   Local package repository [default: /opt/mesosphere/packages]
    --state-dir-root=<dir>      Package state root [default: /var/lib/dcos]
    --rooted-systemd            Use $ROOT/dcos.target.wants for systemd management
    --silent                    Do not log anything
`

// Error kinds, printed with their CLI prefixes (pkgpanda.exceptions).
type validationError struct{ msg string }
type packageError struct{ msg string }

func (e *validationError) Error() string { return e.msg }
func (e *packageError) Error() string    { return e.msg }

func validationf(format string, a ...any) error {
	return &validationError{fmt.Sprintf(format, a...)}
}

// errUsage asks for the usage text.
var errUsage = errors.New("usage")

// config is a parsed command line and the environment it runs in.
type config struct {
	sub           string
	args          []string
	root          string
	repository    string
	configDir     string
	stateDir      string
	repoURL       string
	hasRepoURL    bool
	list          bool
	rootedSystemd bool
	noSystemd     bool
	noBlock       bool
	silent        bool

	systemctl  string // program run for systemctl calls
	systemdDir string // stands for /etc/systemd/system ("" = refuse)
	stdout     io.Writer
	stderr     io.Writer
}

func main() {
	syscall.Umask(0o022)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// sleepEnv sleeps for the duration in the environment variable name, if
// it holds a valid one.
func sleepEnv(name string) {
	if d := os.Getenv(name); d != "" {
		if dur, err := time.ParseDuration(d); err == nil && dur > 0 {
			time.Sleep(dur)
		}
	}
}

// run executes one command line and returns the exit status.
func run(argv []string, stdout, stderr io.Writer) int {
	sleepEnv(costEnv)
	if len(argv) >= 1 && argv[0] == "demo-init" {
		if len(argv) != 2 {
			fmt.Fprint(stderr, usage)
			return 1
		}
		if err := demoInit(argv[1], stdout); err != nil {
			fmt.Fprintf(stderr, "ERROR: %v\n", err)
			return 1
		}
		return 0
	}
	c, err := parseArgs(argv)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		if msg := err.Error(); msg != errUsage.Error() {
			fmt.Fprintln(stderr, msg)
		}
		fmt.Fprint(stderr, usage)
		return 1
	}
	c.stdout, c.stderr = stdout, stderr
	c.systemctl = os.Getenv(systemctlEnv)
	if c.systemctl == "" {
		c.systemctl = "systemctl"
	}
	c.systemdDir = os.Getenv(systemdDirEnv)
	done := trace(c.sub)
	defer done()
	sleepEnv(delayEnv)
	code, err := c.dispatch()
	if err != nil {
		printError(stderr, err)
		return 1
	}
	return code
}

// printError prints err as the real CLI's main() does: a tar failure's
// diagnostics first, then one line with the prefix of its kind.
func printError(stderr io.Writer, err error) {
	var te *tarError
	if errors.As(err, &te) {
		for _, l := range te.diag {
			fmt.Fprintln(stderr, oneLine(l))
		}
	}
	var ve *validationError
	var pe *packageError
	switch {
	case errors.As(err, &ve):
		fmt.Fprintf(stderr, "Validation Error: %s\n", oneLine(ve.msg))
	case errors.As(err, &pe):
		fmt.Fprintf(stderr, "Package Error: %s\n", oneLine(pe.msg))
	default:
		fmt.Fprintf(stderr, "ERROR: %s\n", oneLine(err.Error()))
	}
}

// oneLine keeps a message on one line, so the error line stays the last.
func oneLine(s string) string { return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", " ") }

// warn prints a warning the real tool logs through Python's logging,
// which (unconfigured) writes WARNING records to stderr; --silent
// disables them.
func (c *config) warn(format string, a ...any) {
	if !c.silent {
		fmt.Fprintf(c.stderr, format+"\n", a...)
	}
}

// trace writes the start line of the trace hook and returns the function
// that writes the end line.
func trace(sub string) func() {
	file := os.Getenv(traceEnv)
	if file == "" {
		return func() {}
	}
	write := func(what string) {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return
		}
		defer f.Close()
		f.Write([]byte(fmt.Sprintf("%s %d %s %d\n", what, os.Getpid(), sub, time.Now().UnixNano())))
	}
	write("start")
	return func() { write("end") }
}

// longOption is a long option the real tool's usage text declares, in its
// Options section or in a usage pattern (--repository-url, --list).
type longOption struct {
	name     string
	hasValue bool
}

// longOptions are the real tool's long options (pkgpanda/cli.py's usage
// text); nothing else is an option.
var longOptions = []longOption{
	{"--config-dir", true}, {"--no-systemd", false}, {"--no-block-systemd", false}, {"--root", true},
	{"--state-dir-root", true}, {"--repository", true}, {"--rooted-systemd", false}, {"--silent", false},
	{"--repository-url", true}, {"--list", false},
}

// errHelp asks for the usage text on stdout and exit 0 (-h, --help).
var errHelp = errors.New("help")

// splitArgv reads argv as docopt's parse_argv does (options_first off),
// as the real tool calls it (pkgpanda/cli.py:133):
// options anywhere; `--name=value` or `--name value` for an option that
// takes a value (the next word, unless there is none or it is `--`); a
// long option by its exact name or else by a unique prefix of one; `--`
// and every word after it, itself included, positional; `-` positional.
// It returns the positional words and the options by name. An option
// given twice, an unknown or ambiguous one, a value for a flag or none
// for an option are usage errors, as docopt's match leaves them
// unmatched; -h or --help anywhere asks for help, as docopt's extras do,
// unless the line cannot be read at all (an ambiguous prefix, a value
// missing or unwanted: docopt fails on those before its extras run).
func splitArgv(argv []string) (pos []string, opts map[string]string, err error) {
	opts = map[string]string{}
	var problem error
	help := false
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--":
			pos = append(pos, argv[i:]...)
			i = len(argv)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a, "=")
			var match []longOption
			for _, o := range longOptions {
				if o.name == name {
					match = []longOption{o}
					break
				}
				if strings.HasPrefix(o.name, name) {
					match = append(match, o)
				}
			}
			switch {
			case len(match) > 1:
				return nil, nil, fmt.Errorf("%s is not a unique prefix", name)
			case len(match) == 0:
				if name == "--help" {
					help = true
				} else if problem == nil {
					problem = fmt.Errorf("unknown option %s", name)
				}
				continue
			}
			o := match[0]
			switch {
			case !o.hasValue && hasVal:
				return nil, nil, fmt.Errorf("%s must not have an argument", o.name)
			case o.hasValue && !hasVal:
				if i+1 >= len(argv) || argv[i+1] == "--" {
					return nil, nil, fmt.Errorf("%s requires argument", o.name)
				}
				i++
				val = argv[i]
			}
			if _, dup := opts[o.name]; dup && problem == nil {
				problem = fmt.Errorf("%s given more than once", o.name)
			}
			opts[o.name] = val
		case strings.HasPrefix(a, "-") && a != "-":
			// No short option is declared: each letter is an unknown
			// one, -h asking for help.
			if strings.Contains(a[1:], "h") {
				help = true
			} else if problem == nil {
				problem = fmt.Errorf("unknown option %s", a)
			}
		default:
			pos = append(pos, a)
		}
	}
	if help {
		return nil, nil, errHelp
	}
	return pos, opts, problem
}

func parseArgs(argv []string) (*config, error) {
	pos, opts, err := splitArgv(argv)
	if err != nil {
		return nil, err
	}
	if len(pos) == 0 {
		return nil, errUsage
	}
	c := &config{
		sub:        pos[0],
		args:       pos[1:],
		root:       cli.DefaultRoot,
		repository: cli.DefaultRepository,
		configDir:  cli.DefaultConfigDir,
		stateDir:   cli.DefaultStateDirRoot,
	}
	for name, val := range opts {
		switch name {
		case "--root":
			c.root = val
		case "--repository":
			c.repository = val
		case "--config-dir":
			c.configDir = val
		case "--state-dir-root":
			c.stateDir = val
		case "--repository-url":
			if c.sub != "fetch" {
				return nil, fmt.Errorf("unexpected option %s", name)
			}
			c.repoURL, c.hasRepoURL = val, true
		case "--list":
			if c.sub != "check" {
				return nil, fmt.Errorf("unexpected option %s", name)
			}
			c.list = true
		case "--rooted-systemd":
			c.rootedSystemd = true
		case "--no-systemd":
			c.noSystemd = true
		case "--no-block-systemd":
			c.noBlock = true
		case "--silent":
			c.silent = true
		}
	}
	n := len(c.args)
	switch c.sub {
	case "list", "active", "setup", "uninstall", "check":
		if n != 0 {
			return nil, errUsage
		}
	case "add", "swap":
		if n != 1 {
			return nil, errUsage
		}
	case "remove", "activate":
		if n == 0 {
			return nil, errUsage
		}
	case "fetch":
		if n == 0 || !c.hasRepoURL {
			return nil, errUsage
		}
	default:
		return nil, errUsage
	}
	for _, p := range []*string{&c.root, &c.repository, &c.configDir, &c.stateDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	return c, nil
}
