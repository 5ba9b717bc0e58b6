package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// stateVersion is the state file's format version.
const stateVersion = 1

// Agent progress in a rollout.
const (
	progPending   = "pending"   // planned, not started
	progRunning   = "running"   // started; a killed run leaves it so
	progDone      = "done"      // at the target, gate passed
	progFailed    = "failed"    // a step or the gate failed
	progAtTarget  = "at-target" // already at the target when planned: skipped
	progNotTouchd = "not-touched"
	progGone      = "gone" // planned, then no longer known to the master
)

// AgentProgress is one agent's entry in the state file.
type AgentProgress struct {
	Hostname string     `json:"hostname"`
	Address  string     `json:"address"`
	Batch    int        `json:"batch"` // 0: the canary batch; -1: not in a batch
	Status   string     `json:"status"`
	From     []string   `json:"from,omitempty"`    // active set before
	To       []string   `json:"to,omitempty"`      // desired active set
	Fetch    []string   `json:"fetch,omitempty"`   // ids its repository lacked
	Changed  bool       `json:"changed,omitempty"` // an activation ran
	Error    string     `json:"error,omitempty"`
	Attempts int        `json:"attempts,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
}

// State is the rollout's progress, kept in the state file so that a
// stopped or killed rollout continues where it stopped.
type State struct {
	Version       int                       `json:"version"`
	Target        Target                    `json:"target"`
	RepositoryURL string                    `json:"repository_url,omitempty"`
	Created       time.Time                 `json:"created"`
	Updated       time.Time                 `json:"updated"`
	Batches       [][]string                `json:"batches"` // agent ids; batch 0 is the canary
	Agents        map[string]*AgentProgress `json:"agents"`
	Outcome       string                    `json:"outcome,omitempty"` // how the last run ended
}

// stateFile is an open, flock'ed state file. The lock is held for the
// whole run, so a second rollout from the same file is refused; the
// content is rewritten in place (never renamed) so the lock stays on the
// file others open.
type stateFile struct {
	path string
	f    *os.File
	mu   sync.Mutex
}

// errStateLocked is a state file another running rollout holds.
var errStateLocked = errors.New("another rollout is running from this state file")

// openState opens (creating) and locks path; it returns the state in it,
// or nil when the file is empty.
func openState(path string) (*stateFile, *State, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the state file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("state file %s: %w (flock held); refusing to start a second one", path, errStateLocked)
		}
		return nil, nil, fmt.Errorf("locking the state file %s: %w", path, err)
	}
	sf := &stateFile{path: path, f: f}
	st, err := readState(f, path)
	if err != nil {
		sf.close()
		return nil, nil, err
	}
	return sf, st, nil
}

// readState decodes a state file; nil for an empty one.
func readState(r io.Reader, path string) (*State, error) {
	b, err := io.ReadAll(io.LimitReader(r, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the state file %s: %w", path, err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state file %s is not a rollout state (%v); move it away to start afresh", path, err)
	}
	if st.Version != stateVersion || st.Agents == nil {
		return nil, fmt.Errorf("state file %s has version %d and %d agents, want version %d; move it away to start afresh", path, st.Version, len(st.Agents), stateVersion)
	}
	return &st, nil
}

// peekState reads a state file without creating or locking it (dry runs).
func peekState(path string) (*State, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening the state file: %w", err)
	}
	defer f.Close()
	return readState(f, path)
}

// save writes st over the file's content and syncs it.
func (s *stateFile) save(st *State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := s.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("writing the state file %s: %w", s.path, err)
	}
	if err := s.f.Truncate(int64(len(b))); err != nil {
		return fmt.Errorf("writing the state file %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("syncing the state file %s: %w", s.path, err)
	}
	return nil
}

// close releases the lock.
func (s *stateFile) close() error { return s.f.Close() }

// sameTarget reports whether a state file's target is t.
func sameTarget(a, b Target) bool { return a.Exact == b.Exact && slices.Equal(a.IDs, b.IDs) }
