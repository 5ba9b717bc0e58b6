package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"sync"
	"time"
)

// auditLog appends one JSON line per change the tool makes (and per
// failed attempt), each with a single O_APPEND write.
type auditLog struct {
	mu       sync.Mutex
	f        *os.File
	operator string
	host     string
	state    string
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Time       time.Time `json:"time"`
	Operator   string    `json:"operator"` // the local user running the tool
	Host       string    `json:"host"`     // where the tool ran
	State      string    `json:"state"`    // the state file
	Agent      string    `json:"agent"`
	Hostname   string    `json:"hostname"`
	Address    string    `json:"address"`
	Operation  string    `json:"operation"` // fetch, activate, gate
	IDs        []string  `json:"ids,omitempty"`
	From       []string  `json:"from,omitempty"`
	Outcome    string    `json:"outcome"` // ok, failed
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

func openAudit(path, state string) (*auditLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	a := &auditLog{f: f, state: state}
	if u, err := user.Current(); err == nil {
		a.operator = u.Username
	}
	a.host, _ = os.Hostname()
	return a, nil
}

// write appends e; a failure to audit is returned to the caller, which
// fails the agent and so stops the rollout rather than go on unrecorded.
func (a *auditLog) write(e AuditEntry) error {
	e.Time = time.Now().UTC()
	e.Operator, e.Host, e.State = a.operator, a.host, a.state
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the audit log: %w", err)
	}
	return nil
}

func (a *auditLog) close() error { return a.f.Close() }
