package pkgpanda

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
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
func failed(status int, format string, args ...any) *pb.PkgpandaResponse {
	return &pb.PkgpandaResponse{Status: int32(status), Error: fmt.Sprintf(format, args...)}
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
	if p.cfg.onRun != nil {
		p.cfg.onRun(runInfo{Route: a.route, Argv: argv, Result: res, Err: err})
	}
	return res, err
}

// runFailure turns a failed run into a response, classifying the tool's
// own message by kind.
func runFailure(res *subprocess.Result, err error, m statusMap) *pb.PkgpandaResponse {
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

// runCommand runs c with in's arguments and has c's parse fill r; a
// failure comes back as the answer. A cached command (list, active) is
// reused from the cache while the disk is unchanged, else run in a flight
// identical reads share (cache.go). m maps the tool's failures.
func (p *Process) runCommand(ctx context.Context, a *actor, c *command, in *opArgs, m statusMap, r *pb.PkgpandaResponse) *pb.PkgpandaResponse {
	if !c.cached {
		return p.runOnce(ctx, a, c, in, m, r)
	}
	ids, fail := p.cache.get(ctx, c.key, m, func(ctx context.Context) ([]string, *pb.PkgpandaResponse) {
		var got pb.PkgpandaResponse
		if fail := p.runOnce(ctx, a, c, in, m, &got); fail != nil {
			return nil, fail
		}
		return got.PackageIds, nil
	})
	if fail != nil {
		return fail
	}
	r.PackageIds = ids
	return nil
}

// runOnce builds c's argv, runs it (streaming stdout to in.stdout when
// set) and parses its stdout into r.
func (p *Process) runOnce(ctx context.Context, a *actor, c *command, in *opArgs, m statusMap, r *pb.PkgpandaResponse) *pb.PkgpandaResponse {
	argv, err := c.argv(p.cfg.Tool, in)
	if err != nil {
		return failed(http.StatusBadRequest, "%v", err)
	}
	res, err := p.run(ctx, a, argv, in.stdout, subprocess.CancelOnWriteError)
	if err != nil {
		return runFailure(res, err, m)
	}
	if err := c.parse(in, res.Stdout, r); err != nil {
		return failed(http.StatusBadGateway, "unexpected output of pkgpanda %s: %v", c.cmd, err)
	}
	return nil
}

// readIDs returns the ids `pkgpanda list` or `pkgpanda active` (c)
// reports, for the checks: a failure is the server's (readStatuses).
func (p *Process) readIDs(ctx context.Context, a *actor, c command) ([]string, *pb.PkgpandaResponse) {
	var r pb.PkgpandaResponse
	if fail := p.runCommand(ctx, a, &c, &opArgs{}, readStatuses(), &r); fail != nil {
		return nil, fail
	}
	return r.PackageIds, nil
}

// The commands. Each pairs an argv builder of cli.Tool with the parser of
// the command's stdout (cli's Parse functions), filling the answer.

// listCommand is `pkgpanda list`: the repository's ids, sorted.
func listCommand() command {
	return command{cmd: "list", cached: true, key: keyList,
		argv:  func(t cli.Tool, _ *opArgs) ([]string, error) { return t.List() },
		parse: parseIDList(cli.ParseList)}
}

// activeCommand is `pkgpanda active`: the active ids, sorted.
func activeCommand() command {
	return command{cmd: "active", cached: true, key: keyActive,
		argv:  func(t cli.Tool, _ *opArgs) ([]string, error) { return t.Active() },
		parse: parseIDList(cli.ParseActive)}
}

// parseIDList fills PackageIds with what parse reads.
func parseIDList(parse func([]byte) ([]string, error)) func(*opArgs, []byte, *pb.PkgpandaResponse) error {
	return func(_ *opArgs, stdout []byte, r *pb.PkgpandaResponse) error {
		ids, err := parse(stdout)
		if err != nil {
			return err
		}
		r.PackageIds = ids
		return nil
	}
}

// addCommand is `pkgpanda add <file>` on the package of the run under
// way (perPackage), parsed by parse.
func addCommand(parse func(*opArgs, []byte, *pb.PkgpandaResponse) error) command {
	return command{cmd: "add",
		argv:  func(t cli.Tool, in *opArgs) ([]string, error) { return t.Add(in.pkg.path) },
		parse: parse}
}

// alreadyAdded is what `pkgpanda add` prints for a package the
// repository already holds.
const alreadyAdded = "Package already added."

// parseAdded answers an add: the package, and whether it was there
// already.
func parseAdded(in *opArgs, stdout []byte, r *pb.PkgpandaResponse) error {
	r.Package = pkgOf(in.pkg.id)
	r.AlreadyAdded = bytes.Contains(stdout, []byte(alreadyAdded))
	return nil
}

// parseFetched reports a fetched package as `pkgpanda fetch` does on its
// progress output; the answer itself carries nothing.
func parseFetched(in *opArgs, _ []byte, _ *pb.PkgpandaResponse) error {
	if in.progress == nil {
		return nil
	}
	fmt.Fprintf(in.progress, "\rFetched: %s\n", in.pkg.id)
	if in.pkg.path == "" {
		fmt.Fprintln(in.progress, alreadyAdded)
	}
	return nil
}

// removeCommand is `pkgpanda remove <id>...`: the ids it removed.
func removeCommand() command {
	return command{cmd: "remove",
		argv: func(t cli.Tool, in *opArgs) ([]string, error) { return t.Remove(in.ids...) },
		parse: func(_ *opArgs, stdout []byte, r *pb.PkgpandaResponse) error {
			progress, err := cli.ParseRemove(stdout)
			if err != nil {
				return err
			}
			r.PackageIds = []string{}
			for _, pr := range progress {
				if pr.Done {
					r.PackageIds = append(r.PackageIds, pr.ID)
				}
			}
			return nil
		}}
}

// activateCommand is `pkgpanda activate <id>...`; its output is not
// part of the answer.
func activateCommand() command {
	return command{cmd: "activate",
		argv:  func(t cli.Tool, in *opArgs) ([]string, error) { return t.Activate(in.ids...) },
		parse: parseNothing}
}

// swapCommand is `pkgpanda swap <id>`; its output is not part of the
// answer.
func swapCommand() command {
	return command{cmd: "swap",
		argv:  func(t cli.Tool, in *opArgs) ([]string, error) { return t.Swap(in.ids[0]) },
		parse: parseNothing}
}

// checkCommand is `pkgpanda check`: its output, when collected.
func checkCommand() command {
	return command{cmd: "check",
		argv: func(t cli.Tool, _ *opArgs) ([]string, error) { return t.Check(false) },
		parse: func(_ *opArgs, stdout []byte, r *pb.PkgpandaResponse) error {
			r.Output = string(stdout)
			return nil
		}}
}

// checkListCommand is `pkgpanda check --list`: each package's checks.
func checkListCommand() command {
	return command{cmd: "check --list",
		argv: func(t cli.Tool, _ *opArgs) ([]string, error) { return t.Check(true) },
		parse: func(_ *opArgs, stdout []byte, r *pb.PkgpandaResponse) error {
			checks, err := cli.ParseCheckList(stdout)
			if err != nil {
				return err
			}
			r.Checks = make([]*pb.PkgpandaCheck, 0, len(checks))
			for _, c := range checks {
				r.Checks = append(r.Checks, &pb.PkgpandaCheck{PackageId: c.ID, Checks: c.Checks})
			}
			return nil
		}}
}

// parseNothing is the parse of commands whose output the answer ignores.
func parseNothing(*opArgs, []byte, *pb.PkgpandaResponse) error { return nil }

// parsePackage answers the package asked for (the operations answered by
// their checks).
func parsePackage(in *opArgs, _ []byte, r *pb.PkgpandaResponse) error {
	r.Package = pkgOf(in.ids[0])
	return nil
}

func pkgOf(id cli.ID) *pb.PkgpandaPackage {
	return &pb.PkgpandaPackage{Id: id.String(), Name: id.Name, Version: id.Version}
}

func ok(status int) *pb.PkgpandaResponse { return &pb.PkgpandaResponse{Status: int32(status)} }

// The pre-checks, in DC/OS's texts (docs/pkgpanda-cli.md §6.2, §6.5).

// checkInRepository answers 404 for the first id not in the repository.
func checkInRepository(ctx context.Context, p *Process, a *actor, in *opArgs) *pb.PkgpandaResponse {
	repo, fail := p.readIDs(ctx, a, listCommand())
	if fail != nil {
		return fail
	}
	for _, id := range in.ids {
		if !slices.Contains(repo, id.String()) {
			return failed(http.StatusNotFound, "Package %s not found.", id)
		}
	}
	return nil
}

// checkLoadable answers 500 when a package's pkginfo.json cannot be
// loaded (the reason is logged, not sent, as DC/OS does).
func checkLoadable(_ context.Context, p *Process, _ *actor, in *opArgs) *pb.PkgpandaResponse {
	for _, id := range in.ids {
		if err := p.loadPkginfo(id); err != nil {
			p.log.Warn().Err(err).Str("package", id.String()).Msg("loading a package of the repository failed")
			if errors.Is(err, errPkginfoUndecodable) {
				return failed(http.StatusInternalServerError, "%s", msgUnexpected)
			}
			return failed(http.StatusInternalServerError, "Unable to load package %s.", id)
		}
	}
	return nil
}

// checkActive answers 404 for the first id that is not active.
func checkActive(ctx context.Context, p *Process, a *actor, in *opArgs) *pb.PkgpandaResponse {
	active, fail := p.readIDs(ctx, a, activeCommand())
	if fail != nil {
		return fail
	}
	for _, id := range in.ids {
		if !slices.Contains(active, id.String()) {
			return failed(http.StatusNotFound, "Package %s is not active.", id)
		}
	}
	return nil
}

// checkNotActive answers 409 for the first id that is active (DELETE
// checks that before the repository).
func checkNotActive(ctx context.Context, p *Process, a *actor, in *opArgs) *pb.PkgpandaResponse {
	active, fail := p.readIDs(ctx, a, activeCommand())
	if fail != nil {
		return fail
	}
	for _, id := range in.ids {
		if slices.Contains(active, id.String()) {
			// DC/OS leaves the id out of this text ("Package {} is
			// active, ..."); it is filled in here.
			return failed(http.StatusConflict, "Package %s is active, so it can't be removed.", id)
		}
	}
	return nil
}

// msgNotAllPresent is DC/OS's text for an activation naming packages
// that are not in the repository.
const msgNotAllPresent = "Not all packages in the request are present on this node."

// checkAllPresent is PUT /active/'s check on the ids as sent: strings
// that are not valid ids count as missing, as in DC/OS. It answers 409
// with missing_packages (deduplicated, sorted) when some are not in the
// repository; else it sets in.ids, for the activation.
func checkAllPresent(ctx context.Context, p *Process, a *actor, in *opArgs) *pb.PkgpandaResponse {
	repo, fail := p.readIDs(ctx, a, listCommand())
	if fail != nil {
		return fail
	}
	var missing []string
	for _, s := range in.raw {
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
	ids, err := parseIDs(in.raw)
	if err != nil {
		return failed(http.StatusBadGateway, "pkgpanda list listed an invalid id: %v", err)
	}
	in.ids = ids
	return nil
}

// apiDeleteStatuses maps remove's failures as DELETE /repository/<id>.
func apiDeleteStatuses() statusMap {
	return statusMap{validation: http.StatusConflict, pkg: http.StatusNotFound, toolErr: http.StatusInternalServerError}
}

// apiActivateStatuses maps activate's failures as PUT /active/.
func apiActivateStatuses() statusMap {
	return statusMap{validation: http.StatusConflict, pkg: http.StatusInternalServerError, toolErr: http.StatusInternalServerError}
}

// checkStatuses maps a failed `pkgpanda check`: a failing check exits 1
// without a classified line, which is a 500 (the checks failed), not a
// broken tool.
func checkStatuses() statusMap {
	m := cliStatuses()
	m.other = http.StatusInternalServerError
	return m
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
