package pkgpanda

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// TestOperationTableIsComplete walks the operation table (as
// TestOperationTable does for names, actors and locks): every operation
// has a prepare, a command (argv, or a documented reason to run none)
// whose argv builds and names the command its errors name, a parse, a
// status mapping, a success status, a body that matches it, and help;
// and the front-end fields agree with each other.
func TestOperationTableIsComplete(t *testing.T) {
	ops := operationTable()
	tool := cli.Tool{Path: "/opt/pkgpanda"}
	id := cli.ID{Name: "mesos", Version: "0.22.0"}
	for op := range ops {
		s := &ops[op] // names and actors: TestOperationTable
		if s.prepare == nil {
			t.Errorf("%s: no prepare", s.name)
		}
		if s.parse == nil {
			t.Errorf("%s: no parse", s.name)
		}
		switch {
		case s.argv == nil && s.noCommand == "":
			t.Errorf("%s: no argv, and no reason given for running no command", s.name)
		case s.argv != nil && s.noCommand != "":
			t.Errorf("%s: has an argv but says it runs no command", s.name)
		case s.argv == nil && (s.perPackage || s.stream != streamNone || s.cached):
			t.Errorf("%s: runs no command but is per-package, streamed or cached", s.name)
		case s.argv != nil:
			in := &opArgs{ids: []cli.ID{id}, raw: []string{id.String()}, url: "https://example.com/repo",
				pkg: pkgFile{id: id, path: filepath.Join(t.TempDir(), id.String()+".tar.xz")}}
			argv, err := s.argv(tool, in)
			if err != nil {
				t.Errorf("%s: argv: %v", s.name, err)
				break
			}
			want := strings.Fields(s.cmd)
			if len(want) == 0 || len(argv) < 1+len(want) || argv[0] != tool.Path || !slices.Equal(argv[1:1+len(want)], want) {
				t.Errorf("%s: argv %q does not run `pkgpanda %s`", s.name, argv, s.cmd)
			}
		}
		if s.cached && s.perPackage {
			t.Errorf("%s: a cached command runs once", s.name)
		}
		if m := s.statuses; m.validation == 0 || m.pkg == 0 || m.toolErr == 0 {
			t.Errorf("%s: incomplete status mapping %+v", s.name, m)
		}
		switch s.okStatus {
		case http.StatusOK:
			if s.body == nil {
				t.Errorf("%s: answers 200 with no body renderer", s.name)
			}
		case http.StatusNoContent:
			if s.body != nil {
				t.Errorf("%s: answers 204 but has a body renderer", s.name)
			}
		default:
			t.Errorf("%s: success status %d, want 200 or 204", s.name, s.okStatus)
		}
		if s.help.summary == "" || s.help.usage == "" || s.help.answers == "" {
			t.Errorf("%s: incomplete help %+v", s.name, s.help)
		}
		if !strings.Contains(s.help.usage, "/pkgpanda/"+s.actor) {
			t.Errorf("%s: help usage %q is not on its route /pkgpanda/%s", s.name, s.help.usage, s.actor)
		}
		if (s.path == pathNone) != (s.method == "") {
			t.Errorf("%s: path %d with method %q", s.name, s.path, s.method)
		}
		if s.path != pathNone && !strings.HasPrefix(s.help.usage, s.method+" ") {
			t.Errorf("%s: help usage %q is not its method %s", s.name, s.help.usage, s.method)
		}
		if s.hasCall && s.maxIDs >= 0 && s.maxIDs < s.minIDs {
			t.Errorf("%s: ids bounded by %d..%d", s.name, s.minIDs, s.maxIDs)
		}
		if s.stage != nil && !s.mutates {
			t.Errorf("%s: a stage outside the locks is for mutations", s.name)
		}
	}
}

// TestHelpComesFromTheTable: /help/pkgpanda/<route> shows, for every
// operation of the route, the table's summary, usage and answers; the
// route index shows the summaries, and api/v1 lists every call.
func TestHelpComesFromTheTable(t *testing.T) {
	e := newEnv(t, envOpt{})
	resp, err := http.Get("http://" + e.rt.Addr().HostPort() + "/help?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var index struct {
		Processes []struct {
			ID        string `json:"id"`
			Endpoints []struct {
				Name string `json:"name"`
				Text string `json:"text"`
			} `json:"endpoints"`
		} `json:"processes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&index); err != nil {
		t.Fatal(err)
	}
	text := map[string]string{}
	for _, p := range index.Processes {
		if p.ID == processID {
			for _, ep := range p.Endpoints {
				text[strings.TrimPrefix(ep.Name, "/")] = ep.Text
			}
		}
	}
	for op := range e.p.ops {
		s := &e.p.ops[op]
		got, ok := text[s.actor]
		if !ok {
			t.Errorf("%s: no help for route %s", s.name, s.actor)
			continue
		}
		for _, want := range []string{s.help.summary, s.help.usage, s.help.answers} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: the help of /%s lacks %q:\n%s", s.name, s.actor, want, got)
			}
		}
		if api := text[routeAPIv1]; s.hasCall && (!strings.Contains(api, s.call.String()+" ") || !strings.Contains(api, " ("+s.help.usage+": "+s.help.summary+")")) {
			t.Errorf("%s: the help of /%s does not list call %s", s.name, routeAPIv1, s.call)
		}
	}
	for _, route := range RouteNames() {
		if _, ok := text[route]; !ok {
			t.Errorf("route %s has no help", route)
		}
	}
}
