package httpauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procpanda/procpanda/internal/runtimetest"
	"github.com/procpanda/procpanda/libprocess"
)

func hs256(secret, claims string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// authenticate runs a against a request carrying this Authorization
// header (none when empty).
func authenticate(a libprocess.Authenticator, authorization string) (string, error) {
	h := http.Header{}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	return a.Authenticate(libprocess.NewRequest(http.MethodGet, "/", h))
}

// Basic secrets match only exactly, whatever the presented length; every
// rejection wraps ErrUnauthenticated.
func TestBasic(t *testing.T) {
	creds := map[string]string{"ops": "s3cret", "empty": ""}
	a := NewBasic(creds)
	creds["ops"] = "changed" // NewBasic keeps a copy
	for _, bad := range []string{
		"", basic("ops", "s3cre"), basic("ops", "s3crett"), basic("ops", ""), basic("ops", "S3cret"),
		basic("empty", "x"), basic("nobody", ""), basic("nobody", "s3cret"), basic("ops", "changed"),
		"Basic !!!", "Basic " + base64.StdEncoding.EncodeToString([]byte("ops")), "Bearer x", "Basic",
	} {
		if p, err := authenticate(a, bad); !errors.Is(err, libprocess.ErrUnauthenticated) {
			t.Errorf("%q: principal %q, error %v; want ErrUnauthenticated", bad, p, err)
		}
	}
	for _, good := range [][2]string{{"ops", "s3cret"}, {"empty", ""}} {
		if p, err := authenticate(a, basic(good[0], good[1])); err != nil || p != good[0] {
			t.Errorf("%s:%s: principal %q, error %v", good[0], good[1], p, err)
		}
	}
	if p, err := authenticate(a, "basic "+base64.StdEncoding.EncodeToString([]byte("ops:s3cret"))); err != nil || p != "ops" {
		t.Errorf("lower-case scheme: principal %q, error %v", p, err)
	}
	if !secretsEqual("a", "a") || secretsEqual("a", "ab") || secretsEqual("", "a") {
		t.Fatal("secretsEqual")
	}
	if a.Scheme() != "Basic" {
		t.Fatalf("scheme %q", a.Scheme())
	}
}

// JWT accepts HS256 tokens signed with its secret that carry a subject
// and have not expired.
func TestJWT(t *testing.T) {
	a := NewJWT([]byte("key"))
	future := time.Now().Add(time.Hour).Unix()
	good := hs256("key", `{"sub":"agent","exp":`+itoa(future)+`}`)
	if p, err := authenticate(a, "Bearer "+good); err != nil || p != "agent" {
		t.Fatalf("good token: principal %q, error %v", p, err)
	}
	for name, auth := range map[string]string{
		"no header":  "",
		"basic":      basic("agent", "key"),
		"wrong key":  "Bearer " + hs256("other", `{"sub":"agent"}`),
		"expired":    "Bearer " + hs256("key", `{"sub":"agent","exp":1000}`),
		"no subject": "Bearer " + hs256("key", `{"exp":`+itoa(future)+`}`),
		"garbage":    "Bearer a.b",
		"bad sig":    "Bearer " + good[:strings.LastIndexByte(good, '.')] + ".!!",
		"alg none":   "Bearer " + strings.Replace(good, good[:strings.IndexByte(good, '.')], base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)), 1),
	} {
		if p, err := authenticate(a, auth); !errors.Is(err, libprocess.ErrUnauthenticated) {
			t.Errorf("%s: principal %q, error %v; want ErrUnauthenticated", name, p, err)
		}
	}
	if a.Scheme() != "Bearer" {
		t.Fatalf("scheme %q", a.Scheme())
	}
}

// A token whose "nbf" lies in the future is not valid yet.
func TestJWTNotBefore(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a := NewJWT([]byte("key"))
	a.now = func() time.Time { return now }
	auth := func(claims string) error {
		_, err := authenticate(a, "Bearer "+hs256("key", claims))
		return err
	}
	if err := auth(`{"sub":"agent","nbf":` + itoa(now.Unix()+60) + `}`); !errors.Is(err, libprocess.ErrUnauthenticated) {
		t.Fatalf("nbf a minute ahead: %v, want ErrUnauthenticated", err)
	}
	if err := auth(`{"sub":"agent","nbf":"soon"}`); !errors.Is(err, libprocess.ErrUnauthenticated) {
		t.Fatalf("non-numeric nbf: %v, want ErrUnauthenticated", err)
	}
	for _, nbf := range []int64{now.Unix(), now.Unix() - 60} {
		if err := auth(`{"sub":"agent","nbf":` + itoa(nbf) + `}`); err != nil {
			t.Fatalf("nbf %d at %d: %v", nbf, now.Unix(), err)
		}
	}
}

