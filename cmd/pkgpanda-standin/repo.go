package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The id grammar of pkgpanda/__init__.py.
const (
	nameRegex     = `^[a-zA-Z0-9@_+][a-zA-Z0-9@._+\-]*$`
	versionRegex  = `^[a-zA-Z0-9@_+:.]+$`
	usernameRegex = `^dcos_[a-z0-9_]+$`
)

var (
	nameRE     = regexp.MustCompile(nameRegex)
	versionRE  = regexp.MustCompile(versionRegex)
	usernameRE = regexp.MustCompile(usernameRegex)
)

// pyMatch is Python's re.match for a pattern anchored with ^…$, where $
// also matches just before a final newline.
func pyMatch(re *regexp.Regexp, s string) bool {
	return re.MatchString(s) || (strings.HasSuffix(s, "\n") && re.MatchString(s[:len(s)-1]))
}

// packageID is a parsed id (PackageId).
type packageID struct{ name, version string }

func (p packageID) String() string { return p.name + "--" + p.version }

// parseID validates id as PackageId does, with its messages.
func parseID(id string) (packageID, error) {
	parts := strings.Split(id, "--")
	if len(parts) != 2 {
		return packageID{}, validationf("Invalid package id %s. Package ids may only contain one '--' which seperates the name and version", id)
	}
	if !pyMatch(nameRE, parts[0]) {
		return packageID{}, validationf("Invalid package name %s. Must match the regex %s", parts[0], nameRegex)
	}
	if !pyMatch(versionRE, parts[1]) {
		return packageID{}, validationf("Invalid package version %s. Must match the regex %s", parts[1], versionRegex)
	}
	return packageID{parts[0], parts[1]}, nil
}

// isID is PackageId.is_id: exactly one "--".
func isID(s string) bool { return strings.Count(s, "--") == 1 }

// pathExists is os.path.exists: the path resolves (links followed).
func pathExists(p string) bool { _, err := os.Stat(p); return err == nil }

// exists reports whether anything, a dangling link included, is at p.
func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func (c *config) dispatch() (int, error) {
	switch c.sub {
	case "list":
		return 0, c.printList()
	case "active":
		ids, err := c.active()
		if err != nil {
			return 1, err
		}
		for _, id := range ids {
			fmt.Fprintln(c.stdout, id)
		}
		return 0, nil
	case "add":
		return 0, c.add(c.args[0])
	case "fetch":
		for _, id := range c.args {
			if err := c.fetch(id); err != nil {
				return 1, err
			}
		}
		return 0, nil
	case "remove":
		for _, id := range c.args {
			if err := c.remove(id); err != nil {
				return 1, err
			}
		}
		return 0, nil
	case "activate":
		return 0, c.activateIDs(c.args)
	case "swap":
		return 0, c.swap(c.args[0])
	case "check":
		return c.check()
	case "setup", "uninstall":
		return 1, fmt.Errorf("%s is not supported by the pkgpanda stand-in", c.sub)
	}
	return 1, errUsage
}

