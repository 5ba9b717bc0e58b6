package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// demoPackages are the packages demo-init puts in the repository.
var demoPackages = []struct {
	id      string
	pkginfo map[string]any
}{
	{"mesos--1.11.0", map[string]any{"state_directory": true}},
	{"mesos--1.12.0", map[string]any{"state_directory": true}},
	{"marathon--1.10.0", map[string]any{"requires": []string{"mesos"}}},
	{"mesos-config--demo", map[string]any{"requires": []string{"mesos"}, "environment": map[string]string{"MESOS_DEMO": "1"}}},
}

// demoActive are the ids demo-init activates when it creates the active set.
var demoActive = []string{"marathon--1.10.0", "mesos--1.11.0", "mesos-config--demo"}

// demoInit creates, under dir, a repository with the demo packages, an
// active set, and the etc and state folders, then prints the global
// options that select it, one per line. Existing packages, and an existing
// active set (possibly changed since), are left as they are, so running it
// again is harmless.
func demoInit(dir string, stdout io.Writer) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	repo := filepath.Join(dir, "packages")
	root := filepath.Join(dir, "install")
	for _, d := range []string{repo, root, filepath.Join(dir, "etc"), filepath.Join(dir, "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("demo-init: %w", err)
		}
	}
	for _, p := range demoPackages {
		pkg := filepath.Join(repo, p.id)
		info := filepath.Join(pkg, "pkginfo.json")
		if exists(info) {
			continue
		}
		if err := os.MkdirAll(pkg, 0o755); err != nil {
			return fmt.Errorf("demo-init: %w", err)
		}
		b, err := json.MarshalIndent(p.pkginfo, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(info, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("demo-init: %w", err)
		}
	}
	c := &config{
		root: root, repository: repo, configDir: filepath.Join(dir, "etc"), stateDir: filepath.Join(dir, "state"),
		rootedSystemd: true, noSystemd: true, silent: true, stdout: io.Discard, stderr: io.Discard,
	}
	if !exists(c.activeDir()) && !exists(c.activeDir()+".new") && !exists(c.activeDir()+".old") {
		if err := c.activateIDs(demoActive); err != nil {
			return fmt.Errorf("demo-init: activating: %w", err)
		}
	}
	fmt.Fprintf(stdout, "--root=%s\n--repository=%s\n--config-dir=%s\n--state-dir-root=%s\n--rooted-systemd\n--no-systemd\n",
		root, repo, filepath.Join(dir, "etc"), filepath.Join(dir, "state"))
	return nil
}
