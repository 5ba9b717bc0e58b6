package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// reservedEnvVars may not be set by packages.
var reservedEnvVars = []string{"LD_LIBRARY_PATH", "PATH"}

// reservedUnitNames may not be shipped as units.
var reservedUnitNames = []string{"dcos.target", "dcos-download.service", "dcos-setup.service"}

const (
	envHeader = "# Pkgpanda provided environment variables\n" +
		"LD_LIBRARY_PATH=%[1]s/lib\n" +
		"PATH=%[1]s/bin:/usr/bin:/bin:/sbin\n\n"
	envExportHeader = "# Pkgpanda provided environment variables\n" +
		"export LD_LIBRARY_PATH=%[1]s/lib\n" +
		"export PATH=\"%[1]s/bin:$PATH\"\n\n"
	serviceConfigFile = "dcos-service-configuration.json"
	newUnitSuffix     = ".unit.new"
)

// install is the layout of one install root (Install).
type install struct {
	c          *config
	root       string
	unitDir    string   // the dcos.target.wants folder
	baseUnits  string   // where unit files are copied: unitDir/..
	wellKnown  []string // bin, etc, include, lib, unitDir
	roles      []string // names in <config-dir>/roles
	activeName []string // absolute paths swapped on activation
}

// newInstall computes the layout, refusing the machine's systemd folder.
func (c *config) newInstall() (*install, error) {
	in := &install{c: c, root: c.root}
	switch {
	case c.rootedSystemd:
		in.unitDir = c.root + "/dcos.target.wants"
	case c.systemdDir != "":
		in.unitDir = filepath.Join(c.systemdDir, "dcos.target.wants")
	default:
		return nil, fmt.Errorf("the pkgpanda stand-in does not write /etc/systemd/system: give --rooted-systemd (or set %s)", systemdDirEnv)
	}
	in.baseUnits = filepath.Clean(filepath.Join(in.unitDir, ".."))
	in.wellKnown = []string{"bin", "etc", "include", "lib", in.unitDir}
	if ents, err := os.ReadDir(filepath.Join(c.configDir, "roles")); err == nil {
		for _, e := range ents {
			in.roles = append(in.roles, e.Name())
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, pyOSError(err)
	}
	for _, n := range append(append([]string{}, in.wellKnown...), "environment", "environment.export", "active", "active.buildinfo.full.json") {
		in.activeName = append(in.activeName, in.abs(n))
	}
	return in, nil
}

// abs is Install._make_abs.
func (in *install) abs(name string) string {
	if filepath.IsAbs(name) {
		return filepath.Clean(name)
	}
	return filepath.Join(in.root, name)
}

// activateIDs is activate_packages: load every package, activate them,
// then start dcos.target unless --no-systemd.
func (c *config) activateIDs(ids []string) error {
	pkgs := make([]*pkg, 0, len(ids))
	for _, id := range ids {
		p, err := c.load(id)
		if err != nil {
			return err
		}
		pkgs = append(pkgs, p)
	}
	in, err := c.newInstall()
	if err != nil {
		return err
	}
	if err := in.activate(pkgs); err != nil {
		return err
	}
	if c.noSystemd {
		return nil
	}
	noBlock := []string{}
	if c.noBlock {
		noBlock = []string{"--no-block"}
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", "dcos.target", "--no-reload"}, append([]string{"start", "dcos.target"}, noBlock...)} {
		if _, err := c.systemctlCall(args...); err != nil {
			return err
		}
	}
	return nil
}

// swap is swap_active_package.
func (c *config) swap(id string) error {
	active, err := c.active()
	if err != nil {
		return err
	}
	parsed := make([]packageID, 0, len(active))
	for _, a := range active {
		p, err := parseID(a)
		if err != nil {
			return err
		}
		parsed = append(parsed, p)
	}
	newID, err := parseID(id)
	if err != nil {
		return err
	}
	found := false
	var next []string
	for _, p := range parsed {
		if p.name == newID.name {
			found = true
			p = newID
		}
		next = append(next, p.String())
	}
	if !found {
		return validationf("No package with name %s currently active to swap with.", newID.name)
	}
	return c.activateIDs(next)
}

// systemctlCall runs one systemctl command as check_call does; the
// returned exit status is that of a failed command (0 when it could not
// be started). Messages name the command `systemctl` whatever program
// stands for it.
func (c *config) systemctlCall(args ...string) (int, error) {
	cmd := exec.Command(c.systemctl, args...)
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitCode(), errors.New(calledProcessError(append([]string{"systemctl"}, args...), ee.ExitCode()))
	}
	if errors.Is(err, exec.ErrNotFound) {
		return 0, errors.New("[Errno 2] No such file or directory: 'systemctl'")
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Path = "systemctl"
	}
	return 0, pyOSError(err)
}

