package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/ulikunitz/xz"
)

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	bzip2Magic = []byte{'B', 'Z', 'h'}
)

// maxLinkHops bounds how many symbolic links resolving one link target may
// pass through, as the kernel's ELOOP limit does.
const maxLinkHops = 40

// decompress sniffs the compression of r from its magic bytes, as `tar
// -xf` does: package tarballs are named .tar.xz but some (the shared
// fixture's among them) are gzip-compressed, and an uncompressed tar is
// read as it is.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(len(xzMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(head, xzMagic):
		return xz.NewReader(br)
	case bytes.HasPrefix(head, gzipMagic):
		return gzip.NewReader(br)
	case bytes.HasPrefix(head, bzip2Magic):
		return bzip2.NewReader(br), nil
	}
	return br, nil
}

// tarError is a failed extraction, reported the way the real CLI reports
// a failed `tar -xf <archive> -C <target>`: tar's own diagnostic lines on
// stderr, then the `Command '[...]' returned non-zero exit status 2.` of
// Python's subprocess.CalledProcessError.
type tarError struct {
	// diag are tar's stderr lines, without the trailing newline.
	diag    []string
	archive string
	target  string
}

func (e *tarError) Error() string {
	return calledProcessError([]string{"tar", "-xf", e.archive, "-C", e.target}, 2)
}

// refusal is one entry the extraction refused or failed on: GNU tar's
// `<member>: <reason>` diagnostic.
type refusal struct {
	member string
	reason string
}

func (r *refusal) Error() string { return r.member + ": " + r.reason }

// extractTarball unpacks the package tarball at archive into target, as
// the real CLI's `extract_tarball` does with `tar -xf archive -C target`:
// the archive must exist, target is created, and on any failure target
// is removed again. See extractStream for what is refused.
func extractTarball(archive, target string) error {
	if _, err := os.Stat(archive); err != nil {
		return fmt.Errorf("Path doesn't exist but should: %s", archive)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return pyOSError(err)
	}
	fail := func(diag ...string) error {
		os.RemoveAll(target)
		return &tarError{diag: append(diag, "tar: Exiting with failure status due to previous errors"), archive: archive, target: target}
	}
	f, err := os.Open(archive)
	if err != nil {
		return fail("tar: " + archive + ": Cannot open: " + errnoText(err))
	}
	defer f.Close()
	if err := extractStream(f, target); err != nil {
		var r *refusal
		if errors.As(err, &r) {
			return fail("tar: " + r.Error())
		}
		return fail("tar: " + err.Error())
	}
	return nil
}

// extractStream unpacks a (possibly compressed) tar stream into the
// existing directory dir. Nothing is ever created outside dir, and when
// it returns nil every symbolic link below dir resolves inside dir:
//
//   - a leading `/` of a member name is dropped (as GNU tar does); a name
//     with a `..` component is refused;
//   - no member is written through a symbolic link: a member whose parent
//     path contains a link is refused;
//   - a symbolic link with an absolute target, or whose target resolves
//     (through the links already extracted) outside dir, is refused, and
//     every link is checked again once all members are in place, so the
//     order of members cannot be used to escape;
//   - a hard link must name a regular file already extracted (a leading
//     `/` of its target is dropped, as GNU tar does);
//   - GNU sparse files are refused: their expanded size is not bounded by
//     the archive's;
//   - character and block devices and fifos are refused (GNU tar running
//     as root would create them; the stand-in never creates special
//     files);
//   - files and directories get the member's permission bits and sticky
//     bit; setuid and setgid bits are dropped because the stand-in does
//     not give files the member's owner, as tar running as root would, so
//     they would grant the stand-in's own user. Directory modes are
//     applied last, so a read-only directory can still be filled.
//
// The caller removes dir when an error is returned.
func extractStream(r io.Reader, dir string) error {
	dr, err := decompress(r)
	if err != nil {
		return fmt.Errorf("Cannot read the archive: %v", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	x := &extractor{root: root}
	tr := tar.NewReader(dr)
	for first := true; ; first = false {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			if first {
				return errors.New("This does not look like a tar archive")
			}
			return fmt.Errorf("Archive is corrupt: %v", err)
		}
		if err := x.entry(h, tr); err != nil {
			return err
		}
	}
	for _, l := range x.links {
		fi, err := root.Lstat(l)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue // replaced by a later member
		}
		target, err := root.Readlink(l)
		if err != nil {
			return &refusal{l, "Cannot readlink: " + errnoText(err)}
		}
		if reason := x.linkEscapes(path.Dir(l), target); reason != "" {
			return &refusal{l, reason}
		}
	}
	// Children before parents; of a folder listed twice, the last entry.
	done := map[string]bool{}
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if done[d.name] {
			continue
		}
		done[d.name] = true
		if err := root.Chmod(d.name, d.mode); err != nil {
			return &refusal{d.name, "Cannot change mode: " + errnoText(err)}
		}
	}
	return nil
}

