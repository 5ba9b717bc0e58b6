package pkgpanda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	"github.com/procpanda/procpanda/processes/pkgpanda/subprocess"
)

// statusMap maps the tool's error kinds to HTTP statuses for one
// operation. Usage errors, unclassified failures, output that breaks the
// ABI and failures to start the tool are 502 everywhere; a timeout is 504.
type statusMap struct {
	validation, pkg, toolErr int
	// other, if non-zero, replaces 502 for a non-zero exit without a
	// classified error line (a failed check exits 1 that way).
	other int
}

// cliStatuses is the mapping of the CLI-surface routes.
func cliStatuses() statusMap {
	return statusMap{validation: http.StatusConflict, pkg: http.StatusNotFound, toolErr: http.StatusInternalServerError}
}

// readStatuses maps a failed `list` or `active`: whatever the tool
// reports, the repository or the install cannot be read, which is the
// server's failure (a malformed repository folder makes `list` raise a
// validation error).
func readStatuses() statusMap {
	return statusMap{validation: http.StatusInternalServerError, pkg: http.StatusInternalServerError, toolErr: http.StatusInternalServerError}
}

// failed builds a failure response.
func failed(status int, format string, args ...any) *PkgpandaResponse {
	return &PkgpandaResponse{Status: int32(status), Error: fmt.Sprintf(format, args...)}
}

// run runs argv on the actor's runner and reports the run. stream, if
// non-nil, receives stdout as it comes (Stream); otherwise stdout is
// collected (Output).
func (p *Process) run(ctx context.Context, a *actor, argv []string, stream io.Writer, policy subprocess.WriteErrorPolicy) (*subprocess.Result, error) {
	var res *subprocess.Result
	var err error
	runner := a.runner
	if len(a.inherit) > 0 {
		r := *a.runner
		r.ExtraFiles = a.inherit
		runner = &r
	}
	if stream != nil {
		res, err = runner.Stream(ctx, argv, stream, policy)
	} else {
		res, err = runner.Output(ctx, argv)
	}
	if a.runs != nil {
		a.runs.Inc()
	}
	a.countExit(res)
	if a.audit != nil {
		a.audit.addRun(argv, res, err)
	}
	ev := p.log.Debug()
	if err != nil {
		if a.fails != nil {
			a.fails.Inc()
		}
		ev = p.log.Warn().Err(err)
	}
	ev = ev.Str("route", a.route).Strs("argv", argv)
	if res != nil {
		ev = ev.Int("exit", res.ExitCode).Dur("duration", res.Duration).Int64("stdout_bytes", res.StdoutBytes).
			Str("killed", res.Killed.String())
		if err != nil {
			ev = ev.Bytes("stderr", res.Stderr)
		}
	}
	ev.Msg("pkgpanda run")
	if p.cfg.OnRun != nil {
		p.cfg.OnRun(RunInfo{Route: a.route, Argv: argv, Result: res, Err: err})
	}
	return res, err
}

// runFailure turns a failed run into a response, classifying the tool's
// own message by kind.
func runFailure(res *subprocess.Result, err error, m statusMap) *PkgpandaResponse {
	var exit *subprocess.ExitError
	switch {
	case errors.Is(err, subprocess.ErrTimeout):
		return failed(http.StatusGatewayTimeout, "pkgpanda timed out")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return failed(http.StatusServiceUnavailable, "cancelled: the client went away or pkgpanda is shutting down")
	case errors.As(err, &exit) && res != nil:
		var te *cli.ToolError
		if cerr := cli.Classify(res.ExitCode, res.Stdout, res.Stderr); errors.As(cerr, &te) {
			switch te.Kind {
			case cli.KindValidation:
				return failed(m.validation, "%s", te.Message)
			case cli.KindPackage:
				return failed(m.pkg, "%s", te.Message)
			case cli.KindError:
				return failed(m.toolErr, "%s", te.Message)
			}
			status := http.StatusBadGateway
			if m.other != 0 && te.Kind == cli.KindOther {
				status = m.other
			}
			return failed(status, "pkgpanda failed (%s, exit %d): %s", te.Kind, te.ExitCode, te.Message)
		}
		return failed(http.StatusBadGateway, "pkgpanda failed: %v", err)
	}
	return failed(http.StatusBadGateway, "running pkgpanda: %v", err)
}

// collect runs a command with collected stdout; a failure comes back as a
// response.
func (p *Process) collect(ctx context.Context, a *actor, argv []string, argvErr error, m statusMap) (*subprocess.Result, *PkgpandaResponse) {
	if argvErr != nil {
		return nil, failed(http.StatusBadRequest, "%v", argvErr)
	}
	res, err := p.run(ctx, a, argv, nil, subprocess.CancelOnWriteError)
	if err != nil {
		return res, runFailure(res, err, m)
	}
	return res, nil
}

