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
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// The principal is exactly the token's "sub" claim, a non-empty string.
// Header and claim names are matched exactly (case matters); a token whose
// header or claims name a member twice, whose header has "crit" (no
// extension is understood), or whose "exp"/"nbf" are not numbers is
// refused. A token is rejected when its
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
	if err := j.verify(parts); err != nil {
		return "", fmt.Errorf("%w: %v", libprocess.ErrUnauthenticated, err)
	}
	claims, err := decodeJWTPart(parts[1])
	if err != nil {
		return "", fmt.Errorf("%w: malformed claims: %v", libprocess.ErrUnauthenticated, err)
	}
	sub, err := j.principal(claims)
	if err != nil {
		return "", fmt.Errorf("%w: %v", libprocess.ErrUnauthenticated, err)
	}
	return sub, nil
}

// verify checks a token's header and its HS256 signature.
func (j *JWT) verify(parts []string) error {
	header, err := decodeJWTPart(parts[0])
	if err != nil {
		return fmt.Errorf("malformed token header: %v", err)
	}
	var alg string
	if raw, ok := header["alg"]; !ok || json.Unmarshal(raw, &alg) != nil || alg != "HS256" {
		return errors.New("unsupported token header")
	}
	// RFC 7515 §4.1.11: a recipient that does not understand every
	// extension "crit" names must reject the token; this one understands
	// none.
	if _, ok := header["crit"]; ok {
		return errors.New("token header names critical extensions")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return errors.New("malformed signature")
	}
	mac := hmac.New(sha256.New, j.secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return errors.New("bad signature")
	}
	return nil
}

// principal checks a verified token's time claims and returns its
// subject.
func (j *JWT) principal(claims map[string]json.RawMessage) (string, error) {
	now := float64(j.now().Unix())
	if exp, ok, err := numericClaim(claims, "exp"); err != nil {
		return "", err
	} else if ok && now >= exp {
		return "", errors.New("token expired")
	}
	if nbf, ok, err := numericClaim(claims, "nbf"); err != nil {
		return "", err
	} else if ok && now < nbf {
		return "", errors.New("token not valid yet")
	}
	var sub string
	if raw, ok := claims["sub"]; !ok || json.Unmarshal(raw, &sub) != nil || sub == "" {
		return "", errors.New(`token has no subject (a non-empty string "sub")`)
	}
	return sub, nil
}

// numericClaim returns the claim name of claims as a number, whether it
// was present, or an error when it is present but not a JSON number.
func numericClaim(claims map[string]json.RawMessage, name string) (float64, bool, error) {
	raw, ok := claims[name]
	if !ok {
		return 0, false, nil
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, false, fmt.Errorf("claim %q is not a number", name)
	}
	return v, true, nil
}

// decodeJWTPart decodes one base64url part of a token: a JSON object,
// returned by member name. Names are matched exactly, never by case (a
// struct-tagged json.Unmarshal would take "SUB" or "Sub" for "sub", and
// the last of duplicate names); an object that names a member twice is
// refused, as RFC 7515 §4 and RFC 7519 §4 allow ("MUST either reject"),
// so that no two readers of one token can disagree on its claims.
// Trailing data after the object is refused too.
func decodeJWTPart(s string) (map[string]json.RawMessage, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64url: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	members := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("member %q: %w", name, err)
		}
		if _, dup := members[name]; dup {
			return nil, fmt.Errorf("member %q appears twice", name)
		}
		members[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON object")
	}
	return members, nil
}

// Both are libprocess authenticators.
var (
	_ libprocess.Authenticator = (*Basic)(nil)
	_ libprocess.Authenticator = (*JWT)(nil)
)
