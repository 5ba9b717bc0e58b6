package pkgpanda

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
	"golang.org/x/sys/unix"
)

// uploadDirPrefix begins the name of every process' upload directory
// under Config.TempDir. The rest of the name is random (os.MkdirTemp), so
// nobody can create the directory first, and each process has its own.
// Every upload gets a private "upload-*" directory in it.
const uploadDirPrefix = "pkgpanda-uploads-"

// leftoverGrace is how old an upload directory without a lock file must
// be before Start removes it: a process that has just created its
// directory takes the lock a moment later.
const leftoverGrace = time.Minute

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

// openUploads removes the upload directories killed processes of this
// user left in tempDir, then creates and locks the process' own. The
// directory is private (0700) with a name nobody can predict, made by
// the process itself, so another user can neither plant it nor keep the
// process from starting; directories of other users, links and files
// with the prefix are left alone. It returns the number of uploads a
// killed process left.
func openUploads(tempDir string, max int, maxBytes int64) (*uploads, int, error) {
	if err := checkTempBase(tempDir); err != nil {
		return nil, 0, err
	}
	stale, err := removeLeftovers(tempDir, time.Now())
	if err != nil {
		return nil, 0, err
	}
	dir, err := os.MkdirTemp(tempDir, uploadDirPrefix)
	if err != nil {
		return nil, 0, fmt.Errorf("creating the upload directory in %s: %w", tempDir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err == nil {
		if err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			lock.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, 0, fmt.Errorf("locking the upload directory %s: %w", dir, err)
	}
	return &uploads{dir: dir, lock: lock, max: max, maxBytes: maxBytes}, stale, nil
}

// checkTempBase refuses a TempDir where other users could swap the
// upload directory's name for something else between the checks and the
// removal of leftovers: one that others may write to without the sticky
// bit (a shared temp dir such as /tmp has it).
func checkTempBase(tempDir string) error {
	st, err := os.Stat(tempDir)
	if err != nil {
		return fmt.Errorf("checking the temporary directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("the temporary directory %s is not a directory", tempDir)
	}
	if st.Mode().Perm()&0o022 != 0 && st.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("the temporary directory %s is writable by other users without the sticky bit (mode %v): give a private one (--tmp-dir)", tempDir, st.Mode())
	}
	return nil
}

// removeLeftovers removes the upload directories of killed processes in
// tempDir: real directories named uploadDirPrefix*, owned by this
// process' user, whose lock no running process holds (taken here while
// they are removed), or that have no lock and are older than
// leftoverGrace. It returns the number of uploads they held.
func removeLeftovers(tempDir string, now time.Time) (int, error) {
	ents, err := os.ReadDir(tempDir)
	if err != nil {
		return 0, fmt.Errorf("reading the temporary directory: %w", err)
	}
	stale := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), uploadDirPrefix) {
			continue
		}
		dir := filepath.Join(tempDir, e.Name())
		st, err := os.Lstat(dir)
		if err != nil || !st.IsDir() {
			continue // gone, or a link or file: not ours to follow
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != os.Geteuid() {
			continue // another user's
		}
		lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|syscall.O_NOFOLLOW, 0)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if now.Sub(st.ModTime()) < leftoverGrace {
				continue // being created by a process that has not locked it yet
			}
		case err != nil:
			continue
		default:
			if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
				lock.Close()
				continue // a running process' own
			}
		}
		if ups, err := os.ReadDir(dir); err == nil {
			for _, u := range ups {
				if u.Name() != ".lock" {
					stale++
				}
			}
		}
		err = os.RemoveAll(dir)
		if lock != nil {
			lock.Close()
		}
		if err != nil {
			return stale, fmt.Errorf("removing the upload directory %s a killed process left: %w", dir, err)
		}
	}
	return stale, nil
}

// close removes the upload directory, with any upload left in it, and
// releases its lock: a process that stops cleanly leaves nothing behind.
func (u *uploads) close() {
	if u == nil || u.lock == nil {
		return
	}
	_ = os.RemoveAll(u.dir)
	u.lock.Close()
	u.lock = nil
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
func uploadFailure(err error, limit int64) *pb.PkgpandaResponse {
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