// listIDs returns the ids `pkgpanda list` reports: reused from the cache
// while the repository is unchanged (cache.go), else from a run.
func (p *Process) listIDs(ctx context.Context, a *actor, m statusMap) ([]string, *PkgpandaResponse) {
	return p.cache.get(ctx, keyList, m, func(ctx context.Context) ([]string, *PkgpandaResponse) {
		return p.runList(ctx, a, m)
	})
}

// runList runs `pkgpanda list` and parses it.
func (p *Process) runList(ctx context.Context, a *actor, m statusMap) ([]string, *PkgpandaResponse) {
	argv, err := p.cfg.Tool.List()
	res, fail := p.collect(ctx, a, argv, err, m)
	if fail != nil {
		return nil, fail
	}
	ids, err := cli.ParseList(res.Stdout)
	if err != nil {
		return nil, failed(http.StatusBadGateway, "unexpected output of pkgpanda list: %v", err)
	}
	return ids, nil
}

// activeIDs returns the ids `pkgpanda active` reports: reused from the
// cache while the active set is unchanged (cache.go), else from a run.
func (p *Process) activeIDs(ctx context.Context, a *actor, m statusMap) ([]string, *PkgpandaResponse) {
	return p.cache.get(ctx, keyActive, m, func(ctx context.Context) ([]string, *PkgpandaResponse) {
		return p.runActive(ctx, a, m)
	})
}

// runActive runs `pkgpanda active` and parses it.
func (p *Process) runActive(ctx context.Context, a *actor, m statusMap) ([]string, *PkgpandaResponse) {
	argv, err := p.cfg.Tool.Active()
	res, fail := p.collect(ctx, a, argv, err, m)
	if fail != nil {
		return nil, fail
	}
	ids, err := cli.ParseActive(res.Stdout)
	if err != nil {
		return nil, failed(http.StatusBadGateway, "unexpected output of pkgpanda active: %v", err)
	}
	return ids, nil
}

func pkgOf(id cli.ID) *PkgpandaPackage {
	return &PkgpandaPackage{Id: id.String(), Name: id.Name, Version: id.Version}
}

func ok(status int) *PkgpandaResponse { return &PkgpandaResponse{Status: int32(status)} }

// opList answers LIST: the repository's ids.
func (p *Process) opList(ctx context.Context, a *actor) *PkgpandaResponse {
	ids, fail := p.listIDs(ctx, a, readStatuses())
	if fail != nil {
		return fail
	}
	r := ok(http.StatusOK)
	r.PackageIds = ids
	return r
}

// opActive answers ACTIVE: the active ids.
func (p *Process) opActive(ctx context.Context, a *actor) *PkgpandaResponse {
	ids, fail := p.activeIDs(ctx, a, readStatuses())
	if fail != nil {
		return fail
	}
	r := ok(http.StatusOK)
	r.PackageIds = ids
	return r
}

// opGetPackage answers GET /repository/<id>: 404 when not in the
// repository, 500 when its pkginfo.json cannot be loaded (pkgpanda-cli
// §6; the reason is logged, not sent, as DC/OS does).
func (p *Process) opGetPackage(ctx context.Context, a *actor, id cli.ID) *PkgpandaResponse {
	ids, fail := p.listIDs(ctx, a, readStatuses())
	if fail != nil {
		return fail
	}
	if !slices.Contains(ids, id.String()) {
		return failed(http.StatusNotFound, "Package %s not found.", id)
	}
	if err := p.loadPackage(id); err != nil {
		p.log.Warn().Err(err).Str("package", id.String()).Msg("loading a package of the repository failed")
		return failed(http.StatusInternalServerError, "Unable to load package %s.", id)
	}
	r := ok(http.StatusOK)
	r.Package = pkgOf(id)
	return r
}

