package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestArgvOptionsAnywhere: the command line is read as docopt reads the
// real tool's usage (pkgpanda/cli.py main(), docopt's parse_argv and
// parse_long): options before, between or after the command and its
// arguments, `--opt=value` or `--opt value`, long options by any unique
// prefix, `--` ending the options.
func TestArgvOptionsAnywhere(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		argv             []string
		sub              string
		args             []string
		root, repository string
		url              string
		list, noSystemd  bool
	}{
		{argv: []string{"--repository=/r", "list"}, sub: "list", repository: "/r"},
		{argv: []string{"--root", "/x", "active"}, sub: "active", root: "/x"},
		{argv: []string{"remove", "--root=/x", "a--1", "--no-systemd", "b--2"}, sub: "remove", args: []string{"a--1", "b--2"}, root: "/x", noSystemd: true},
		{argv: []string{"--no-s", "check", "--li"}, sub: "check", list: true, noSystemd: true},
		{argv: []string{"--repository-u=file:///r", "fetch", "a--1"}, sub: "fetch", args: []string{"a--1"}, url: "file:///r"},
		{argv: []string{"fetch", "--repository-url", "file:///r", "a--1"}, sub: "fetch", args: []string{"a--1"}, url: "file:///r"},
		{argv: []string{"--root=", "list"}, sub: "list", root: cwd},
		{argv: []string{"activate", "--", "a--1"}, sub: "activate", args: []string{"--", "a--1"}},
		{argv: []string{"swap", "-"}, sub: "swap", args: []string{"-"}},
	} {
		c, err := parseArgs(tc.argv)
		if err != nil {
			t.Errorf("%q: %v", tc.argv, err)
			continue
		}
		want := func(got, def string, w string) string {
			if w == "" {
				return def
			}
			abs, _ := filepath.Abs(w)
			return abs
		}
		if c.sub != tc.sub || !slices.Equal(c.args, tc.args) || c.list != tc.list || c.noSystemd != tc.noSystemd ||
			c.repoURL != tc.url || c.root != want(c.root, "/opt/mesosphere", tc.root) ||
			c.repository != want(c.repository, "/opt/mesosphere/packages", tc.repository) {
			t.Errorf("%q: got sub %q args %q root %q repository %q url %q list %v no-systemd %v", tc.argv,
				c.sub, c.args, c.root, c.repository, c.repoURL, c.list, c.noSystemd)
		}
	}
}

// TestArgvUsageErrors: what docopt refuses is a usage error: an
// ambiguous prefix, an option given twice, a value for a flag or none
// for an option that takes one, an unknown option, an option the
// command's pattern lacks, `--` taking the place of a value.
func TestArgvUsageErrors(t *testing.T) {
	for _, argv := range [][]string{
		{"--repo=/r", "list"}, {"--r=/r", "list"},
		{"--root=/a", "list", "--root=/b"}, {"--silent", "list", "--silent"},
		{"--silent=1", "list"}, {"list", "--root"}, {"--root", "--", "list"},
		{"-x", "list"}, {"--frobnicate", "list"},
		{"--list", "active"}, {"--repository-url=file:///r", "list"},
		{"list", "--"}, {"--", "list"},
	} {
		if _, err := parseArgs(argv); err == nil {
			t.Errorf("%q: accepted", argv)
		}
	}
}

// TestArgvHelp: -h or --help anywhere prints the usage on stdout and
// exits 0, as docopt's help does.
func TestArgvHelp(t *testing.T) {
	for _, argv := range [][]string{{"--help"}, {"list", "-h"}, {"--root=/x", "--help", "remove"}} {
		var out, errb strings.Builder
		if code := run(argv, &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage:") || errb.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", argv, code, out.String(), errb.String())
		}
	}
	if _, err := parseArgs([]string{"--help"}); !errors.Is(err, errHelp) {
		t.Errorf("--help: %v, want errHelp", err)
	}
}

// FuzzParseArgs: any command line (words separated by NUL) is parsed
// without a panic, and one that is accepted means the same with its
// options written out in full before the command.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"list\x00--root=/x", "--repository\x00/r\x00remove\x00a--1\x00b--2", "--no-s\x00check\x00--li",
		"fetch\x00--repository-u=file:///r\x00a--1", "activate\x00--\x00--root=/x", "--he", "-h", "--root=\x00active",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		argv := strings.Split(line, "\x00")
		c, err := parseArgs(argv)
		if err != nil {
			return
		}
		var again []string
		for _, o := range []struct {
			name string
			val  string
			on   bool
		}{
			{"--root", c.root, true}, {"--repository", c.repository, true}, {"--config-dir", c.configDir, true},
			{"--state-dir-root", c.stateDir, true}, {"--repository-url", c.repoURL, c.hasRepoURL},
		} {
			if o.on {
				again = append(again, o.name+"="+o.val)
			}
		}
		for _, o := range []struct {
			name string
			on   bool
		}{{"--list", c.list}, {"--rooted-systemd", c.rootedSystemd}, {"--no-systemd", c.noSystemd}, {"--no-block-systemd", c.noBlock}, {"--silent", c.silent}} {
			if o.on {
				again = append(again, o.name)
			}
		}
		again = append(append(again, c.sub), c.args...)
		d, err := parseArgs(again)
		if err != nil {
			t.Fatalf("%q accepted as %+v, but %q refused: %v", argv, c, again, err)
		}
		if d.sub != c.sub || !slices.Equal(d.args, c.args) || d.root != c.root || d.repository != c.repository ||
			d.configDir != c.configDir || d.stateDir != c.stateDir || d.repoURL != c.repoURL || d.list != c.list ||
			d.rootedSystemd != c.rootedSystemd || d.noSystemd != c.noSystemd || d.noBlock != c.noBlock || d.silent != c.silent {
			t.Fatalf("%q read as %+v, %q as %+v", argv, c, again, d)
		}
	})
}