// listRepo returns the repository entries whose names hold exactly one
// "--" (Repository.list), sorted.
func (c *config) listRepo() ([]string, error) {
	if !pathExists(c.repository) {
		return nil, nil
	}
	ents, err := os.ReadDir(c.repository)
	if err != nil {
		return nil, pyOSError(err)
	}
	var ids []string
	for _, e := range ents {
		if isID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// printList is print_repo_list: every id is parsed first (a bad one fails
// the whole list), then consecutive ids of one name are grouped.
func (c *config) printList() error {
	ids, err := c.listRepo()
	if err != nil {
		return err
	}
	parsed := make([]packageID, len(ids))
	for i, id := range ids {
		if parsed[i], err = parseID(id); err != nil {
			return err
		}
	}
	var b strings.Builder
	for i := 0; i < len(parsed); {
		j := i
		for j < len(parsed) && parsed[j].name == parsed[i].name {
			j++
		}
		if j-i == 1 {
			b.WriteString(parsed[i].String() + "\n")
		} else {
			b.WriteString(parsed[i].name + ":\n")
			for _, p := range parsed[i:j] {
				b.WriteString("  " + p.version + "\n")
			}
		}
		i = j
	}
	_, err = io.WriteString(c.stdout, b.String())
	return err
}

func (c *config) pkgPath(id string) string { return filepath.Join(c.repository, id) }

// pkg is a loaded package (Package).
type pkg struct {
	id   packageID
	path string
	info jvalue
}

// load is Repository.load: a valid id, an existing folder, and a
// pkginfo.json holding a JSON object.
func (c *config) load(id string) (*pkg, error) {
	pid, err := parseID(id)
	if err != nil {
		return nil, err
	}
	path := c.pkgPath(id)
	if !pathExists(path) {
		return nil, &packageError{id}
	}
	file := filepath.Join(path, "pkginfo.json")
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, &packageError{fmt.Sprintf("No / unreadable pkginfo.json in %s: %s", id, errnoText(err))}
	}
	v, err := parseJSON(b)
	if err != nil {
		return nil, fmt.Errorf("Invalid JSON in %s: %v", file, err)
	}
	if v.kind != jObject {
		return nil, &packageError{fmt.Sprintf("Usage should be a dictionary, not a %s", v.typeName())}
	}
	return &pkg{id: pid, path: path, info: v}, nil
}

func (c *config) activeDir() string { return filepath.Join(c.root, "active") }

// active returns the sorted active ids: the basenames of the targets of
// the links in <root>/active (Install.get_active).
func (c *config) active() ([]string, error) {
	dir := c.activeDir()
	if !pathExists(dir) {
		if pathExists(dir+".old") || pathExists(dir+".new") {
			return nil, fmt.Errorf("Broken past deploy. See %s.new for what the (potentially incomplete) new state should be and optionally %s.old if it exists for the complete previous state.", dir, dir)
		}
		return nil, fmt.Errorf("Install directory %s has no active folder. Has it been bootstrapped?", c.root)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, pyOSError(err)
	}
	seen := map[string]bool{}
	ids := []string{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			l, lerr := os.Readlink(p)
			if lerr != nil {
				return nil, pyOSError(err)
			}
			target = l
		}
		if id := filepath.Base(target); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// addWith is Repository.add: nothing if the package is there already
// (printing the CLI's note), otherwise fill `<id>_tmp` and rename it into
// place.
func (c *config) addWith(id string, fill func(tmp string) error) error {
	if _, err := parseID(id); err != nil {
		return err
	}
	if pathExists(c.pkgPath(id)) {
		fmt.Fprintln(c.stdout, "Package already added.")
		return nil
	}
	tmp := c.pkgPath(id) + "_tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return errors.New(calledProcessError([]string{"rm", "-rf", tmp}, 1))
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.pkgPath(id)); err != nil {
		return pyOSError(err)
	}
	return nil
}

// add is add_package_file: the id comes from the file name.
func (c *config) add(file string) error {
	const suffix = ".tar.xz"
	name := file[strings.LastIndexByte(file, '/')+1:]
	id, ok := strings.CutSuffix(name, suffix)
	if !ok {
		return validationf("ERROR: Can only add package tarballs which have names like {pkg-id}%s", suffix)
	}
	if _, err := parseID(id); err != nil {
		return err
	}
	return c.addWith(id, func(tmp string) error { return extractTarball(file, tmp) })
}

// fetchError is pkgpanda's FetchError.
type fetchError struct {
	url, out string
	err      error
}

func (e *fetchError) Error() string {
	return fmt.Sprintf("Problem fetching %s to %s because of %v.", e.url, e.out, e.err)
}

// fetch is fetch_package.
func (c *config) fetch(id string) error {
	fmt.Fprintf(c.stdout, "\rFetching: %s", id)
	defer fmt.Fprint(c.stdout, "\n")
	err := c.addWith(id, func(tmp string) error { return c.fetchInto(id, tmp) })
	var fe *fetchError
	if errors.As(err, &fe) {
		return fmt.Errorf("Unable to fetch package %s: %v", id, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\rFetched: %s", id)
	return nil
}

// fetchInto is requests_fetcher: download
// `<url>/packages/<name>/<id>.tar.xz` to a temporary file, then extract
// it into target.
func (c *config) fetchInto(id, target string) error {
	pid, err := parseID(id)
	if err != nil {
		return err
	}
	src := strings.TrimRight(c.repoURL, "/") + "/packages/" + pid.name + "/" + id + ".tar.xz"
	tmp, err := os.CreateTemp("", "tmp*.tar.xz")
	if err != nil {
		return pyOSError(err)
	}
	defer os.Remove(tmp.Name())
	err = download(tmp, src)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = pyOSError(cerr)
	}
	if err != nil {
		return &fetchError{url: strings.TrimSpace(src), out: tmp.Name(), err: err}
	}
	return extractTarball(tmp.Name(), target)
}

// download is pkgpanda.util.download: a file:// URL is copied (a relative
// path is taken from the working directory), http(s) is fetched, anything
// else fails as requests does.
func download(out *os.File, raw string) error {
	raw = strings.TrimSpace(raw)
	if src, ok := strings.CutPrefix(raw, "file://"); ok {
		if !filepath.IsAbs(src) {
			wd, err := os.Getwd()
			if err != nil {
				return pyOSError(err)
			}
			src = strings.TrimRight(wd, "/") + "/" + src
		}
		in, err := os.Open(src)
		if err != nil {
			return pyOSError(err)
		}
		defer in.Close()
		if st, err := in.Stat(); err == nil && st.IsDir() {
			return fmt.Errorf("[Errno 21] Is a directory: %s", pyRepr(src))
		}
		if _, err := io.Copy(out, in); err != nil {
			return pyOSError(err)
		}
		return nil
	}
	scheme, _, hasScheme := strings.Cut(raw, "://")
	switch {
	case !hasScheme:
		return fmt.Errorf("Invalid URL %s: No schema supplied. Perhaps you meant http://%s?", pyRepr(raw), raw)
	case !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https"):
		return fmt.Errorf("No connection adapters were found for %s", pyRepr(raw))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		side := "Client"
		if resp.StatusCode >= 500 {
			side = "Server"
		}
		return fmt.Errorf("%d %s Error: %s for url: %s", resp.StatusCode, side, strings.TrimPrefix(resp.Status, fmt.Sprintf("%d ", resp.StatusCode)), raw)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}

// remove is remove_package; a package not in the repository is skipped.
func (c *config) remove(id string) error {
	active, err := c.active()
	if err != nil {
		return err
	}
	for _, a := range active {
		if a == id {
			return validationf("Refusing to remove active package %s", id)
		}
	}
	fmt.Fprintf(c.stdout, "\rRemoving: %s", id)
	defer fmt.Fprint(c.stdout, "\n")
	if _, err := parseID(id); err != nil {
		return validationf("Invalid package id %s", id)
	}
	if !pathExists(c.pkgPath(id)) {
		return nil
	}
	if err := os.RemoveAll(c.pkgPath(id)); err != nil {
		return errors.New(calledProcessError([]string{"rm", "-rf", c.pkgPath(id)}, 1))
	}
	fmt.Fprintf(c.stdout, "\rRemoved: %s", id)
	return nil
}

// check is find_checks followed by list_checks or run_checks.
func (c *config) check() (int, error) {
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
		p, err := c.load(id)
		if err != nil {
			return 1, err
		}
		dir := p.path + "/check"
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return 1, pyOSError(err)
		}
		pc := pkgChecks{id: id, dir: dir}
		for _, e := range ents {
			if syscall.Access(filepath.Join(dir, e.Name()), 1 /* X_OK */) != nil {
				fmt.Fprintf(c.stderr, "WARNING: `%s` is not executable\n", e.Name())
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
			fmt.Fprintln(c.stdout, pc.id)
			for _, f := range pc.files {
				fmt.Fprintf(c.stdout, " - %s\n", f)
			}
		}
		return 0, nil
	}
	code := 0
	for _, pc := range all {
		for _, f := range pc.files {
			path := filepath.Join(pc.dir, f)
			cmd := exec.Command(path)
			cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
			err := cmd.Run()
			var ee *exec.ExitError
			switch {
			case err == nil:
			case errors.As(err, &ee):
				fmt.Fprintf(c.stderr, "Check failed: %s\n", f)
				code = 1
			default:
				var pe *fs.PathError
				if errors.As(err, &pe) {
					pe.Path = path
				}
				return 1, pyOSError(err)
			}
		}
	}
	return code, nil
}