// validateCompatible is validate_compatible: one package per name, no
// `group` without `username`, every requirement's name in the set, no
// environment variable reserved or set twice, no sysctl value set two
// ways. Packages are checked in the order given.
func validateCompatible(pkgs []*pkg) error {
	names := map[string]bool{}
	for _, p := range pkgs {
		if names[p.id.name] {
			ids := make([]string, len(pkgs))
			for i, q := range pkgs {
				ids[i] = q.id.String()
			}
			return validationf("Repeated name %s in set of packages %s", p.id.name, strings.Join(ids, " "))
		}
		user, hasUser := p.info.get("username")
		group, hasGroup := p.info.get("group")
		if (!hasUser || user.kind == jNull) && hasGroup && group.kind != jNull {
			return validationf("`group` cannot be used without `username`")
		}
		names[p.id.name] = true
	}
	environment := map[string]bool{}
	sysctl := map[string]string{}
	for _, p := range pkgs {
		reqs, err := pyList2(p.info, "requires")
		if err != nil {
			return err
		}
		for _, r := range reqs {
			name, variant, err := expandRequire(r)
			if err != nil {
				return err
			}
			if !names[name] {
				ids := make([]string, len(pkgs))
				for i, q := range pkgs {
					ids[i] = q.id.String()
				}
				return validationf("Package %s variant %s requires %s variant %s but that is not in the set of packages %s",
					p.id, p.variant(), name, variant, strings.Join(ids, ", "))
			}
		}
		env, err := items(p.info, "environment")
		if err != nil {
			return err
		}
		for i, k := range env.keys {
			if k == reservedEnvVars[0] || k == reservedEnvVars[1] {
				return validationf("%s are reserved environment vars and cannot be specified in packages. Present in package %s",
					strings.Join(reservedEnvVars, ", "), p.id)
			}
			if environment[k] {
				// The real message names the value, not the other package.
				return validationf("Repeated environment variable %s. In both packages %s and %s.", k, env.vals[i].str(), p.id)
			}
			environment[k] = true
		}
		services, err := items(p.info, "sysctl")
		if err != nil {
			return err
		}
		for i, service := range services.keys {
			settings, err := itemsOf(services.vals[i])
			if err != nil {
				return err
			}
			for j, k := range settings.keys {
				v := settings.vals[j].str()
				if old, ok := sysctl[k]; ok && old != v {
					return fmt.Errorf("Conflicting sysctl setting %s=%s present in the service %s", k, v, service)
				}
				sysctl[k] = v
			}
		}
	}
	return nil
}

// variant is Package.variant as Python prints it.
func (p *pkg) variant() string {
	v, ok := p.info.get("variant")
	if !ok {
		return "None"
	}
	return v.str()
}

// pyList2 is list(pkginfo.get(key, [])): a string gives its characters,
// an object its keys.
func pyList2(info jvalue, key string) ([]jvalue, error) {
	v, ok := info.get(key)
	if !ok {
		return nil, nil
	}
	switch v.kind {
	case jArray:
		return v.arr, nil
	case jString:
		var out []jvalue
		for _, r := range v.s {
			out = append(out, jvalue{kind: jString, s: string(r)})
		}
		return out, nil
	case jObject:
		var out []jvalue
		for _, k := range v.keys {
			out = append(out, jvalue{kind: jString, s: k})
		}
		return out, nil
	}
	return nil, fmt.Errorf("'%s' object is not iterable", v.typeName())
}

// items is pkginfo.get(key, {}) used with .items().
func items(info jvalue, key string) (jvalue, error) {
	v, ok := info.get(key)
	if !ok {
		return object(nil, nil), nil
	}
	return itemsOf(v)
}

func itemsOf(v jvalue) (jvalue, error) {
	if v.kind != jObject {
		return jvalue{}, fmt.Errorf("'%s' object has no attribute 'items'", v.typeName())
	}
	return v, nil
}

