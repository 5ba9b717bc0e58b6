package pkgpanda

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/procpanda/procpanda/libprocess"
)

// ACL says which authenticated principals may run read-only operations
// and which may run mutations. Build one with ParseACL.
type ACL struct {
	read, mutate aclSubjects
}

// aclSubjects is one permission's principals.
type aclSubjects struct {
	any        bool
	principals map[string]bool
}

func (s aclSubjects) allows(principal string) bool {
	return s.any || s.principals[principal]
}

// Allows reports whether principal may run an operation that mutates
// (mutates true) or only reads (mutates false).
func (a *ACL) Allows(principal string, mutates bool) bool {
	if mutates {
		return a.mutate.allows(principal)
	}
	return a.read.allows(principal)
}

// aclFile is the JSON form of an ACL.
type aclFile struct {
	Permissive *bool          `json:"permissive"`
	Read       *aclEntityFile `json:"read"`
	Mutate     *aclEntityFile `json:"mutate"`
}

type aclEntityFile struct {
	Principals []string `json:"principals"`
	Type       string   `json:"type"`
}

// ParseACL parses an ACL file, in the spirit of Mesos' ACLs:
//
//	{"permissive": false,
//	 "read":   {"principals": ["ops", "monitor"]},
//	 "mutate": {"principals": ["ops"]}}
//
// "read" and "mutate" each hold either "principals" (a non-empty list of
// non-empty principal names) or "type" ("ANY": every authenticated
// principal; "NONE": nobody). A permission that is absent is ANY when
// "permissive" is true and NONE otherwise (the default). Unknown keys,
// both or neither of "principals" and "type", and trailing data are
// errors. Read and mutate are independent: a principal that may mutate
// may read only if "read" lets it.
func ParseACL(data []byte) (*ACL, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f aclFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parsing the ACL: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("parsing the ACL: trailing data after the JSON object")
	}
	permissive := f.Permissive != nil && *f.Permissive
	var a ACL
	var err error
	if a.read, err = f.Read.subjects("read", permissive); err != nil {
		return nil, err
	}
	if a.mutate, err = f.Mutate.subjects("mutate", permissive); err != nil {
		return nil, err
	}
	return &a, nil
}

func (e *aclEntityFile) subjects(what string, permissive bool) (aclSubjects, error) {
	if e == nil {
		return aclSubjects{any: permissive}, nil
	}
	switch {
	case e.Type != "" && e.Principals != nil:
		return aclSubjects{}, fmt.Errorf("ACL %q: give either \"principals\" or \"type\", not both", what)
	case e.Type == "ANY":
		return aclSubjects{any: true}, nil
	case e.Type == "NONE":
		return aclSubjects{}, nil
	case e.Type != "":
		return aclSubjects{}, fmt.Errorf("ACL %q: unknown type %q (want ANY or NONE)", what, e.Type)
	case len(e.Principals) == 0:
		return aclSubjects{}, fmt.Errorf("ACL %q: needs a non-empty \"principals\" list or a \"type\"", what)
	}
	s := aclSubjects{principals: make(map[string]bool, len(e.Principals))}
	for _, p := range e.Principals {
		if p == "" {
			return aclSubjects{}, fmt.Errorf("ACL %q: empty principal name", what)
		}
		s.principals[p] = true
	}
	return s, nil
}

// caller is who asked for an operation, as far as the front-end knows.
type caller struct {
	// principal is the authenticated principal; empty when the caller
	// presented no credentials, presented bad ones, or no authenticator
	// is configured.
	principal string
	// authErr is set when credentials were presented and refused.
	authErr error
	// from is a message's sender (zero over HTTP).
	from libprocess.UPID
	// peer is the HTTP client's address (empty for messages).
	peer string
}

// authenticate checks credentials: authorization is what an HTTP
// Authorization header holds ("Basic …", "Bearer …"; empty for none). It
// never fails by itself; admit decides. The credential is not kept.
func (p *Process) authenticate(authorization string, peer net.Addr) caller {
	var c caller
	if peer != nil {
		c.peer = peer.String()
	}
	if p.cfg.Authenticator == nil || authorization == "" {
		return c
	}
	req := libprocess.NewRequest(http.MethodPost, "/"+processID, http.Header{"Authorization": {authorization}})
	req.RemoteAddr = peer
	principal, err := p.cfg.Authenticator.Authenticate(req)
	if err == nil && principal == "" {
		err = errors.New("the authenticator returned no principal")
	}
	if err != nil {
		c.authErr = err
		return c
	}
	c.principal = principal
	return c
}

