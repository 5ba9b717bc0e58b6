package pkgpanda

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/procpanda/procpanda/libprocess"
	"golang.org/x/sys/unix"
)

// uploadDirName names the process' own directory under Config.TempDir:
// "pkgpanda-uploads-" and a hash of the repository lock's path, so that
// processes serving different repositories never share one, while a
// process restarted over the same repository finds (and removes) what its
// killed predecessor left. Every upload gets a private "upload-*"
// directory in it.
func uploadDirName(lockFile string) string {
	if abs, err := filepath.Abs(lockFile); err == nil {
		lockFile = abs
	}
	sum := sha256.Sum256([]byte(lockFile))
	return "pkgpanda-uploads-" + hex.EncodeToString(sum[:6])
}

// uploads bounds and tracks the files the process writes for bodies it
// receives: add tarballs, spooled api/v1 bodies and ADD message tarballs.
// Each upload counts against MaxUploads while it is being received, and
// its bytes count against MaxUploadBytes until its files are removed (after
// the add ran, or was rejected).
type uploads struct {
	dir      string
	lock     *os.File // flock on dir/.lock, held while the process runs
	max      int
	maxBytes int64

	mu     sync.Mutex
	active int   // uploads being received
	bytes  int64 // bytes in upload files on disk
}

// upload is one upload's private directory and its accounting.
type upload struct {
	u         *uploads
	dir       string
	mu        sync.Mutex
	n         int64 // bytes reserved
	receiving bool
	removed   bool
}

// errUploadsFull is the cause of a 503: too many uploads at once, or too
// many bytes on disk.
var errUploadsFull = errors.New("too many uploads in progress; retry later")

// openUploads creates (if need be) and locks the process' upload
// directory, then removes whatever a killed process left in it. A
// directory locked by another running process is an error: two processes
// must not share one.
func openUploads(tempDir, lockFile string, max int, maxBytes int64) (*uploads, int, error) {
	dir := filepath.Join(tempDir, uploadDirName(lockFile))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, 0, fmt.Errorf("creating the upload directory: %w", err)
	}
	if err := checkPrivateDir(dir); err != nil {
		return nil, 0, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("opening the upload directory's lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, 0, fmt.Errorf("the upload directory %s is in use by another pkgpanda process (give each its own TempDir): %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		lock.Close()
		return nil, 0, fmt.Errorf("reading the upload directory: %w", err)
	}
	stale := 0
	for _, e := range ents {
		if e.Name() == ".lock" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			lock.Close()
			return nil, 0, fmt.Errorf("removing a stale upload: %w", err)
		}
		stale++
	}
	return &uploads{dir: dir, lock: lock, max: max, maxBytes: maxBytes}, stale, nil
}

// checkPrivateDir makes sure dir is a real directory (not a symbolic
// link) owned by this process' user and closed to everybody else: the
// process empties it at start, so in a shared temp dir another user must
// not be able to plant it, or point it elsewhere.
func checkPrivateDir(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("checking the upload directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("the upload directory %s is not a directory (a symbolic link?)", dir)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("the upload directory %s is open to other users (mode %v); it must be 0700", dir, st.Mode().Perm())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("the upload directory %s belongs to uid %d, not to this process' uid %d", dir, sys.Uid, os.Geteuid())
	}
	return nil
}

// close releases the upload directory's lock.
func (u *uploads) close() {
	if u != nil && u.lock != nil {
		u.lock.Close()
	}
}

func (u *uploads) counts() (active int, bytes int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.active, u.bytes
}

// begin starts an upload, or fails with errUploadsFull at the bound.
func (u *uploads) begin() (*upload, error) {
	u.mu.Lock()
	if u.active >= u.max {
		u.mu.Unlock()
		return nil, errUploadsFull
	}
	u.active++
	u.mu.Unlock()
	dir, err := os.MkdirTemp(u.dir, "upload-")
	if err != nil {
		u.mu.Lock()
		u.active--
		u.mu.Unlock()
		return nil, fmt.Errorf("creating an upload directory: %w", err)
	}
	return &upload{u: u, dir: dir, receiving: true}, nil
}

// reserve accounts n more bytes, or fails with errUploadsFull.
func (up *upload) reserve(n int64) error {
	up.u.mu.Lock()
	defer up.u.mu.Unlock()
	if up.u.bytes+n > up.u.maxBytes {
		return errUploadsFull
	}
	up.u.bytes += n
	up.mu.Lock()
	up.n += n
	up.mu.Unlock()
	return nil
}