// expandRequire is expand_require.
func expandRequire(r jvalue) (name, variant string, err error) {
	variant = "None"
	switch r.kind {
	case jString:
		name = r.s
	case jObject:
		n, okN := r.get("name")
		v, okV := r.get("variant")
		if !okN || !okV {
			return "", "", validationf("When specifying a dependency in requires by dictionary to depend on a variant both the name of the package and the variant name must always be specified")
		}
		if n.kind != jString {
			return "", "", fmt.Errorf("expected string or bytes-like object")
		}
		name, variant = n.s, v.str()
	default:
		return "", "", errors.New("") // Python: a bare AssertionError
	}
	if isID(name) {
		// The real message lacks the spaces between its parts.
		return "", "", validationf("ERROR: Specifying a dependency on '%s', an exactpackage id isn't allowed. Dependencies may be specified bypackage name alone or package name + variant (to change thepackage variant).", name)
	}
	return name, variant, nil
}

// activate is Install.activate: validate, build every `.new`, then swap.
func (in *install) activate(pkgs []*pkg) error {
	if err := validateCompatible(pkgs); err != nil {
		return err
	}
	c := in.c
	newDirs := []string{}
	for _, d := range append(append([]string{}, in.wellKnown...), "active") {
		newDirs = append(newDirs, in.abs(d)+".new")
	}
	for _, n := range in.activeName {
		for _, p := range []string{n + ".new", n + ".old"} {
			if !pathExists(p) {
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				return pyOSError(err)
			}
		}
	}
	// Remove unit files staged for an activation that did not happen.
	ents, err := os.ReadDir(in.baseUnits)
	if err != nil {
		return pyOSError(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), newUnitSuffix) {
			if err := os.Remove(filepath.Join(in.baseUnits, e.Name())); err != nil {
				return pyOSError(err)
			}
		}
	}
	for _, d := range newDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return pyOSError(err)
		}
	}
	env := fmt.Sprintf(envHeader, in.root)
	envExport := fmt.Sprintf(envExportHeader, in.root)
	var biKeys []string
	var biVals []jvalue
	var sysKeys []string
	var sysVals []jvalue
	rolesRepr := pyList(in.roles)
	for _, p := range pkgs {
		for i, dir := range in.wellKnown {
			base := filepath.Base(dir)
			srcs := []string{filepath.Join(p.path, base)}
			for _, role := range in.roles {
				srcs = append(srcs, filepath.Join(p.path, base+"_"+role))
			}
			for _, src := range srcs {
				if st, err := os.Stat(src); err != nil || !st.IsDir() {
					continue
				}
				if err := symlinkTree(src, newDirs[i], rolesRepr); err != nil {
					return err
				}
			}
		}
		if err := os.Symlink(p.path, filepath.Join(in.abs("active.new"), p.id.name)); err != nil {
			return pyOSError(&linkErr{p.path, filepath.Join(in.abs("active.new"), p.id.name), err})
		}
		env += "# package: " + p.id.String() + "\n"
		envExport += "# package: " + p.id.String() + "\n"
		vars, _ := items(p.info, "environment")
		for i, k := range vars.keys {
			env += k + "=" + vars.vals[i].str() + "\n"
			envExport += "export " + k + "=" + vars.vals[i].str() + "\n"
		}
		env += "\n"
		envExport += "\n"

		bi := jvalue{kind: jNull}
		file := filepath.Join(p.path, "buildinfo.full.json")
		b, err := os.ReadFile(file)
		switch {
		case err == nil:
			if bi, err = parseJSON(b); err != nil {
				return fmt.Errorf("Invalid JSON in %s: %v", file, err)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return pyOSError(err)
		}
		if i := indexOf(biKeys, p.id.name); i >= 0 {
			biVals[i] = bi
		} else {
			biKeys, biVals = append(biKeys, p.id.name), append(biVals, bi)
		}

		if u, ok := p.info.get("username"); ok && u.kind != jNull {
			if u.kind != jString || !pyMatch(usernameRE, u.s) {
				return validationf("Username must begin with `dcos_` and only have a-z and underscore after that")
			}
		}
		if sd, ok := p.info.get("state_directory"); ok && sd.truthy() {
			if err := os.MkdirAll(c.stateDir+"/"+p.id.name, 0o755); err != nil {
				return pyOSError(err)
			}
		}
		if sc, ok := p.info.get("sysctl"); ok && sc.truthy() {
			services, err := serviceNames(p.path)
			if err != nil {
				return err
			}
			if len(services) == 0 {
				return fmt.Errorf("service name required for sysctl could not be determined for %s", p.id)
			}
			for _, s := range services {
				if v, ok := sc.get(s); ok {
					if i := indexOf(sysKeys, s); i >= 0 {
						sysVals[i] = v
					} else {
						sysKeys, sysVals = append(sysKeys, s), append(sysVals, v)
					}
				}
			}
		}
	}
	newWants := in.abs(in.unitDir) + ".new"
	if pathExists(newWants) {
		if err := in.stageNewUnits(newWants); err != nil {
			return err
		}
	}
	config := object([]string{"sysctl"}, []jvalue{object(sysKeys, sysVals)})
	files := []struct {
		path, data string
	}{
		{filepath.Join(in.abs("etc.new"), serviceConfigFile), pyDumps(config)},
		{in.abs("environment.new"), env},
		{in.abs("environment.export.new"), envExport},
		{in.abs("active.buildinfo.full.json.new"), pyDumps(object(biKeys, biVals))},
	}
	for _, f := range files {
		if err := writeString(f.path, f.data); err != nil {
			return err
		}
	}
	return in.swapActive(".new")
}

