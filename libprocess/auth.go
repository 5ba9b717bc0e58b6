package libprocess

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Authenticator checks the credentials of requests to routes of one realm
// (spec 7). Authenticate returns the authenticated principal, or an error
// when the request carries no valid credentials; the runtime then answers
// 401 with a WWW-Authenticate challenge of Scheme for the realm.
// Implementations must be safe for concurrent use.
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
		r.Header.Set("WWW-Authenticate", fmt.Sprintf("%s realm=%q", authn.Scheme(), realm))
		return "", &r
	}
	if authz != nil && !authz(principal, req) {
		r := TextResponse(http.StatusForbidden, "Forbidden: principal '"+principal+"' may not "+req.Method+" "+req.URL.Path)
		return "", &r
	}
	return principal, nil
}

// BasicAuthenticator authenticates HTTP Basic credentials against a fixed
// set of principals and secrets, as Mesos' basic HTTP authenticator does.
type BasicAuthenticator struct {
	secrets map[string]string
}

// NewBasicAuthenticator returns an authenticator accepting exactly these
// principal → secret pairs.
func NewBasicAuthenticator(credentials map[string]string) *BasicAuthenticator {
	c := make(map[string]string, len(credentials))
	for k, v := range credentials {
		c[k] = v
	}
	return &BasicAuthenticator{secrets: c}
}

// Scheme implements Authenticator.
func (b *BasicAuthenticator) Scheme() string { return "Basic" }

// Authenticate implements Authenticator.
func (b *BasicAuthenticator) Authenticate(req *Request) (string, error) {
	h := req.Header().Get("Authorization")
	scheme, value, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", fmt.Errorf("%w: missing Basic credentials", ErrUnauthenticated)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		return "", fmt.Errorf("%w: malformed Basic credentials", ErrUnauthenticated)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	secret, known := b.secrets[user]
	// Compare even for unknown users so timing does not reveal them.
	match := secretsEqual(pass, secret)
	if !ok || !known || !match {
		return "", fmt.Errorf("%w: invalid credentials", ErrUnauthenticated)
	}
	return user, nil
}

// secretsEqual compares a presented secret with the stored one in time
// that depends on neither's content nor length: it compares their SHA-256
// digests, which always have the same length (ConstantTimeCompare on the
// secrets themselves returns early when the lengths differ).
func secretsEqual(presented, stored string) bool {
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(stored))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// JWTAuthenticator authenticates "Authorization: Bearer <JWT>" tokens
// signed with HS256 and a shared secret, as Mesos' JWT authenticator does.
// The principal is the token's "sub" claim. A token is rejected when its
// "exp" claim is not in the future or its "nbf" (not before) claim is in
// the future; there is no clock-skew allowance, so issuers and this host
// need synchronized clocks (as for "exp").
type JWTAuthenticator struct {
	secret []byte
	now    func() time.Time
}

// NewJWTAuthenticator returns an HS256 JWT authenticator for secret.
func NewJWTAuthenticator(secret []byte) *JWTAuthenticator {
	return &JWTAuthenticator{secret: append([]byte(nil), secret...), now: time.Now}
}

// Scheme implements Authenticator.
func (j *JWTAuthenticator) Scheme() string { return "Bearer" }

// Authenticate implements Authenticator.
func (j *JWTAuthenticator) Authenticate(req *Request) (string, error) {
	h := req.Header().Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: missing Bearer token", ErrUnauthenticated)
	}
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: malformed token", ErrUnauthenticated)
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeJWTPart(parts[0], &header); err != nil || header.Alg != "HS256" {
		return "", fmt.Errorf("%w: unsupported token header", ErrUnauthenticated)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", fmt.Errorf("%w: malformed signature", ErrUnauthenticated)
	}
	mac := hmac.New(sha256.New, j.secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "", fmt.Errorf("%w: bad signature", ErrUnauthenticated)
	}
	var claims struct {
		Sub string   `json:"sub"`
		Exp *float64 `json:"exp"`
		Nbf *float64 `json:"nbf"`
	}
	if err := decodeJWTPart(parts[1], &claims); err != nil {
		return "", fmt.Errorf("%w: malformed claims", ErrUnauthenticated)
	}
	now := float64(j.now().Unix())
	if claims.Exp != nil && now >= *claims.Exp {
		return "", fmt.Errorf("%w: token expired", ErrUnauthenticated)
	}
	if claims.Nbf != nil && now < *claims.Nbf {
		return "", fmt.Errorf("%w: token not valid yet", ErrUnauthenticated)
	}
	if claims.Sub == "" {
		return "", fmt.Errorf("%w: token has no subject", ErrUnauthenticated)
	}
	return claims.Sub, nil
}

func decodeJWTPart(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
