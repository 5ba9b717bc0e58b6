package libprocess

import (
	"fmt"
	"strings"
	"testing"
)

// tokenAuth is a test authenticator: "Authorization: <scheme> <token>"
// authenticates the principal the token maps to. Package httpauth has the
// real ones.
type tokenAuth struct {
	scheme string
	tokens map[string]string
}

func (a tokenAuth) Scheme() string { return a.scheme }

func (a tokenAuth) Authenticate(req *Request) (string, error) {
	scheme, token, _ := strings.Cut(req.Header().Get("Authorization"), " ")
	if p, ok := a.tokens[token]; ok && scheme == a.scheme {
		return p, nil
	}
	return "", fmt.Errorf("%w: unknown token", ErrUnauthenticated)
}

// Routes of a realm answer 401 with the realm's challenge until the realm's
// authenticator accepts the request, 403 when its authorizer refuses the
// principal; routes are open while a realm has no authenticator.
func TestAuthenticationRealms(t *testing.T) {
	rt := startRuntime(t)
	p := NewProcess("secure")
	p.SetRealm("rw")
	p.Route("whoami", Help{TLDR: "principal"}, func(req *Request, respond Responder) {
		respond(TextResponse(200, "principal="+req.Principal))
	})
	p.AuthenticatedRoute("token", "bearer", Help{TLDR: "bearer realm"}, func(req *Request, respond Responder) {
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
	rt.SetAuthenticator("rw", tokenAuth{"Basic", map[string]string{"ops-token": "ops"}})
	for _, bad := range []string{"", "Basic wrong", "Bearer ops-token"} {
		r := get("/secure/whoami", bad)
		if r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Basic realm="rw"` {
			t.Fatalf("credentials %q: %d %q", bad, r.Status, r.Header.Get("WWW-Authenticate"))
		}
	}
	if r := get("/secure/whoami", "Basic ops-token"); r.Status != 200 || string(r.Body) != "principal=ops" {
		t.Fatalf("good credentials: %d %q", r.Status, r.Body)
	}
	// The route's own realm, not the process' default, decides.
	if r := get("/secure/token", "Basic ops-token"); r.Status != 200 || string(r.Body) != "principal=" {
		t.Fatalf("route in a realm without authenticator: %d %q", r.Status, r.Body)
	}
	rt.SetAuthorizer("rw", func(principal string, req *Request) bool { return req.Method == "GET" && principal == "admin" })
	if r := get("/secure/whoami", "Basic ops-token"); r.Status != 403 {
		t.Fatalf("unauthorized principal: %d", r.Status)
	}
	rt.SetAuthorizer("rw", nil)
	if r := get("/secure/whoami", "Basic ops-token"); r.Status != 200 {
		t.Fatalf("authorizer removed: %d", r.Status)
	}

	rt.SetAuthenticator("bearer", tokenAuth{"Bearer", map[string]string{"agent-token": "agent"}})
	if r := get("/secure/token", "Bearer agent-token"); r.Status != 200 || string(r.Body) != "principal=agent" {
		t.Fatalf("good token: %d %q", r.Status, r.Body)
	}
	if r := get("/secure/token", "Bearer ops-token"); r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="bearer"` {
		t.Fatalf("token of another realm: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	rt.SetAuthenticator("bearer", nil)
	if r := get("/secure/token", ""); r.Status != 200 {
		t.Fatalf("authenticator removed: %d", r.Status)
	}
	// Help names the authentication requirement.
	c.write("GET /help/secure/whoami HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n")
	if r := c.read(); !strings.Contains(string(r.Body), "### AUTHENTICATION ###") {
		t.Fatalf("help lacks AUTHENTICATION: %q", r.Body)
	}
}
