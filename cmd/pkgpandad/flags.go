package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/procpanda/procpanda/processes/pkgpanda"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// parseGlobalArgs parses pkgpanda global options as given on a command line
// (`--root=DIR`, `--repository=DIR`, `--config-dir=DIR`,
// `--state-dir-root=DIR`, `--rooted-systemd`, `--no-systemd`,
// `--no-block-systemd`, `--silent`) into cli.Options. Directory options
// need the `=value` form with a non-empty value; flags take no value.
// An unknown option, a repeated one or a bad value is an error, so that
// nothing unexpected ever reaches the tool's argv.
func parseGlobalArgs(args []string) (cli.Options, error) {
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

// parseRouteSetting parses a per-route setting "ROUTE=VALUE" as given to
// the --timeout and --queue flags: ROUTE must be one of pkgpanda.RouteNames.
// It returns the route and the value text.
func parseRouteSetting(s string) (route, value string, err error) {
	route, value, ok := strings.Cut(s, "=")
	if !ok || value == "" {
		return "", "", fmt.Errorf("route setting %q: want ROUTE=VALUE", s)
	}
	for _, n := range pkgpanda.RouteNames() {
		if n == route {
			return route, value, nil
		}
	}
	return "", "", fmt.Errorf("route setting %q: unknown route %q (routes: %s)", s, route, strings.Join(pkgpanda.RouteNames(), ", "))
}

// parseQueueLimit parses a queue bound: a positive decimal integer.
func parseQueueLimit(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("queue limit %q: want a positive integer", s)
	}
	return n, nil
}
