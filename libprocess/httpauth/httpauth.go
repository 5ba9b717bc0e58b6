// Package httpauth holds the HTTP authenticators Mesos ships, for
// libprocess.Runtime.SetAuthenticator: Basic checks HTTP Basic credentials
// against a fixed set of principals, JWT checks HS256-signed bearer
// tokens.
//
//	rt.SetAuthenticator("ops", httpauth.NewBasic(map[string]string{"admin": secret}))
//	p.AuthenticatedRoute("state", "ops", help, handler) // req.Principal is "admin"
//
// Both return errors wrapping libprocess.ErrUnauthenticated; the runtime
// answers them with 401 and a challenge of the authenticator's scheme.
package httpauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/procpanda/procpanda/libprocess"
)

// Basic authenticates HTTP Basic credentials against a fixed set of
// principals and secrets, as Mesos' basic HTTP authenticator does. It is
// safe for concurrent use.
type Basic struct {
	secrets map[string]string
}

// NewBasic returns an authenticator accepting exactly these principal →
// secret pairs; it keeps a copy of credentials.
func NewBasic(credentials map[string]string) *Basic {
	c := make(map[string]string, len(credentials))
	for k, v := range credentials {
		c[k] = v
	}
	return &Basic{secrets: c}
}

// Scheme implements libprocess.Authenticator.
func (b *Basic) Scheme() string { return "Basic" }

// Authenticate implements libprocess.Authenticator.
func (b *Basic) Authenticate(req *libprocess.Request) (string, error) {
	h := req.Header().Get("Authorization")
	scheme, value, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", fmt.Errorf("%w: missing Basic credentials", libprocess.ErrUnauthenticated)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		return "", fmt.Errorf("%w: malformed Basic credentials", libprocess.ErrUnauthenticated)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	secret, known := b.secrets[user]
	// Compare even for unknown users so timing does not reveal them.
	match := secretsEqual(pass, secret)
	if !ok || !known || !match {
		return "", fmt.Errorf("%w: invalid credentials", libprocess.ErrUnauthenticated)
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

// JWT authenticates "Authorization: Bearer <JWT>" tokens signed with
// HS256 and a shared secret, as Mesos' JWT authenticator does.
// The principal is the token's "sub" claim. A token is rejected when its
// "exp" claim is not in the future or its "nbf" (not before) claim is in
// the future; there is no clock-skew allowance, so issuers and this host
// need synchronized clocks (as for "exp"). It is safe for concurrent use.
type JWT struct {
	secret []byte
	now    func() time.Time
}

// NewJWT returns an HS256 JWT authenticator for secret.
func NewJWT(secret []byte) *JWT {
	return &JWT{secret: append([]byte(nil), secret...), now: time.Now}
}

// Scheme implements libprocess.Authenticator.
func (j *JWT) Scheme() string { return "Bearer" }

// Authenticate implements libprocess.Authenticator.
func (j *JWT) Authenticate(req *libprocess.Request) (string, error) {
	h := req.Header().Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: missing Bearer token", libprocess.ErrUnauthenticated)
	}
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: malformed token", libprocess.ErrUnauthenticated)
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeJWTPart(parts[0], &header); err != nil || header.Alg != "HS256" {
		return "", fmt.Errorf("%w: unsupported token header", libprocess.ErrUnauthenticated)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", fmt.Errorf("%w: malformed signature", libprocess.ErrUnauthenticated)
	}
	mac := hmac.New(sha256.New, j.secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "", fmt.Errorf("%w: bad signature", libprocess.ErrUnauthenticated)
	}
	var claims struct {
		Sub string   `json:"sub"`
		Exp *float64 `json:"exp"`
		Nbf *float64 `json:"nbf"`
	}
	if err := decodeJWTPart(parts[1], &claims); err != nil {
		return "", fmt.Errorf("%w: malformed claims", libprocess.ErrUnauthenticated)
	}
	now := float64(j.now().Unix())
	if claims.Exp != nil && now >= *claims.Exp {
		return "", fmt.Errorf("%w: token expired", libprocess.ErrUnauthenticated)
	}
	if claims.Nbf != nil && now < *claims.Nbf {
		return "", fmt.Errorf("%w: token not valid yet", libprocess.ErrUnauthenticated)
	}
	if claims.Sub == "" {
		return "", fmt.Errorf("%w: token has no subject", libprocess.ErrUnauthenticated)
	}
	return claims.Sub, nil
}

// decodeJWTPart decodes one base64url part of a token as JSON into v.
func decodeJWTPart(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Both are libprocess authenticators.
var (
	_ libprocess.Authenticator = (*Basic)(nil)
	_ libprocess.Authenticator = (*JWT)(nil)
)