// symlinkTree is symlink_tree: directories are made real, everything else
// is linked to.
func symlinkTree(src, dest, rolesRepr string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return pyOSError(err)
	}
	for _, e := range ents {
		srcPath, destPath := filepath.Join(src, e.Name()), filepath.Join(dest, e.Name())
		lst, lerr := os.Lstat(srcPath)
		st, serr := os.Stat(srcPath)
		if lerr == nil && serr == nil && st.IsDir() && lst.Mode()&fs.ModeSymlink == 0 {
			if dst, err := os.Stat(destPath); err == nil {
				dl, _ := os.Lstat(destPath)
				if !dst.IsDir() && (dl == nil || dl.Mode()&fs.ModeSymlink == 0) {
					return validationf("Can't merge a file `%s` and directory (or symlink) `%s` with the same name.", srcPath, destPath)
				}
			} else if err := os.Mkdir(destPath, 0o755); err != nil {
				return pyOSError(err)
			}
			if err := symlinkTree(srcPath, destPath, rolesRepr); err != nil {
				return err
			}
			continue
		}
		if err := os.Symlink(srcPath, destPath); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return validationf("Two packages are trying to install the same file %s or two roles in the set of roles %s are causing a package to try activating multiple versions of the same file. One of the package files is %s.", destPath, rolesRepr, srcPath)
			}
			return pyOSError(&linkErr{srcPath, destPath, err})
		}
	}
	return nil
}

// serviceNames lists the `.service` files below dir (links not followed
// into directories), without the suffix.
func serviceNames(dir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // os.walk ignores unreadable folders
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".service") {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				return nil
			}
		}
		names = append(names, strings.TrimSuffix(d.Name(), ".service"))
		return nil
	})
	return names, err
}

// unitNames is Systemd.unit_names: the folder's entries, none reserved.
func unitNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, pyOSError(err)
	}
	var names []string
	for _, e := range ents {
		for _, r := range reservedUnitNames {
			if e.Name() == r {
				return nil, fmt.Errorf("Reserved name encountered - %s.", r)
			}
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// stageNewUnits is Systemd.stage_new_units: copy each unit file beside
// the unit folder with the `.unit.new` suffix and point the link in the
// new wants folder at where the copy will be.
func (in *install) stageNewUnits(wants string) error {
	names, err := unitNames(wants)
	if err != nil {
		return err
	}
	for _, u := range names {
		link := filepath.Join(wants, u)
		src, err := filepath.EvalSymlinks(link)
		if err != nil {
			return pyOSError(err)
		}
		dst := filepath.Join(in.baseUnits, u)
		if err := copyFileMode(src, dst+newUnitSuffix); err != nil {
			return err
		}
		if err := os.Remove(link); err != nil {
			return pyOSError(err)
		}
		if err := os.Symlink(dst, link); err != nil {
			return pyOSError(&linkErr{dst, link, err})
		}
	}
	return nil
}

// copyFileMode is shutil.copyfile followed by shutil.copymode.
func copyFileMode(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return pyOSError(err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return pyOSError(err)
	}
	if st.IsDir() {
		return fmt.Errorf("[Errno 21] Is a directory: %s", pyRepr(src))
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return pyOSError(err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(st.Mode().Perm())
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return pyOSError(err)
	}
	return nil
}

// writeString is pkgpanda.util.write_string: write a temporary file in
// the same folder and replace path with it, keeping an existing file's
// mode (0644 otherwise).
func writeString(path, data string) error {
	perm := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		perm = st.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return pyOSError(err)
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), perm)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return pyOSError(err)
	}
	return nil
}

