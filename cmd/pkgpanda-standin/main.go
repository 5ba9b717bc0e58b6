// Command pkgpanda-standin implements the pkgpanda command-line ABI (the
// project's pkgpanda CLI spec, §§2–5) over the same on-disk layout, without
// systemd, users or sysctl. Tests and `make run` use it where the real
// DC/OS tool is not installed.
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
// Global options (after the subcommand and its arguments): --root=DIR
// (default /opt/mesosphere), --repository=DIR (default
// /opt/mesosphere/packages), --config-dir=DIR (default /etc/mesosphere),
// --state-dir-root=DIR (default /var/lib/dcos), --rooted-systemd,
// --no-systemd, --no-block-systemd, --silent. The systemd options are
// accepted and have no effect: the stand-in never manages services.
//
// Behaviour, as in the real tool: success exits 0; a failure exits 1 with
// one stderr line `Validation Error: …`, `Package Error: …` or `ERROR: …`;
// a usage error prints the usage text on stderr and exits 1. A package is
// a folder `<repository>/<id>/` whose pkginfo.json holds a JSON object;
// anything else is a Package Error when the package is loaded. Activation
// links `<root>/active/<name>` to the package folder by building
// `<root>/active.new`, moving `<root>/active` to `<root>/active.old` and
// `active.new` into place (the `.old` copy stays). When `<root>/active` is
// missing while `.new` or `.old` exists, the activation was interrupted,
// and every command that reads the active set fails with `ERROR: Broken
// past deploy…`. Checks are the executable regular files in
// `<repository>/<id>/check/` of each active package, run in name order;
// non-executable files are skipped with a `WARNING:` line on stderr.
// Tarballs may be xz- or gzip-compressed whatever their name says (the
// compression is sniffed from the magic bytes).
//
// `demo-init DIR` creates (idempotently) a small demo install under DIR
// and prints the global options that point the CLI at it, one per line.
//
// Test hooks (for serialization tests of callers):
//
//   - PKGPANDA_STANDIN_TRACE=<file>: each run appends the line
//     `start <pid> <subcommand> <unixnano>` when it starts and
//     `end <pid> <subcommand> <unixnano>` when it ends, each with a single
//     O_APPEND write, so overlapping runs are visible in the file.
//   - PKGPANDA_STANDIN_DELAY=<duration> (Go syntax, e.g. 200ms): each run
//     sleeps that long between its start and end lines, so that overlap,
//     if any, would be observed.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// Environment variables of the test hooks.
const (
	traceEnv = "PKGPANDA_STANDIN_TRACE"
	delayEnv = "PKGPANDA_STANDIN_DELAY"
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
    --silent                    Accepted for compatibility
`

// Error kinds, printed with their CLI prefixes.
type validationError struct{ msg string }
type packageError struct{ msg string }

func (e *validationError) Error() string { return e.msg }
func (e *packageError) Error() string    { return e.msg }

// errUsage asks for the usage text.
var errUsage = errors.New("usage")

// config is a parsed command line.
type config struct {
	sub        string
	args       []string
	root       string
	repository string
	configDir  string
	stateDir   string
	repoURL    string
	hasRepoURL bool
	list       bool
}

func main() {
	syscall.Umask(0o022)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(argv []string, stdout, stderr io.Writer) int {
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
	if err != nil {
		if msg := err.Error(); msg != errUsage.Error() {
			fmt.Fprintln(stderr, msg)
		}
		fmt.Fprint(stderr, usage)
		return 1
	}
	done := trace(c.sub)
	defer done()
	if d := os.Getenv(delayEnv); d != "" {
		if dur, err := time.ParseDuration(d); err == nil {
			time.Sleep(dur)
		}
	}
	code, err := c.dispatch(stdout, stderr)
	if err != nil {
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
		return 1
	}
	return code
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ") }

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

func parseArgs(argv []string) (*config, error) {
	if len(argv) == 0 {
		return nil, errUsage
	}
	c := &config{
		sub:        argv[0],
		root:       cli.DefaultRoot,
		repository: cli.DefaultRepository,
		configDir:  cli.DefaultConfigDir,
		stateDir:   cli.DefaultStateDirRoot,
	}
	for _, a := range argv[1:] {
		if !strings.HasPrefix(a, "-") {
			c.args = append(c.args, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		switch name {
		case "--root", "--repository", "--config-dir", "--state-dir-root", "--repository-url":
			if !hasVal || val == "" {
				return nil, fmt.Errorf("%s requires a value", name)
			}
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
			}
		case "--rooted-systemd", "--no-systemd", "--no-block-systemd", "--silent", "--list":
			if hasVal {
				return nil, fmt.Errorf("%s takes no value", name)
			}
			if name == "--list" {
				if c.sub != "check" {
					return nil, fmt.Errorf("unexpected option %s", name)
				}
				c.list = true
			}
		default:
			return nil, fmt.Errorf("unknown option %s", a)
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

func (c *config) dispatch(stdout, stderr io.Writer) (int, error) {
	switch c.sub {
	case "list":
		ids, err := c.listRepo()
		if err != nil {
			return 1, err
		}
		out, err := cli.FormatList(ids)
		if err != nil {
			return 1, err
		}
		_, err = stdout.Write(out)
		return 0, err
	case "active":
		ids, err := c.active()
		if err != nil {
			return 1, err
		}
		for _, id := range ids {
			fmt.Fprintln(stdout, id)
		}
		return 0, nil
	case "add":
		return 0, c.add(c.args[0], stdout)
	case "fetch":
		for _, id := range c.args {
			if err := c.fetch(id, stdout); err != nil {
				return 1, err
			}
		}
		return 0, nil
	case "remove":
		for _, id := range c.args {
			if err := c.remove(id, stdout); err != nil {
				return 1, err
			}
		}
		return 0, nil
	case "activate":
		return 0, c.activate(c.args)
	case "swap":
		return 0, c.swap(c.args[0])
	case "check":
		return c.check(stdout, stderr)
	case "setup", "uninstall":
		return 1, fmt.Errorf("%s is not supported by the pkgpanda stand-in", c.sub)
	}
	return 1, errUsage
}

func validID(id string) (cli.ID, error) {
	p, err := cli.ParseID(id)
	if err != nil {
		return cli.ID{}, &validationError{fmt.Sprintf("Invalid package id %s. Package ids may only contain one '--' which separates a valid name and version", id)}
	}
	return p, nil
}

// listRepo returns the sorted ids of the repository's package folders.
func (c *config) listRepo() ([]string, error) {
	ents, err := os.ReadDir(c.repository)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading repository: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if cli.ValidID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func (c *config) pkgPath(id string) string { return filepath.Join(c.repository, id) }

// load validates and loads a package: its folder must exist and hold a
// pkginfo.json with a JSON object.
func (c *config) load(id string) (map[string]any, error) {
	if _, err := validID(id); err != nil {
		return nil, err
	}
	if _, err := os.Stat(c.pkgPath(id)); err != nil {
		return nil, &packageError{fmt.Sprintf("Package %s not found in the repository", id)}
	}
	b, err := os.ReadFile(filepath.Join(c.pkgPath(id), "pkginfo.json"))
	if err != nil {
		return nil, &packageError{fmt.Sprintf("No / unreadable pkginfo.json in %s: %v", id, errors.Unwrap(err))}
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, &packageError{fmt.Sprintf("Invalid pkginfo.json in %s: %v", id, err)}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &packageError{fmt.Sprintf("pkginfo.json of %s should be a JSON object, not %s", id, jsonKind(v))}
	}
	return m, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func (c *config) activeDir() string { return filepath.Join(c.root, "active") }

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// active returns the sorted active ids: the basenames of the targets of
// the links in <root>/active.
func (c *config) active() ([]string, error) {
	dir := c.activeDir()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if exists(dir+".old") || exists(dir+".new") {
			return nil, fmt.Errorf("Broken past deploy. See %s.new for what the (potentially incomplete) new state should be and optionally %s.old if it exists for the complete previous state.", dir, dir)
		}
		return nil, fmt.Errorf("Install directory %s has no active folder. Has it been bootstrapped?", c.root)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	ids := []string{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			l, lerr := os.Readlink(p)
			if lerr != nil {
				return nil, fmt.Errorf("reading active link %s: %w", p, err)
			}
			target = l
		}
		ids = append(ids, filepath.Base(target))
	}
	sort.Strings(ids)
	return ids, nil
}

// addWith puts a package into the repository: nothing if it is there
// already (printing the CLI's note), otherwise fill `<id>_tmp` with fill
// and rename it into place.
func (c *config) addWith(id string, stdout io.Writer, fill func(tmp string) error) error {
	if _, err := validID(id); err != nil {
		return err
	}
	if exists(c.pkgPath(id)) {
		fmt.Fprintln(stdout, "Package already added.")
		return nil
	}
	if err := os.MkdirAll(c.repository, 0o755); err != nil {
		return err
	}
	tmp := c.pkgPath(id) + "_tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return os.Rename(tmp, c.pkgPath(id))
}

func (c *config) add(file string, stdout io.Writer) error {
	base := filepath.Base(file)
	id, ok := strings.CutSuffix(base, ".tar.xz")
	if !ok {
		return &validationError{"ERROR: Can only add package tarballs which have names like {pkg-id}.tar.xz"}
	}
	return c.addWith(id, stdout, func(tmp string) error {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		return extractTarball(f, tmp)
	})
}

func (c *config) fetch(id string, stdout io.Writer) (err error) {
	fmt.Fprintf(stdout, "\rFetching: %s", id)
	defer fmt.Fprint(stdout, "\n")
	pid, err := validID(id)
	if err != nil {
		return err
	}
	err = c.addWith(id, stdout, func(tmp string) error {
		src := strings.TrimRight(c.repoURL, "/") + "/packages/" + pid.Name + "/" + id + ".tar.xz"
		body, err := open(src)
		if err != nil {
			return err
		}
		defer body.Close()
		return extractTarball(body, tmp)
	})
	if err != nil {
		var ve *validationError
		if errors.As(err, &ve) {
			return err
		}
		return fmt.Errorf("Unable to fetch package %s: %v", id, err)
	}
	fmt.Fprintf(stdout, "\rFetched: %s", id)
	return nil
}

// open opens a file:// or http(s):// URL for reading.
func open(raw string) (io.ReadCloser, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("file URL %s names a host", raw)
		}
		return os.Open(u.Path)
	case "http", "https":
		client := &http.Client{Timeout: 10 * time.Minute}
		resp, err := client.Get(raw)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", raw, resp.Status)
		}
		return resp.Body, nil
	}
	return nil, fmt.Errorf("unsupported URL scheme in %s", raw)
}

func (c *config) remove(id string, stdout io.Writer) error {
	active, err := c.active()
	if err != nil {
		return err
	}
	for _, a := range active {
		if a == id {
			return &validationError{"Refusing to remove active package " + id}
		}
	}
	fmt.Fprintf(stdout, "\rRemoving: %s", id)
	defer fmt.Fprint(stdout, "\n")
	if _, err := validID(id); err != nil {
		return &validationError{"Invalid package id " + id}
	}
	if !exists(c.pkgPath(id)) {
		return nil // not in the repository: skipped, as the CLI does
	}
	if err := os.RemoveAll(c.pkgPath(id)); err != nil {
		return fmt.Errorf("Error removing package %s: %v", id, err)
	}
	fmt.Fprintf(stdout, "\rRemoved: %s", id)
	return nil
}

// activate replaces the active set with ids.
func (c *config) activate(ids []string) error {
	byName := map[string]string{}
	for _, id := range ids {
		p, err := validID(id)
		if err != nil {
			return err
		}
		if _, err := c.load(id); err != nil {
			return err
		}
		if _, dup := byName[p.Name]; dup {
			return &validationError{fmt.Sprintf("Repeated name %s in set of packages %s", p.Name, strings.Join(ids, " "))}
		}
		byName[p.Name] = id
	}
	dir := c.activeDir()
	for _, p := range []string{dir + ".new", dir + ".old"} {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir+".new", 0o755); err != nil {
		return err
	}
	for name, id := range byName {
		if err := os.Symlink(c.pkgPath(id), filepath.Join(dir+".new", name)); err != nil {
			return err
		}
	}
	if exists(dir) {
		if err := os.Rename(dir, dir+".old"); err != nil {
			return err
		}
	}
	return os.Rename(dir+".new", dir)
}

func (c *config) swap(id string) error {
	p, err := validID(id)
	if err != nil {
		return err
	}
	active, err := c.active()
	if err != nil {
		return err
	}
	var next []string
	found := false
	for _, a := range active {
		ap, err := cli.ParseID(a)
		if err == nil && ap.Name == p.Name {
			found = true
			continue
		}
		next = append(next, a)
	}
	if !found {
		return &validationError{fmt.Sprintf("No package with name %s currently active to swap with.", p.Name)}
	}
	return c.activate(append(next, id))
}

// check lists or runs the checks of the active packages.
func (c *config) check(stdout, stderr io.Writer) (int, error) {
	active, err := c.active()
	if err != nil {
		return 1, err
	}
	type pkgChecks struct {
		id    string
		dir   string
		files []string
	}
	var all []pkgChecks
	for _, id := range active {
		if _, err := c.load(id); err != nil {
			return 1, err
		}
		dir := filepath.Join(c.pkgPath(id), "check")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		pc := pkgChecks{id: id, dir: dir}
		for _, e := range ents {
			info, err := os.Stat(filepath.Join(dir, e.Name()))
			if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
				fmt.Fprintf(stderr, "WARNING: `%s` is not executable\n", e.Name())
				continue
			}
			pc.files = append(pc.files, e.Name())
		}
		if len(pc.files) > 0 {
			all = append(all, pc)
		}
	}
	if c.list {
		for _, pc := range all {
			fmt.Fprintln(stdout, pc.id)
			for _, f := range pc.files {
				fmt.Fprintf(stdout, " - %s\n", f)
			}
		}
		return 0, nil
	}
	code := 0
	for _, pc := range all {
		for _, f := range pc.files {
			cmd := exec.Command(filepath.Join(pc.dir, f))
			cmd.Stdout, cmd.Stderr = stdout, stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(stdout, "Check failed: %s\n", f)
				code = 1
			}
		}
	}
	return code, nil
}
