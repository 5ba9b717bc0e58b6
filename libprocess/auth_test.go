package libprocess

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func hs256(t *testing.T, secret, claims string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func TestAuthenticationRealms(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("secure")
	p.SetRealm("rw")
	p.Route("whoami", Help{TLDR: "principal"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "principal="+req.Principal))
	})
	p.AuthenticatedRoute("token", "jwt", Help{TLDR: "jwt realm"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "principal="+req.Principal))
	})
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, rt)
	get := func(path, auth string) rawResponse {
		h := ""
		if auth != "" {
			h = "Authorization: " + auth + "\r\n"
		}
		c.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n" + h + "\r\n")
		return c.read()
	}
	// No authenticator installed: open, as in libprocess.
	if r := get("/secure/whoami", ""); r.Status != 200 || string(r.Body) != "principal=" {
		t.Fatalf("open realm: %d %q", r.Status, r.Body)
	}
	rt.SetAuthenticator("rw", NewBasicAuthenticator(map[string]string{"ops": "s3cret"}))
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	for _, bad := range []string{"", basic("ops", "wrong"), basic("nobody", "s3cret"), "Basic !!!", "Bearer x"} {
		r := get("/secure/whoami", bad)
		if r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Basic realm="rw"` {
			t.Fatalf("credentials %q: %d %q", bad, r.Status, r.Header.Get("WWW-Authenticate"))
		}
	}
	if r := get("/secure/whoami", basic("ops", "s3cret")); r.Status != 200 || string(r.Body) != "principal=ops" {
		t.Fatalf("good credentials: %d %q", r.Status, r.Body)
	}
	rt.SetAuthorizer("rw", func(principal string, req *Request) bool { return req.Method == "GET" && principal == "admin" })
	if r := get("/secure/whoami", basic("ops", "s3cret")); r.Status != 403 {
		t.Fatalf("unauthorized principal: %d", r.Status)
	}

	rt.SetAuthenticator("jwt", NewJWTAuthenticator([]byte("key")))
	future := time.Now().Add(time.Hour).Unix()
	good := hs256(t, "key", `{"sub":"agent","exp":`+itoa(future)+`}`)
	if r := get("/secure/token", "Bearer "+good); r.Status != 200 || string(r.Body) != "principal=agent" {
		t.Fatalf("good JWT: %d %q", r.Status, r.Body)
	}
	for name, tok := range map[string]string{
		"wrong key":  hs256(t, "other", `{"sub":"agent"}`),
		"expired":    hs256(t, "key", `{"sub":"agent","exp":1000}`),
		"no subject": hs256(t, "key", `{"exp":`+itoa(future)+`}`),
		"garbage":    "a.b",
		"alg none":   strings.Replace(good, good[:strings.IndexByte(good, '.')], base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)), 1),
	} {
		r := get("/secure/token", "Bearer "+tok)
		if r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="jwt"` {
			t.Fatalf("%s: %d %q", name, r.Status, r.Header.Get("WWW-Authenticate"))
		}
	}
	// Help names the authentication requirement.
	c.write("GET /help/secure/whoami HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n")
	if r := c.read(); !strings.Contains(string(r.Body), "### AUTHENTICATION ###") {
		t.Fatalf("help lacks AUTHENTICATION: %q", r.Body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A token whose "nbf" lies in the future is not valid yet.
func TestJWTNotBefore(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a := NewJWTAuthenticator([]byte("key"))
	a.now = func() time.Time { return now }
	auth := func(claims string) error {
		req := NewRequest(http.MethodGet, "/", http.Header{"Authorization": {"Bearer " + hs256(t, "key", claims)}})
		_, err := a.Authenticate(req)
		return err
	}
	if err := auth(`{"sub":"agent","nbf":` + itoa(now.Unix()+60) + `}`); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("nbf a minute ahead: %v, want ErrUnauthenticated", err)
	}
	if err := auth(`{"sub":"agent","nbf":"soon"}`); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("non-numeric nbf: %v, want ErrUnauthenticated", err)
	}
	for _, nbf := range []int64{now.Unix(), now.Unix() - 60} {
		if err := auth(`{"sub":"agent","nbf":` + itoa(nbf) + `}`); err != nil {
			t.Fatalf("nbf %d at %d: %v", nbf, now.Unix(), err)
		}
	}
}

// Basic secrets match only exactly, whatever the presented length.
func TestBasicSecretCompare(t *testing.T) {
	a := NewBasicAuthenticator(map[string]string{"ops": "s3cret", "empty": ""})
	try := func(user, pass string) error {
		req := NewRequest(http.MethodGet, "/", http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}})
		_, err := a.Authenticate(req)
		return err
	}
	for _, bad := range [][2]string{{"ops", "s3cre"}, {"ops", "s3crett"}, {"ops", ""}, {"ops", "S3cret"}, {"empty", "x"}, {"nobody", ""}} {
		if err := try(bad[0], bad[1]); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s:%s accepted", bad[0], bad[1])
		}
	}
	for _, good := range [][2]string{{"ops", "s3cret"}, {"empty", ""}} {
		if err := try(good[0], good[1]); err != nil {
			t.Errorf("%s:%s: %v", good[0], good[1], err)
		}
	}
	if !secretsEqual("a", "a") || secretsEqual("a", "ab") || secretsEqual("", "a") {
		t.Fatal("secretsEqual")
	}
}