// swapActive is Install.swap_active with archive=True: record progress,
// stop the units, archive every active name as `.old`, move every `.new`
// into place, put the new unit files in place, drop the progress record.
func (in *install) swapActive(ext string) error {
	c := in.c
	for _, n := range in.activeName {
		if !pathExists(n + ext) {
			return fmt.Errorf("Unable to swap active packages. Needed file %s doesn't exist.", n+ext)
		}
	}
	progress := in.abs("install_progress")
	record := func(stage string) error {
		return writeSynced(progress, fmt.Sprintf(`{"stage": %s, "extension": %s}`, pyJSONString(stage), pyJSONString(ext)))
	}
	if err := record("archive"); err != nil {
		return err
	}
	if err := in.stopAll(); err != nil {
		return err
	}
	if err := in.removeUnitFiles(); err != nil {
		return err
	}
	for _, n := range in.activeName {
		if pathExists(n) {
			if err := os.Rename(n, n+".old"); err != nil {
				return pyOSError(&linkErr{n, n + ".old", err})
			}
		}
	}
	if err := record("move_new"); err != nil {
		return err
	}
	for _, n := range in.activeName {
		if err := os.Rename(n+ext, n); err != nil {
			return pyOSError(&linkErr{n + ext, n, err})
		}
	}
	if pathExists(in.unitDir) {
		if err := in.removeUnitFiles(); err != nil {
			return err
		}
		names, err := unitNames(in.unitDir)
		if err != nil {
			return err
		}
		for _, u := range names {
			dst := filepath.Join(in.baseUnits, u)
			if err := os.Rename(dst+newUnitSuffix, dst); err != nil {
				return pyOSError(&linkErr{dst + newUnitSuffix, dst, err})
			}
		}
	} else {
		c.warn("Do not move new unit files. %s does not exist", in.unitDir)
	}
	if err := os.Remove(progress); err != nil {
		return pyOSError(err)
	}
	return nil
}

// writeSynced writes path atomically and durably (record_state).
func writeSynced(path, data string) error {
	f, err := os.OpenFile(path+".new", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return pyOSError(err)
	}
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".new", path)
	}
	if err != nil {
		return pyOSError(err)
	}
	return nil
}

// stopAll is Systemd.stop_all: `systemctl stop` of the files in the unit
// folder; exit status 5 (unit not loaded) is only a warning.
func (in *install) stopAll() error {
	c := in.c
	if c.noSystemd {
		c.warn("Do not stop services")
		return nil
	}
	if !pathExists(in.unitDir) {
		c.warn("Do not stop services. %s does not exist", in.unitDir)
		return nil
	}
	ents, err := os.ReadDir(in.unitDir)
	if err != nil {
		return pyOSError(err)
	}
	args := []string{"stop"}
	for _, e := range ents {
		if st, err := os.Stat(filepath.Join(in.unitDir, e.Name())); err == nil && st.Mode().IsRegular() {
			args = append(args, e.Name())
		}
	}
	if c.noBlock {
		args = append(args, "--no-block")
	}
	code, err := c.systemctlCall(args...)
	if err != nil && code != 0 {
		c.warn("%s", err.Error())
		if code == 5 {
			return nil
		}
	}
	return err
}

// removeUnitFiles is Systemd.remove_unit_files: remove the copies of the
// units the unit folder names.
func (in *install) removeUnitFiles() error {
	if !pathExists(in.unitDir) {
		in.c.warn("Do not remove files. %s does not exist", in.unitDir)
		return nil
	}
	names, err := unitNames(in.unitDir)
	if err != nil {
		return err
	}
	for _, u := range names {
		if err := os.Remove(filepath.Join(in.baseUnits, u)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return pyOSError(err)
		}
	}
	return nil
}
