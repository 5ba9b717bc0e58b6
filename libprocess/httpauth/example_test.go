package httpauth_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/libprocess/httpauth"
)

// Routes of the realm "ops" need HTTP Basic credentials of a known
// principal; the route sees who called.
func ExampleNewBasic() {
	cfg := libprocess.DefaultConfig()
	cfg.IP = "127.0.0.1"
	rt, err := libprocess.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	}()
	rt.SetAuthenticator("ops", httpauth.NewBasic(map[string]string{"admin": "s3cret"}))

	p := libprocess.NewProcess("admin")
	p.AuthenticatedRoute("whoami", "ops", libprocess.Help{TLDR: "Names the caller."},
		func(req *libprocess.Request, respond libprocess.Responder) {
			respond(libprocess.TextResponse(http.StatusOK, req.Principal))
		})
	pid, err := rt.Spawn(p)
	if err != nil {
		log.Fatal(err)
	}

	for _, password := range []string{"wrong", "s3cret"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+pid.HostPort()+"/admin/whoami", nil)
		req.SetBasicAuth("admin", password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(password, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Output:
	// wrong 401 Basic realm="ops"
	// s3cret 200
}
