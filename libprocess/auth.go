package libprocess

import (
	"fmt"
	"net/http"
	"sync"
)

// Authenticator checks the credentials of requests to routes of one realm
// (docs/libprocess-wire.md §7). Authenticate returns the authenticated principal, or an error
// when the request carries no valid credentials; the runtime then answers
// 401 with a WWW-Authenticate challenge of Scheme for the realm.
// Implementations must be safe for concurrent use; package
// libprocess/httpauth has Mesos' Basic and JWT authenticators.
type Authenticator interface {
	Scheme() string // "Basic" or "Bearer"
	Authenticate(req *Request) (principal string, err error)
}

// Authorizer decides whether an authenticated principal may use a route;
// false answers 403 Forbidden. It must be safe for concurrent use.
type Authorizer func(principal string, req *Request) bool

// authRegistry holds the authenticators and authorizers per realm.
type authRegistry struct {
	mu    sync.RWMutex
	authn map[string]Authenticator
	authz map[string]Authorizer
}

func newAuthRegistry() *authRegistry {
	return &authRegistry{authn: make(map[string]Authenticator), authz: make(map[string]Authorizer)}
}

// SetAuthenticator installs a for routes of realm, replacing any earlier
// one; nil removes it. Routes of a realm with no authenticator are open, as
// in libprocess.
func (rt *Runtime) SetAuthenticator(realm string, a Authenticator) {
	rt.auth.mu.Lock()
	defer rt.auth.mu.Unlock()
	if a == nil {
		delete(rt.auth.authn, realm)
		return
	}
	rt.auth.authn[realm] = a
}

// SetAuthorizer installs an authorizer for routes of realm; nil removes it.
func (rt *Runtime) SetAuthorizer(realm string, z Authorizer) {
	rt.auth.mu.Lock()
	defer rt.auth.mu.Unlock()
	if z == nil {
		delete(rt.auth.authz, realm)
		return
	}
	rt.auth.authz[realm] = z
}

// check authenticates and authorizes req for realm. It returns the
// principal, or the response to answer instead.
func (a *authRegistry) check(realm string, req *Request) (string, *Response) {
	a.mu.RLock()
	authn, authz := a.authn[realm], a.authz[realm]
	a.mu.RUnlock()
	if authn == nil {
		return "", nil
	}
	principal, err := authn.Authenticate(req)
	if err != nil {
		r := TextResponse(http.StatusUnauthorized, "Unauthorized: "+err.Error())
		r.SetHeader("WWW-Authenticate", fmt.Sprintf("%s realm=%q", authn.Scheme(), realm))
		return "", &r
	}
	if authz != nil && !authz(principal, req) {
		r := TextResponse(http.StatusForbidden, "Forbidden: principal '"+principal+"' may not "+req.Method+" "+req.URL.Path)
		return "", &r
	}
	return principal, nil
}