// httpCaller authenticates an HTTP request by its Authorization header.
func (p *Process) httpCaller(req *libprocess.Request) caller {
	c := p.authenticate(req.Header().Get("Authorization"), req.RemoteAddr)
	if c.principal != "" {
		req.SetPrincipal(c.principal) // for the runtime's access log
	}
	return c
}

// refusal is an operation that admit turned down.
type refusal struct {
	status int // 401 or 403
	msg    string
}

// admit decides whether c may run op: with no authenticator everybody may;
// otherwise c must be authenticated (401), except for read-only
// operations when Config.OpenReads is set and c presented no credentials,
// and the ACL, if any, must allow the principal (403). A refusal is
// logged and counted. admit is the single authorization decision of the
// process: call.submit calls it for every operation, and front-ends that
// receive a body (uploads) call it first as well, so that nothing is
// written for a caller that would be refused.
func (p *Process) admit(op opID, c caller) *refusal {
	if p.cfg.Authenticator == nil {
		return nil
	}
	spec := p.ops[op]
	var r *refusal
	switch {
	case c.principal == "" && c.authErr == nil && !spec.mutates && p.cfg.OpenReads:
		return nil
	case c.principal == "" && c.authErr != nil:
		r = &refusal{http.StatusUnauthorized, "Unauthorized: invalid credentials"}
	case c.principal == "":
		r = &refusal{http.StatusUnauthorized, "Unauthorized: credentials are required for " + spec.name}
	case p.cfg.ACL != nil && !p.cfg.ACL.Allows(c.principal, spec.mutates):
		r = &refusal{http.StatusForbidden, fmt.Sprintf("Forbidden: principal '%s' may not run %s", c.principal, spec.name)}
	default:
		return nil
	}
	p.refused(spec, c, r)
	return r
}

// refused logs and counts a refusal (never the credential itself).
func (p *Process) refused(spec opSpec, c caller, r *refusal) {
	if r.status == http.StatusUnauthorized {
		p.m.unauthenticated.Inc()
	} else {
		p.m.forbidden.Inc()
	}
	ev := p.log.Warn().Str("operation", spec.name).Bool("mutates", spec.mutates).Int("status", r.status)
	if c.principal != "" {
		ev = ev.Str("principal", c.principal)
	}
	if c.authErr != nil {
		// Authenticator errors describe the failure, never the secret.
		ev = ev.AnErr("auth_error", c.authErr)
	}
	if !c.from.IsZero() {
		ev = ev.Str("from", c.from.String())
	}
	if c.peer != "" {
		ev = ev.Str("peer", c.peer)
	}
	ev.Msg("operation refused")
}

// mayStart reports whether c could be admitted to at least one
// operation; front-ends that must receive a body before they know the
// operation (api/v1) check it first. A caller that can only read gets a
// small body cap (see serveAPIv1).
func (p *Process) mayStart(c caller) (mayMutate bool, r *refusal) {
	if p.cfg.Authenticator == nil {
		return true, nil
	}
	if c.principal == "" {
		if c.authErr == nil && p.cfg.OpenReads {
			return false, nil
		}
		r := &refusal{http.StatusUnauthorized, "Unauthorized: credentials are required"}
		if c.authErr != nil {
			r.msg = "Unauthorized: invalid credentials"
		}
		p.refused(opSpec{name: "any"}, c, r)
		return false, r
	}
	return p.cfg.ACL == nil || p.cfg.ACL.Allows(c.principal, true), nil
}

// challenge is the WWW-Authenticate value of a 401, or "".
func (p *Process) challenge() string {
	if p.cfg.Authenticator == nil {
		return ""
	}
	return fmt.Sprintf("%s realm=%q", p.cfg.Authenticator.Scheme(), p.cfg.realm())
}
