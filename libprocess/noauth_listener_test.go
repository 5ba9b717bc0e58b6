package libprocess

import (
	"bufio"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// With NoListener the runtime binds no TCP port: its address is the
// advertised one (127.0.0.1:0 by default), and it serves HTTP on the
// listeners given to ServeHTTPOn.
func TestNoListener(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.NoListener = true; c.Port = 1 })
	if got := rt.Addr().HostPort(); got != "127.0.0.1:0" {
		t.Fatalf("Addr = %s, want 127.0.0.1:0", got)
	}
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.ServeHTTPOn(ln); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("GET /help HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /help on the socket: %d", resp.StatusCode)
	}
}

// staticAuth accepts exactly one Basic credential.
type staticAuth struct{ user, pass string }

func (staticAuth) Scheme() string { return "Basic" }
func (a staticAuth) Authenticate(req *Request) (string, error) {
	u, p, ok := parseBasic(req.Header().Get("Authorization"))
	if !ok || u != a.user || p != a.pass {
		return "", errors.Join(ErrUnauthenticated, errors.New("bad credentials"))
	}
	return u, nil
}

func parseBasic(h string) (string, string, bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || h[:len(prefix)] != prefix {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(h[len(prefix):])
	if err != nil {
		return "", "", false
	}
	for i := range b {
		if b[i] == ':' {
			return string(b[:i]), string(b[i+1:]), true
		}
	}
	return "", "", false
}

// ReadonlyRealm authenticates /metrics/snapshot and /metrics/prometheus
// once the realm has an authenticator, as C++ libprocess does with its
// read-only realm; /help and /__processes__ stay open, as in C++.
func TestReadonlyRealm(t *testing.T) {
	rt := startRuntime(t, func(c *Config) { c.ReadonlyRealm = "ro" })
	get := func(path, auth string) int {
		c := dialRaw(t, rt)
		h := "GET " + path + " HTTP/1.1\r\nHost: x\r\n"
		if auth != "" {
			h += "Authorization: " + auth + "\r\n"
		}
		c.write(h + "\r\n")
		return c.read().Status
	}
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:pw"))
	if s := get("/metrics/snapshot", ""); s != 200 {
		t.Fatalf("before an authenticator is installed: %d, want 200", s)
	}
	rt.SetAuthenticator("ro", staticAuth{"ops", "pw"})
	for _, c := range []struct {
		path, auth string
		want       int
	}{
		{"/metrics/snapshot", "", 401},
		{"/metrics/prometheus", "", 401},
		{"/metrics/snapshot", "Basic b3BzOndyb25n", 401},
		{"/metrics/snapshot", good, 200},
		{"/metrics/prometheus", good, 200},
		{"/help", "", 200},
		{"/help/metrics", "", 200},
		{"/__processes__", "", 200},
	} {
		if s := get(c.path, c.auth); s != c.want {
			t.Errorf("GET %s (auth %q): %d, want %d", c.path, c.auth, s, c.want)
		}
	}
}
