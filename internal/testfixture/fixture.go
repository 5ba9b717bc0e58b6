// Package testfixture finds and copies the pkgpanda fixture tree (a
// repository, an install root and a remote repository laid out as DC/OS's
// pkgpanda tests lay them out) for tests of the pkgpanda process, the
// stand-in CLI and the conformance suite. Only tests import it.
package testfixture

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Copy copies the pkgpanda fixture tree src (for example the
// shared `fixtures/pkgpanda/http`) into dst, creating dst if needed, so a
// test can mutate the copy. Every copied file and directory is writable by
// its owner (the fixture's are read-only); executable bits are kept.
// Symbolic links are copied as links. The fixture stores the active set as
// plain files `install/active/<name>` whose content is the link target
// (e.g. `../../packages/mesos--0.22.0`); in the copy each becomes a real
// relative symbolic link with that target.
func Copy(src, dst string) error {
	src = filepath.Clean(src)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case filepath.Dir(rel) == filepath.Join("install", "active") && d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			link := strings.TrimSpace(string(b))
			if link == "" || strings.ContainsAny(link, "\n\x00") {
				return fmt.Errorf("%s: not a link target: %q", path, b)
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(path, target, info.Mode().Perm()|0o600)
		}
		return fmt.Errorf("%s: unsupported file type %v", path, d.Type())
	})
	if err != nil {
		return fmt.Errorf("copying fixture %s to %s: %w", src, dst, err)
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm) // undo the umask
}

// Env names an environment variable that, when set, overrides where
// Find looks: its value is the fixture directory itself.
const Env = "PKGPANDA_FIXTURE"

// RepoCopy is where the repository keeps its own copy of the shared
// fixture, relative to the module root, so tests run where the shared
// folder is not beside the checkout (a fresh CI clone).
const RepoCopy = "processes/pkgpanda/testdata/fixture/http"

// Find returns the pkgpanda `http` fixture directory: the value of
// $PKGPANDA_FIXTURE if set; otherwise the first
// `shared/fixtures/pkgpanda/http` found in the working directory or one of
// its parents (the project's checkout sits beside `shared/`); otherwise the
// repository's own copy (RepoCopy) below the module root.
func Find() (string, error) {
	if d := os.Getenv(Env); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for _, rel := range []string{filepath.Join("shared", "fixtures", "pkgpanda", "http"), filepath.FromSlash(RepoCopy)} {
		for dir := wd; ; {
			c := filepath.Join(dir, rel)
			if st, err := os.Stat(c); err == nil && st.IsDir() {
				return c, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("pkgpanda fixture not found: neither shared/fixtures/pkgpanda/http nor %s above %s (set %s)", RepoCopy, wd, Env)
}

// Build compiles the project's command cmd/<name> (for example
// "pkgpanda-standin" or "pkgpandad") into dir without cgo, as `make build`
// does, with extra linker flags if given, and returns the binary's path.
func Build(dir, name string, ldflags ...string) (string, error) {
	out := filepath.Join(dir, name)
	args := []string{"build"}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	args = append(args, "-o", out, "github.com/procpanda/procpanda/cmd/"+name)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", name, err, b)
	}
	return out, nil
}
