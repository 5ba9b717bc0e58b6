package libprocess

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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