type dirMode struct {
	name string
	mode fs.FileMode
}

// extractor is the state of one extraction.
type extractor struct {
	root  *os.Root
	links []string  // symbolic links created, checked again at the end
	dirs  []dirMode // directory modes, applied at the end
}

// memberName turns a member name into a clean path relative to the root,
// or refuses it. "." is the root itself.
func memberName(name string) (string, error) {
	trimmed := strings.TrimLeft(name, "/")
	if trimmed == "" {
		return ".", nil
	}
	for _, c := range strings.Split(trimmed, "/") {
		if c == ".." {
			return "", &refusal{name, "Member name contains '..'"}
		}
	}
	return path.Clean(trimmed), nil
}

// sparse reports whether h is a GNU sparse file (old GNU or PAX form),
// whose logical size — zeros the reader would expand — is bounded by
// nothing in the archive.
func sparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// mode is the mode a member's file gets: permission bits and sticky bit.
func mode(h *tar.Header) fs.FileMode {
	m := fs.FileMode(h.Mode) & fs.ModePerm
	if h.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// parents makes sure every parent of name is a real directory below the
// root, creating missing ones when create is set, and refuses a parent
// that is a symbolic link or not a directory.
func (x *extractor) parents(member, name string, create bool) error {
	comps := strings.Split(name, "/")
	for i := 1; i < len(comps); i++ {
		p := strings.Join(comps[:i], "/")
		fi, err := x.root.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !create:
			return &refusal{member, "Cannot hard link to '" + name + "': No such file or directory"}
		case errors.Is(err, fs.ErrNotExist):
			if err := x.root.Mkdir(p, 0o755); err != nil {
				return &refusal{member, "Cannot mkdir: " + errnoText(err)}
			}
		case err != nil:
			return &refusal{member, "Cannot open: " + errnoText(err)}
		case fi.Mode()&fs.ModeSymlink != 0:
			return &refusal{member, "Cannot open: " + p + " is a symbolic link; writing through it is refused"}
		case !fi.IsDir():
			return &refusal{member, "Cannot open: Not a directory"}
		}
	}
	return nil
}

// clear makes room for a non-directory member at name: an existing file
// or link is replaced (as GNU tar does), an existing directory is not.
func (x *extractor) clear(member, name string) error {
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &refusal{member, "Cannot open: " + errnoText(err)}
	}
	if fi.IsDir() {
		return &refusal{member, "Cannot open: Is a directory"}
	}
	if err := x.root.Remove(name); err != nil {
		return &refusal{member, "Cannot unlink: " + errnoText(err)}
	}
	return nil
}