// received ends the receiving phase: the upload no longer counts against
// MaxUploads (its bytes still count).
func (up *upload) received() {
	up.mu.Lock()
	was := up.receiving
	up.receiving = false
	up.mu.Unlock()
	if was {
		up.u.mu.Lock()
		up.u.active--
		up.u.mu.Unlock()
	}
}

// remove deletes the upload's files and releases its accounting. It may be
// called more than once.
func (up *upload) remove() {
	up.received()
	up.mu.Lock()
	if up.removed {
		up.mu.Unlock()
		return
	}
	up.removed = true
	n := up.n
	up.mu.Unlock()
	_ = os.RemoveAll(up.dir)
	up.u.mu.Lock()
	up.u.bytes -= n
	up.u.mu.Unlock()
}

// path names a file in the upload's directory.
func (up *upload) path(name string) string { return filepath.Join(up.dir, name) }

// errUploadTooLarge is the cause of a 413.
var errUploadTooLarge = errors.New("the upload exceeds its size limit")

// receive copies at most limit bytes of r into the upload's file name,
// reserving the bytes as they come. It stops early when the process
// starts draining.
func (p *Process) receive(up *upload, name string, r io.Reader, limit int64) (int64, error) {
	f, err := os.OpenFile(up.path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("%w: creating it: %v", errWriteFile, err)
	}
	w := &reservingWriter{up: up, f: f, drain: p.isDraining}
	n, err := io.Copy(w, io.LimitReader(r, limit+1))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %v", errWriteFile, cerr)
	}
	switch {
	case errors.Is(err, libprocess.ErrBodyTooLarge) || (err == nil && n > limit):
		p.m.uploadsTooLarge.Inc()
		return n, errUploadTooLarge
	case err != nil:
		if errors.Is(err, errUploadsFull) {
			p.m.uploadsRejected.Inc()
		}
		return n, err
	}
	return n, nil
}

// uploadFailure turns an error of begin or receive into a response.
func uploadFailure(err error, limit int64) *PkgpandaResponse {
	switch {
	case errors.Is(err, errUploadsFull):
		return failed(http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, errDraining):
		return failed(http.StatusServiceUnavailable, "pkgpanda is shutting down")
	case errors.Is(err, errUploadTooLarge):
		return failed(http.StatusRequestEntityTooLarge, "the upload exceeds %d bytes", limit)
	case errors.Is(err, errWriteFile):
		return failed(http.StatusInternalServerError, "%v", err)
	}
	return failed(http.StatusBadRequest, "reading the upload: %v", err)
}

var (
	errDraining  = errors.New("pkgpanda is shutting down")
	errWriteFile = errors.New("writing the upload file")
)

// reservingWriter writes to an upload file, reserving each chunk first.
type reservingWriter struct {
	up    *upload
	f     *os.File
	drain func() bool
}

func (w *reservingWriter) Write(b []byte) (int, error) {
	if w.drain() {
		return 0, errDraining
	}
	if err := w.up.reserve(int64(len(b))); err != nil {
		return 0, err
	}
	n, err := w.f.Write(b)
	if err != nil {
		return n, fmt.Errorf("%w: %v", errWriteFile, err)
	}
	return n, nil
}

// beginUpload starts an upload whose receiving goroutine Drain waits
// for, counting it from now: Drain cannot return between the upload's
// start and its goroutine's. The caller must call run exactly once, with
// the function to run on that goroutine and what answers its request if
// that function panics (see goTracked). It fails with errDraining while
// the process drains, or as uploads.begin does.
func (p *Process) beginUpload() (up *upload, run func(onPanic, f func()), err error) {
	p.mu.Lock()
	if p.draining {
		p.mu.Unlock()
		return nil, nil, errDraining
	}
	p.uploadsDone.Add(1)
	p.mu.Unlock()
	if up, err = p.uploads.begin(); err != nil {
		p.uploadsDone.Done()
		return nil, nil, err
	}
	return up, func(onPanic, f func()) {
		p.goTracked("receiving an upload", func() {
			up.remove()
			onPanic()
		}, f)
	}, nil
}

// goUpload runs f on a goroutine Drain waits for; it reports false (and
// runs nothing) when the process is draining. onPanic answers f's
// request if f panics (see goTracked).
func (p *Process) goUpload(what string, onPanic, f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return false
	}
	p.uploadsDone.Add(1)
	p.goTracked(what, onPanic, f)
	return true
}
