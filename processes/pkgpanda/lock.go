package pkgpanda

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lockRepository takes the on-disk repository lock (an exclusive flock on
// Config.LockFile) for one mutation run by a. The lock is held by the
// returned open file; the mutation's children inherit it (Runner
// ExtraFiles), so a CLI child that outlives a crashed daemon keeps it
// until it exits, and a restarted daemon, or a second one over the same
// repository, cannot run a mutation beside it. When another process holds
// it, lockRepository retries until Config.LockTimeout (at most the route's
// timeout) or the drain, counting and logging the contention.
func (p *Process) lockRepository(a *actor) (*os.File, error) {
	path := p.cfg.lockFile()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the repository lock %s: %v", path, err)
	}
	wait := min(p.cfg.lockTimeout(), a.limits.Timeout)
	deadline := time.Now().Add(wait)
	delay := 10 * time.Millisecond
	busy := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			if busy {
				p.log.Info().Str("lock", path).Str("route", a.route).Msg("repository lock acquired after waiting")
			}
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking the repository lock %s: %v", path, err)
		}
		if !busy {
			busy = true
			p.m.lockBusy.Inc()
			p.log.Warn().Str("lock", path).Str("route", a.route).Dur("wait", wait).
				Msg("the repository lock is held by another process (a pkgpanda CLI that outlived a crashed daemon, or a second pkgpandad); waiting")
		}
		if time.Now().After(deadline) {
			f.Close()
			p.m.lockTimeouts.Inc()
			p.log.Error().Str("lock", path).Str("route", a.route).Dur("waited", wait).Msg("mutation refused: the repository lock stayed busy")
			return nil, fmt.Errorf("the repository lock %s is held by another process (a pkgpanda CLI that outlived a crashed daemon, or a second pkgpandad); retry later", path)
		}
		select {
		case <-p.drainCtx.Done():
			f.Close()
			return nil, errors.New("pkgpanda is shutting down")
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// interruptedActivation lists what an interrupted activation left in the
// install root (docs/pkgpanda-cli.md §5.2): every `<root>/X.new`, and every
// `<root>/X.old` whose X is missing. A successful activation leaves only
// `.old` copies beside their live folders.
func interruptedActivation(root string) []string {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var left []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".new") && len(name) > len(".new"):
			left = append(left, filepath.Join(root, name))
		case strings.HasSuffix(name, ".old") && len(name) > len(".old"):
			if _, err := os.Lstat(filepath.Join(root, strings.TrimSuffix(name, ".old"))); errors.Is(err, os.ErrNotExist) {
				left = append(left, filepath.Join(root, name))
			}
		}
	}
	sort.Strings(left)
	return left
}

// installBlocked answers 409 when an interrupted activation is left on
// disk; it looks again on every call (only a stat of the install root
// while that is unchanged since a look that found nothing: cache.go), so
// service resumes as soon as an operator has recovered.
func (p *Process) installBlocked() (status int, msg string) {
	root := p.cfg.root()
	clean, look := p.cache.installClean(root)
	if clean {
		return 0, "" // root unchanged since a look that found nothing
	}
	left := interruptedActivation(root)
	if len(left) == 0 {
		p.cache.keepInstallClean(look)
		return 0, ""
	}
	p.m.installBlocked.Inc()
	return http.StatusConflict, fmt.Sprintf("an activation was interrupted and left %s; "+
		"the install is inconsistent, so activations and reads of the active set are refused until it is recovered: "+
		"each X.new is the (possibly incomplete) new state and X.old the complete previous one; "+
		"restore X from X.old (or complete X from X.new), remove the leftover .new/.old folders, then retry",
		strings.Join(left, ", "))
}