func (x *extractor) entry(h *tar.Header, body io.Reader) error {
	switch h.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader:
		return nil
	}
	name, err := memberName(h.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if h.Typeflag == tar.TypeDir {
			x.dirs = append(x.dirs, dirMode{".", mode(h)})
			return nil
		}
		return &refusal{h.Name, "Cannot open: Is a directory"}
	}
	if err := x.parents(h.Name, name, true); err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		fi, err := x.root.Lstat(name)
		switch {
		case err == nil && fi.IsDir():
		case err == nil || errors.Is(err, fs.ErrNotExist):
			if err == nil {
				if err := x.root.Remove(name); err != nil {
					return &refusal{h.Name, "Cannot unlink: " + errnoText(err)}
				}
			}
			if err := x.root.Mkdir(name, 0o700); err != nil {
				return &refusal{h.Name, "Cannot mkdir: " + errnoText(err)}
			}
		default:
			return &refusal{h.Name, "Cannot mkdir: " + errnoText(err)}
		}
		x.dirs = append(x.dirs, dirMode{name, mode(h)})
		return nil
	//lint:ignore SA1019 archives written by old tar tools mark regular files '\x00'; Python's tarfile extracts them, so must we.
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		if sparse(h) {
			return &refusal{h.Name, "Cannot extract: sparse members are refused"}
		}
		if err := x.clear(h.Name, name); err != nil {
			return err
		}
		f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
		if err != nil {
			return &refusal{h.Name, "Cannot open: " + errnoText(err)}
		}
		_, err = io.Copy(f, body)
		if err == nil {
			err = f.Chmod(mode(h))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return &refusal{h.Name, "Cannot write: " + errnoText(err)}
		}
		return nil
	case tar.TypeSymlink:
		if h.Linkname == "" {
			return &refusal{h.Name, "Cannot create symlink to '': empty link target"}
		}
		if reason := x.linkEscapes(path.Dir(name), h.Linkname); reason != "" {
			return &refusal{h.Name, reason}
		}
		if err := x.clear(h.Name, name); err != nil {
			return err
		}
		if err := x.root.Symlink(h.Linkname, name); err != nil {
			return &refusal{h.Name, "Cannot create symlink to '" + h.Linkname + "': " + errnoText(err)}
		}
		x.links = append(x.links, name)
		return nil
	case tar.TypeLink:
		target, err := memberName(h.Linkname)
		if err != nil || target == "." {
			return &refusal{h.Name, "Cannot hard link to '" + h.Linkname + "': link target refused"}
		}
		if err := x.parents(h.Name, target, false); err != nil {
			return err
		}
		fi, err := x.root.Lstat(target)
		if err != nil {
			return &refusal{h.Name, "Cannot hard link to '" + target + "': " + errnoText(err)}
		}
		if !fi.Mode().IsRegular() {
			return &refusal{h.Name, "Cannot hard link to '" + target + "': not a regular file"}
		}
		if target == name {
			return nil
		}
		if err := x.clear(h.Name, name); err != nil {
			return err
		}
		if err := x.root.Link(target, name); err != nil {
			return &refusal{h.Name, "Cannot hard link to '" + target + "': " + errnoText(err)}
		}
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return &refusal{h.Name, "Cannot mknod: special files are refused"}
	}
	return &refusal{h.Name, fmt.Sprintf("Unknown file type '%c'", h.Typeflag)}
}

// linkEscapes resolves the link target found in the directory dir (clean,
// relative to the root, a real directory) through the links that exist
// now, and returns why the link is refused, or "" if it stays inside the
// root. Components that do not exist yet are taken lexically; `..` above
// the root, an absolute target anywhere on the way, and more than
// maxLinkHops links are refusals.
func (x *extractor) linkEscapes(dir, target string) string {
	var stack []string
	if dir != "." {
		stack = strings.Split(dir, "/")
	}
	hops := 0
	var walk func(target string) string
	walk = func(target string) string {
		if path.IsAbs(target) {
			return "Cannot create symlink to '" + target + "': absolute link target refused"
		}
		for _, c := range strings.Split(target, "/") {
			switch c {
			case "", ".":
				continue
			case "..":
				if len(stack) == 0 {
					return "Cannot create symlink: target resolves outside the package"
				}
				stack = stack[:len(stack)-1]
				continue
			}
			stack = append(stack, c)
			p := strings.Join(stack, "/")
			fi, err := x.root.Lstat(p)
			if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				continue
			}
			if hops++; hops > maxLinkHops {
				return "Cannot create symlink: Too many levels of symbolic links"
			}
			next, err := x.root.Readlink(p)
			if err != nil {
				return "Cannot readlink " + p + ": " + errnoText(err)
			}
			stack = stack[:len(stack)-1]
			if reason := walk(next); reason != "" {
				return reason
			}
		}
		return ""
	}
	return walk(target)
}
