package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Default values of the global options, as the CLI documents them.
const (
	DefaultRoot         = "/opt/mesosphere"
	DefaultRepository   = "/opt/mesosphere/packages"
	DefaultConfigDir    = "/etc/mesosphere"
	DefaultStateDirRoot = "/var/lib/dcos"
)

// Options are the CLI's global options. An empty string field is left out
// of the argv (so the CLI uses its default); a false bool is left out.
type Options struct {
	// Root is --root=DIR, the install root.
	Root string
	// Repository is --repository=DIR, the local package repository.
	Repository string
	// ConfigDir is --config-dir=DIR, the machine configuration.
	ConfigDir string
	// StateDirRoot is --state-dir-root=DIR, the package state root.
	StateDirRoot string
	// RootedSystemd is --rooted-systemd.
	RootedSystemd bool
	// NoSystemd is --no-systemd.
	NoSystemd bool
	// NoBlockSystemd is --no-block-systemd.
	NoBlockSystemd bool
	// Silent is --silent.
	Silent bool
}

// Args returns the options as CLI arguments, in a fixed order. Directory
// values are passed as one `--opt=value` argument each, so a value can
// never be taken for another option; a value that is empty after
// trimming or contains a NUL is an error.
func (o Options) Args() ([]string, error) {
	var args []string
	for _, kv := range []struct{ flag, val string }{
		{"--root", o.Root},
		{"--repository", o.Repository},
		{"--config-dir", o.ConfigDir},
		{"--state-dir-root", o.StateDirRoot},
	} {
		if kv.val == "" {
			continue
		}
		if strings.ContainsRune(kv.val, 0) || strings.TrimSpace(kv.val) == "" {
			return nil, fmt.Errorf("option %s: bad value %q", kv.flag, kv.val)
		}
		args = append(args, kv.flag+"="+kv.val)
	}
	for _, b := range []struct {
		flag string
		on   bool
	}{
		{"--rooted-systemd", o.RootedSystemd},
		{"--no-systemd", o.NoSystemd},
		{"--no-block-systemd", o.NoBlockSystemd},
		{"--silent", o.Silent},
	} {
		if b.on {
			args = append(args, b.flag)
		}
	}
	return args, nil
}

// Tool builds complete argvs for one pkgpanda executable and one set of
// global options. Every builder validates its ids and values again, so an
// argv never carries an unvalidated string, and puts the global options
// after the subcommand and its arguments.
type Tool struct {
	// Path is the pkgpanda executable (argv[0]).
	Path string
	// Options are appended to every command.
	Options Options
}

func (t Tool) build(sub []string) ([]string, error) {
	if t.Path == "" {
		return nil, errors.New("pkgpanda: empty executable path")
	}
	g, err := t.Options.Args()
	if err != nil {
		return nil, fmt.Errorf("pkgpanda %s: %w", sub[0], err)
	}
	argv := make([]string, 0, 1+len(sub)+len(g))
	argv = append(argv, t.Path)
	argv = append(argv, sub...)
	return append(argv, g...), nil
}

func idArgs(cmd string, ids []ID, atLeastOne bool) ([]string, error) {
	if atLeastOne && len(ids) == 0 {
		return nil, fmt.Errorf("pkgpanda %s: at least one package id is required", cmd)
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := id.Validate(); err != nil {
			return nil, fmt.Errorf("pkgpanda %s: %w", cmd, err)
		}
		out = append(out, id.String())
	}
	return out, nil
}

// List returns the argv of `pkgpanda list`.
func (t Tool) List() ([]string, error) { return t.build([]string{"list"}) }

// Active returns the argv of `pkgpanda active`.
func (t Tool) Active() ([]string, error) { return t.build([]string{"active"}) }

// Add returns the argv of `pkgpanda add <file>`. The file's base name must
// be `<id>.tar.xz` with a valid id (the CLI takes the id from it) and the
// path must be absolute, so it cannot start with '-'.
func (t Tool) Add(file string) ([]string, error) {
	if !filepath.IsAbs(file) || strings.ContainsRune(file, 0) {
		return nil, fmt.Errorf("pkgpanda add: package file %q must be an absolute path", file)
	}
	base := filepath.Base(file)
	id, ok := strings.CutSuffix(base, ".tar.xz")
	if !ok {
		return nil, fmt.Errorf("pkgpanda add: package file %q must be named <id>.tar.xz", file)
	}
	if err := ValidID(id); err != nil {
		return nil, fmt.Errorf("pkgpanda add: %w", err)
	}
	return t.build([]string{"add", file})
}

// Fetch returns the argv of `pkgpanda fetch --repository-url=URL <id>...`.
// The URL travels as part of one `--repository-url=` argument; it must be
// non-empty and free of whitespace and control characters.
func (t Tool) Fetch(repositoryURL string, ids ...ID) ([]string, error) {
	if repositoryURL == "" || strings.IndexFunc(repositoryURL, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return nil, fmt.Errorf("pkgpanda fetch: bad repository URL %q", repositoryURL)
	}
	args, err := idArgs("fetch", ids, true)
	if err != nil {
		return nil, err
	}
	return t.build(append([]string{"fetch", "--repository-url=" + repositoryURL}, args...))
}

// Remove returns the argv of `pkgpanda remove <id>...`.
func (t Tool) Remove(ids ...ID) ([]string, error) {
	args, err := idArgs("remove", ids, true)
	if err != nil {
		return nil, err
	}
	return t.build(append([]string{"remove"}, args...))
}

// Activate returns the argv of `pkgpanda activate <id>...`, which replaces
// the whole active set with ids. The CLI requires at least one id.
func (t Tool) Activate(ids ...ID) ([]string, error) {
	args, err := idArgs("activate", ids, true)
	if err != nil {
		return nil, err
	}
	return t.build(append([]string{"activate"}, args...))
}

// Swap returns the argv of `pkgpanda swap <id>`.
func (t Tool) Swap(id ID) ([]string, error) {
	args, err := idArgs("swap", []ID{id}, true)
	if err != nil {
		return nil, err
	}
	return t.build(append([]string{"swap"}, args...))
}

// Check returns the argv of `pkgpanda check`, with `--list` if list.
func (t Tool) Check(list bool) ([]string, error) {
	if list {
		return t.build([]string{"check", "--list"})
	}
	return t.build([]string{"check"})
}