// Installed on a runtime, both authenticate real HTTP requests: 401 with
// their scheme's challenge, else the route sees the principal.
func TestOnRuntime(t *testing.T) {
	rt := runtimetest.Start(t)
	p := libprocess.NewProcess("secure")
	whoami := func(req *libprocess.Request, respond libprocess.Responder) {
		respond(libprocess.TextResponse(http.StatusOK, req.Principal))
	}
	p.AuthenticatedRoute("basic", "ops", libprocess.Help{TLDR: "Basic realm."}, whoami)
	p.AuthenticatedRoute("jwt", "agents", libprocess.Help{TLDR: "JWT realm."}, whoami)
	pid, err := rt.Spawn(p)
	if err != nil {
		t.Fatal(err)
	}
	rt.SetAuthenticator("ops", NewBasic(map[string]string{"admin": "pw"}))
	rt.SetAuthenticator("agents", NewJWT([]byte("key")))

	get := func(route, authorization string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+pid.HostPort()+"/secure/"+route, nil)
		if err != nil {
			t.Fatal(err)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
	}
	token := "Bearer " + hs256("key", `{"sub":"agent-1"}`)
	for _, c := range []struct {
		route, auth, challenge string
	}{
		{"basic", "", `Basic realm="ops"`},
		{"basic", basic("admin", "wrong"), `Basic realm="ops"`},
		{"basic", token, `Basic realm="ops"`},
		{"jwt", "", `Bearer realm="agents"`},
		{"jwt", basic("admin", "pw"), `Bearer realm="agents"`},
	} {
		if status, challenge, _ := get(c.route, c.auth); status != http.StatusUnauthorized || challenge != c.challenge {
			t.Errorf("%s with %q: %d %q, want 401 %q", c.route, c.auth, status, challenge, c.challenge)
		}
	}
	if status, _, body := get("basic", basic("admin", "pw")); status != http.StatusOK || body != "admin" {
		t.Errorf("basic with good credentials: %d %q", status, body)
	}
	if status, _, body := get("jwt", token); status != http.StatusOK || body != "agent-1" {
		t.Errorf("jwt with a good token: %d %q", status, body)
	}
}

// signed returns a token with this exact header and claims JSON, signed
// with key.
func signed(key, header, claims string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(signing))
	return "Bearer " + signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// Claim and header names match exactly: a validly signed token cannot
// smuggle a second principal under another spelling or a duplicate name,
// and an unknown critical extension is refused (RFC 7515 §4.1.11).
func TestJWTStrictNames(t *testing.T) {
	a := NewJWT([]byte("key"))
	const hdr = `{"alg":"HS256","typ":"JWT"}`
	for name, tc := range map[string]struct {
		header, claims string
		want           string // principal; "" means refused
	}{
		"exact sub":                 {hdr, `{"sub":"monitor"}`, "monitor"},
		"upper-case SUB beside sub": {hdr, `{"sub":"monitor","SUB":"ops"}`, "monitor"},
		"Sub without sub":           {hdr, `{"Sub":"ops"}`, ""},
		"duplicate sub":             {hdr, `{"sub":"monitor","sub":"ops"}`, ""},
		"duplicate exp":             {hdr, `{"sub":"a","exp":1,"exp":99999999999}`, ""},
		"EXP is not exp":            {hdr, `{"sub":"a","EXP":1}`, "a"},
		"non-string sub":            {hdr, `{"sub":5}`, ""},
		"empty sub":                 {hdr, `{"sub":""}`, ""},
		"string exp":                {hdr, `{"sub":"a","exp":"99999999999"}`, ""},
		"crit header":               {`{"alg":"HS256","crit":["exp"],"exp":1}`, `{"sub":"a"}`, ""},
		"empty crit":                {`{"alg":"HS256","crit":[]}`, `{"sub":"a"}`, ""},
		"duplicate alg":             {`{"alg":"none","alg":"HS256"}`, `{"sub":"a"}`, ""},
		"ALG is not alg":            {`{"ALG":"HS256"}`, `{"sub":"a"}`, ""},
		"trailing data in claims":   {hdr, `{"sub":"a"}{"sub":"b"}`, ""},
		"claims not an object":      {hdr, `["sub","a"]`, ""},
		"escaped alg":               {`{"alg":"HS\u0032\u00356"}`, `{"sub":"a"}`, "a"},
	} {
		p, err := authenticate(a, signed("key", tc.header, tc.claims))
		switch {
		case tc.want == "" && !errors.Is(err, libprocess.ErrUnauthenticated):
			t.Errorf("%s: principal %q, error %v; want ErrUnauthenticated", name, p, err)
		case tc.want != "" && (err != nil || p != tc.want):
			t.Errorf("%s: principal %q, error %v; want %q", name, p, err, tc.want)
		}
	}
}