// loadPackage reads <repository>/<id>/pkginfo.json and checks that it is
// a JSON object, as the Pkgpanda API's repository.load does. id is valid,
// so the path stays inside the repository.
func (p *Process) loadPackage(id cli.ID) error {
	b, err := os.ReadFile(filepath.Join(p.cfg.repository(), id.String(), "pkginfo.json"))
	if err != nil {
		return fmt.Errorf("reading pkginfo.json: %w", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("pkginfo.json is not a JSON object: %w", err)
	}
	return nil
}

// opGetActivePackage answers GET /active/<id> in DC/OS's order: first
// exactly as GET /repository/<id> (so an active package missing from the
// repository is 404 and a broken one 500), then 404 unless active.
func (p *Process) opGetActivePackage(ctx context.Context, a *actor, id cli.ID) *PkgpandaResponse {
	if r := p.opGetPackage(ctx, a, id); r.Status >= 400 {
		return r
	}
	ids, fail := p.activeIDs(ctx, a, readStatuses())
	if fail != nil {
		return fail
	}
	if !slices.Contains(ids, id.String()) {
		return failed(http.StatusNotFound, "Package %s is not active.", id)
	}
	r := ok(http.StatusOK)
	r.Package = pkgOf(id)
	return r
}

// opAddFile runs `pkgpanda add` on an uploaded tarball named <id>.tar.xz.
func (p *Process) opAddFile(ctx context.Context, a *actor, id cli.ID, file string) (answer *PkgpandaResponse) {
	defer a.noteOutcome(a.enterOp(), &answer) // for the audit log
	argv, err := p.cfg.Tool.Add(file)
	res, fail := p.collect(ctx, a, argv, err, cliStatuses())
	if fail != nil {
		return fail
	}
	r := ok(http.StatusOK)
	r.Package = pkgOf(id)
	r.AlreadyAdded = bytes.Contains(res.Stdout, []byte("Package already added."))
	return r
}

// streamOrCollect runs argv, streaming stdout to stream if non-nil. It
// reports whether any stdout reached stream (after which the HTTP status
// is already sent). done fills a successful collected response.
func (p *Process) streamOrCollect(ctx context.Context, a *actor, argv []string, stream io.Writer, policy subprocess.WriteErrorPolicy,
	m statusMap, done func(r *PkgpandaResponse, stdout []byte)) (*PkgpandaResponse, bool) {
	if stream == nil {
		res, err := p.run(ctx, a, argv, nil, policy)
		if err != nil {
			return runFailure(res, err, m), false
		}
		r := ok(http.StatusOK)
		r.Output = string(res.Stdout)
		if done != nil {
			done(r, res.Stdout)
		}
		return r, false
	}
	cw := &countWriter{w: stream}
	res, err := p.run(ctx, a, argv, cw, policy)
	if err != nil {
		return runFailure(res, err, m), cw.n > 0
	}
	return ok(http.StatusOK), cw.n > 0
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// opRemove runs `pkgpanda remove` and reports the ids it removed.
func (p *Process) opRemove(ctx context.Context, a *actor, ids []cli.ID, m statusMap) (answer *PkgpandaResponse) {
	defer a.noteOutcome(a.enterOp(), &answer) // for the audit log
	argv, err := p.cfg.Tool.Remove(ids...)
	res, fail := p.collect(ctx, a, argv, err, m)
	if fail != nil {
		return fail
	}
	progress, err := cli.ParseRemove(res.Stdout)
	if err != nil {
		return failed(http.StatusBadGateway, "unexpected output of pkgpanda remove: %v", err)
	}
	r := ok(http.StatusOK)
	r.PackageIds = []string{}
	for _, pr := range progress {
		if pr.Done {
			r.PackageIds = append(r.PackageIds, pr.ID)
		}
	}
	return r
}

// apiDeleteStatuses maps remove's failures as DELETE /repository/<id>.
func apiDeleteStatuses() statusMap {
	return statusMap{validation: http.StatusConflict, pkg: http.StatusNotFound, toolErr: http.StatusInternalServerError}
}

// opDelete is DELETE /repository/<id> (and REMOVE calls): under the write
// lock, in DC/OS's order, 409 for active ids, then 404 for ids not in the
// repository, then remove. Success is 204.
func (p *Process) opDelete(ctx context.Context, a *actor, ids []cli.ID) (answer *PkgpandaResponse) {
	defer a.noteOutcome(a.enterOp(), &answer) // for the audit log
	active, fail := p.activeIDs(ctx, a, readStatuses())
	if fail != nil {
		return fail
	}
	for _, id := range ids {
		if slices.Contains(active, id.String()) {
			// DC/OS leaves the id out of this text ("Package {} is
			// active, ..."); it is filled in here.
			return failed(http.StatusConflict, "Package %s is active, so it can't be removed.", id)
		}
	}
	repo, fail := p.listIDs(ctx, a, readStatuses())
	if fail != nil {
		return fail
	}
	for _, id := range ids {
		if !slices.Contains(repo, id.String()) {
			return failed(http.StatusNotFound, "Package %s not found.", id)
		}
	}
	r := p.opRemove(ctx, a, ids, apiDeleteStatuses())
	if r.Status >= 400 {
		return r
	}
	r.Status = http.StatusNoContent
	return r
}

// apiActivateStatuses maps activate's failures as PUT /active/.
func apiActivateStatuses() statusMap {
	return statusMap{validation: http.StatusConflict, pkg: http.StatusInternalServerError, toolErr: http.StatusInternalServerError}
}

// opActivate runs `pkgpanda activate` on ids (POST /activate, and
// PUT /active/ once opActivateRaw found every id in the repository).
// Success is 204.
func (p *Process) opActivate(ctx context.Context, a *actor, ids []cli.ID, m statusMap) (answer *PkgpandaResponse) {
	defer a.noteOutcome(a.enterOp(), &answer) // for the audit log
	if len(ids) == 0 {
		return failed(http.StatusBadRequest, "at least one package id is needed to activate")
	}
	argv, err := p.cfg.Tool.Activate(ids...)
	if _, fail := p.collect(ctx, a, argv, err, m); fail != nil {
		return fail
	}
	return ok(http.StatusNoContent)
}

// msgNotAllPresent is DC/OS's text for an activation naming packages
// that are not in the repository.
const msgNotAllPresent = "Not all packages in the request are present on this node."

// opActivateRaw is PUT /active/ and ACTIVATE calls: ids are as the client
// sent them, so strings that are not valid ids count as missing, as in
// DC/OS. Under the write lock it answers 409 with missing_packages
// (deduplicated, sorted) when some are not in the repository, else runs
// `pkgpanda activate`. Success is 204.
func (p *Process) opActivateRaw(ctx context.Context, a *actor, raw []string, m statusMap) *PkgpandaResponse {
	repo, fail := p.listIDs(ctx, a, readStatuses())
	if fail != nil {
		return fail
	}
	var missing []string
	for _, s := range raw {
		if !slices.Contains(repo, s) && !slices.Contains(missing, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		r := failed(http.StatusConflict, "%s", msgNotAllPresent)
		r.MissingPackages = missing
		return r
	}
	// Every id is in the repository, whose listing has valid ids only.
	ids, err := parseIDs(raw)
	if err != nil {
		return failed(http.StatusBadGateway, "pkgpanda list listed an invalid id: %v", err)
	}
	return p.opActivate(ctx, a, ids, m)
}

// opSwap runs `pkgpanda swap`. Success is 204.
func (p *Process) opSwap(ctx context.Context, a *actor, id cli.ID) (answer *PkgpandaResponse) {
	defer a.noteOutcome(a.enterOp(), &answer) // for the audit log
	argv, err := p.cfg.Tool.Swap(id)
	if _, fail := p.collect(ctx, a, argv, err, cliStatuses()); fail != nil {
		return fail
	}
	return ok(http.StatusNoContent)
}

// opCheckList runs `pkgpanda check --list`.
func (p *Process) opCheckList(ctx context.Context, a *actor) *PkgpandaResponse {
	argv, err := p.cfg.Tool.Check(true)
	res, fail := p.collect(ctx, a, argv, err, cliStatuses())
	if fail != nil {
		return fail
	}
	checks, err := cli.ParseCheckList(res.Stdout)
	if err != nil {
		return failed(http.StatusBadGateway, "unexpected output of pkgpanda check --list: %v", err)
	}
	r := ok(http.StatusOK)
	r.Checks = make([]*PkgpandaCheck, 0, len(checks))
	for _, c := range checks {
		r.Checks = append(r.Checks, &PkgpandaCheck{PackageId: c.ID, Checks: c.Checks})
	}
	return r
}

// checkStatuses maps a failed `pkgpanda check`: a failing check exits 1
// without a classified line, which is a 500 (the checks failed), not a
// broken tool.
func checkStatuses() statusMap {
	m := cliStatuses()
	m.other = http.StatusInternalServerError
	return m
}

// opCheck runs `pkgpanda check`, streaming stdout if stream is set.
func (p *Process) opCheck(ctx context.Context, a *actor, stream io.Writer) (*PkgpandaResponse, bool) {
	argv, err := p.cfg.Tool.Check(false)
	if err != nil {
		return failed(http.StatusBadRequest, "%v", err), false
	}
	return p.streamOrCollect(ctx, a, argv, stream, subprocess.CancelOnWriteError, checkStatuses(), nil)
}

// parseIDs validates a list of package id strings.
func parseIDs(raw []string) ([]cli.ID, error) {
	ids := make([]cli.ID, 0, len(raw))
	for _, s := range raw {
		id, err := cli.ParseID(s)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}
