package pkgpanda

import (
	"net/http"
	"testing"
	"time"
)

// TestRoutesOutliveTheRuntimeDefaultDeadline: the runtime answers 504 to a
// route that has not answered by its deadline; pkgpanda's routes set their
// own, sized from their subprocess timeouts, so a CLI run longer than the
// runtime's default still answers.
func TestRoutesOutliveTheRuntimeDefaultDeadline(t *testing.T) {
	e := newEnv(t, envOpt{delay: 600 * time.Millisecond, routeTimeout: 200 * time.Millisecond})
	for _, path := range []string{"/repository/", "/list.json", "/active/"} {
		if r := e.do(http.MethodGet, path, nil); r.status != http.StatusOK {
			t.Errorf("GET %s with a 600ms CLI run and a 200ms runtime default: %v", path, r)
		}
	}
	if r := e.do(http.MethodPut, "/active/", []byte(`["mesos--0.22.0","mesos-config--ffddcfb53168d42f92e4771c6f8a8a9a818fd6b8"]`), "Content-Type", "application/json"); r.status != http.StatusNoContent {
		t.Errorf("PUT /active/ with 600ms CLI runs and a 200ms runtime default: %v", r)
	}
}

// TestRouteDeadlineCoversRunsAndLock: every route's deadline covers two
// runs of its slowest actor, their kill grace and the repository lock.
func TestRouteDeadlineCoversRunsAndLock(t *testing.T) {
	c := Config{Limits: map[string]RouteLimits{RouteFetch: {Timeout: time.Hour}}, KillGrace: time.Second, LockTimeout: 10 * time.Second}
	if got, min := c.routeDeadline(RouteRepository), 2*(time.Hour+time.Second)+10*time.Second; got < min {
		t.Errorf("repository deadline %v < %v", got, min)
	}
	if got, min := c.routeDeadline(RouteListJSON), 2*(DefaultTimeout+time.Second)+10*time.Second; got < min || got >= time.Hour {
		t.Errorf("list.json deadline %v: want at least %v and not the fetch route's hour", got, min)
	}
}
