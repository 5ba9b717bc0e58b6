// Command pkgpanda-fleet shows and changes the packages of every agent of
// a Mesos cluster through each agent's pkgpanda process (pkgpandad), with
// the agents taken from the Mesos master: no SSH and no inventory file.
//
// Usage:
//
//	pkgpanda-fleet version
//	pkgpanda-fleet status  --master URL [--target IDS | --target-file FILE] [--json] [options]
//	pkgpanda-fleet rollout --master URL (--target IDS | --target-file FILE) --state FILE
//	                       [--repository-url URL] [--canary N] [--batch N] [--max-unavailable N]
//	                       [--exact] [--dry-run] [--audit-log FILE] [--progress auto|bar|plain]
//	                       [--maintenance-window DURATION] [options]
//
// The master is asked for its agents with the v1 operator API
// (GET_AGENTS); a non-leading master's redirect to the leader is followed.
// Agents the master reports draining, drained, deactivated, inactive or
// recovered (not re-registered) are shown as such and never contacted.
// Every other agent's pkgpanda process is called at the agent's IP and
// --pkgpanda-port over POST /pkgpanda/api/v1.
//
// status prints, for each package name, which versions are active on how
// many agents, the agents that differ from the target (or from the
// majority when no target is given), and the agents that could not be
// read, each with the reason. Exit status: 0 when every agent answered and
// none differs, 3 otherwise, 1 when the master cannot be asked.
//
// rollout brings agents to a target package set: the target's packages
// replace the active packages of the same names (with --exact, the target
// is the whole active set). It plans first (--dry-run prints the plan and
// stops), refusing when a package to fetch is not in --repository-url;
// then, batch after batch (a canary batch first), for each agent: fetch
// what its repository lacks, activate, and pass the health gate — `pkgpanda
// check` passes, the master still has the agent registered and active, and
// the active set reads back as the target. A failed gate stops the rollout
// before the next batch. Progress is kept in the --state file (flock'ed
// while a rollout runs), so running the same command again continues
// where it stopped; every fetch, activation and gate is appended to the
// audit log. With --maintenance-window, each batch's machines are put in
// a Mesos maintenance window (DRAINING: frameworks get inverse offers)
// while the batch runs, and taken out after. The first SIGINT lets the
// agents in flight finish and stops;
// a second abandons them. Exit status: 0 complete, 1 refused before any
// change, 2 usage, 3 stopped by a failed gate or incomplete, 130
// interrupted.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

const usage = `usage:
  pkgpanda-fleet version
  pkgpanda-fleet status  --master URL [--target IDS | --target-file FILE] [--json] [options]
  pkgpanda-fleet rollout --master URL (--target IDS | --target-file FILE) --state FILE [options]
run "pkgpanda-fleet status -h" or "pkgpanda-fleet rollout -h" for the options`

// commonFlags are the flags of every subcommand.
type commonFlags struct {
	masters          string
	masterPrincipal  string
	masterSecretFile string
	masterTokenFile  string
	masterCA         string
	masterTimeout    time.Duration
	agentPrincipal   string
	agentSecretFile  string
	agentTokenFile   string
	agentTLS         bool
	agentCA          string
	port             int
	timeout          time.Duration
	opTimeout        time.Duration
	concurrency      int
	target           string
	targetFile       string
	exact            bool
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.masters, "master", "", "the Mesos master `URL`s, comma-separated (http(s)://host:5050); any one will do, its redirect to the leader is followed")
	fs.StringVar(&c.masterPrincipal, "master-principal", "", "HTTP Basic principal for the master")
	fs.StringVar(&c.masterSecretFile, "master-secret-file", "", "`FILE` holding the master principal's secret")
	fs.StringVar(&c.masterTokenFile, "master-token-file", "", "`FILE` holding a bearer token for the master (instead of Basic)")
	fs.StringVar(&c.masterCA, "master-ca-file", "", "PEM `FILE` of the CAs the master's certificate is verified against (https)")
	fs.DurationVar(&c.masterTimeout, "master-timeout", 15*time.Second, "bound of one call to the master")
	fs.StringVar(&c.agentPrincipal, "agent-principal", "", "HTTP Basic principal for pkgpandad on the agents")
	fs.StringVar(&c.agentSecretFile, "agent-secret-file", "", "`FILE` holding the agent principal's secret")
	fs.StringVar(&c.agentTokenFile, "agent-token-file", "", "`FILE` holding a bearer token (JWT) for pkgpandad (instead of Basic)")
	fs.BoolVar(&c.agentTLS, "agent-tls", false, "reach pkgpandad over https")
	fs.StringVar(&c.agentCA, "agent-ca-file", "", "PEM `FILE` of the CAs pkgpandad's certificates are verified against")
	fs.IntVar(&c.port, "pkgpanda-port", DefaultPkgpandaPort, "the TCP port pkgpandad serves on every agent")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound of one read from one agent (a slow or dead agent delays only itself)")
	fs.DurationVar(&c.opTimeout, "op-timeout", 30*time.Minute, "bound of one fetch, activation or check on one agent")
	fs.IntVar(&c.concurrency, "concurrency", 64, "agents read at once")
	fs.StringVar(&c.target, "target", "", "target package `IDS`, comma-separated (e.g. mesos--1.12.0,marathon--1.10.0)")
	fs.StringVar(&c.targetFile, "target-file", "", "`FILE` of target package ids, one per line (# comments)")
	fs.BoolVar(&c.exact, "exact", false, "the target is the whole active set (default: only the target's package names change)")
}

// authorization builds an Authorization value from a principal and secret
// file, or a token file.
func authorization(what, principal, secretFile, tokenFile string) (string, error) {
	switch {
	case tokenFile != "" && (principal != "" || secretFile != ""):
		return "", fmt.Errorf("%s: give a principal and secret file, or a token file, not both", what)
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("%s token: %w", what, err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("%s token file %s is empty", what, tokenFile)
		}
		return "Bearer " + tok, nil
	case principal != "":
		if secretFile == "" {
			return "", fmt.Errorf("%s: a principal needs its secret file", what)
		}
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return "", fmt.Errorf("%s secret: %w", what, err)
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(principal+":"+strings.TrimRight(string(b), "\r\n"))), nil
	case secretFile != "":
		return "", fmt.Errorf("%s: a secret file needs its principal", what)
	}
	return "", nil
}

// setup builds the master client, the agent pool and the target.
func (c *commonFlags) setup() (*masterClient, *agentPool, Target, error) {
	mauth, err := authorization("master", c.masterPrincipal, c.masterSecretFile, c.masterTokenFile)
	if err != nil {
		return nil, nil, Target{}, err
	}
	aauth, err := authorization("agent", c.agentPrincipal, c.agentSecretFile, c.agentTokenFile)
	if err != nil {
		return nil, nil, Target{}, err
	}
	var urls []string
	for _, u := range strings.Split(c.masters, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	m, err := newMasterClient(masterConfig{urls: urls, authorization: mauth, caFile: c.masterCA, timeout: c.masterTimeout})
	if err != nil {
		return nil, nil, Target{}, err
	}
	scheme := "http"
	if c.agentTLS {
		scheme = "https"
	}
	pool, err := newAgentPool(agentConfig{port: c.port, scheme: scheme, authorization: aauth, caFile: c.agentCA,
		timeout: c.timeout, opTimeout: c.opTimeout, concurrency: c.concurrency})
	if err != nil {
		return nil, nil, Target{}, err
	}
	t, err := parseTarget(c.target, c.targetFile, c.exact)
	if err != nil {
		return nil, nil, Target{}, err
	}
	if t.Exact && t.empty() {
		return nil, nil, Target{}, errors.New("--exact needs a target")
	}
	return m, pool, t, nil
}

// run is the tool; sigs delivers SIGINT/SIGTERM (nil: none).
func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd := args[0]
	if cmd == "version" || cmd == "--version" {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	fs := flag.NewFlagSet("pkgpanda-fleet "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs)
	var jsonOut bool
	var ro rolloutOptions
	switch cmd {
	case "status":
		fs.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	case "rollout":
		fs.StringVar(&ro.repositoryURL, "repository-url", "", "the repository (`URL`, file:// or http(s)://) agents fetch missing target packages from")
		fs.BoolVar(&ro.noRepoCheck, "no-repository-check", false, "do not check from here that --repository-url holds the packages to fetch (when only the agents reach it); the canary's fetch is then the check")
		fs.IntVar(&ro.canary, "canary", 1, "agents in the first (canary) batch")
		fs.IntVar(&ro.batch, "batch", 10, "agents per batch after the canary")
		fs.IntVar(&ro.maxUnavailable, "max-unavailable", 1, "agents of a batch changed at once")
		fs.DurationVar(&ro.gateWait, "gate-wait", time.Minute, "how long the health gate retries failing checks, an unreachable agent or one the master shows inactive after an activation (0: one try)")
		fs.StringVar(&ro.statePath, "state", "", "the state `FILE`: the rollout's progress, to continue where it stopped (required)")
		fs.StringVar(&ro.auditPath, "audit-log", "", "the audit log `FILE` (JSON lines; default: the state file + .audit)")
		fs.BoolVar(&ro.dryRun, "dry-run", false, "print the plan and change nothing")
		fs.StringVar(&ro.progress, "progress", "auto", "progress display: auto (a bar on a terminal), bar, plain")
		fs.DurationVar(&ro.maintenance, "maintenance-window", 0, "schedule a Mesos maintenance window of this `DURATION` for each batch's machines while it runs, and remove it after (0: none); machines already in a window are refused")
	default:
		fmt.Fprintf(stderr, "pkgpanda-fleet: unknown command %q\n%s\n", cmd, usage)
		return exitUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pkgpanda-fleet %s: unexpected arguments %q\n", cmd, fs.Args())
		return exitUsage
	}
	m, pool, t, err := c.setup()
	if err != nil {
		fmt.Fprintf(stderr, "pkgpanda-fleet %s: %v\n", cmd, err)
		return exitUsage
	}
	defer pool.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	go func() {
		n := 0
		for range sigs {
			n++
			if n == 1 {
				fmt.Fprintln(stderr, "pkgpanda-fleet: interrupted: finishing the agents in flight (again to abandon them)")
				close(stop)
			} else {
				cancel()
				return
			}
		}
	}()
	switch cmd {
	case "status":
		go func() { <-stop; cancel() }() // a status has nothing to finish
		r, err := buildStatus(ctx, m, pool, t)
		if err != nil {
			fmt.Fprintf(stderr, "pkgpanda-fleet status: %v\n", err)
			return exitError
		}
		if jsonOut {
			if err := writeJSON(stdout, r); err != nil {
				return exitError
			}
		} else {
			printStatus(stdout, r)
		}
		if !r.clean() {
			return exitIncomplete
		}
		return exitOK
	default:
		if ro.statePath == "" {
			fmt.Fprintln(stderr, "pkgpanda-fleet rollout: --state FILE is required")
			return exitUsage
		}
		if ro.canary < 0 || ro.batch < 1 || ro.maxUnavailable < 1 {
			fmt.Fprintln(stderr, "pkgpanda-fleet rollout: --canary must be at least 0, --batch and --max-unavailable at least 1")
			return exitUsage
		}
		switch ro.progress {
		case "auto", "bar", "plain":
		default:
			fmt.Fprintf(stderr, "pkgpanda-fleet rollout: --progress %q is not auto, bar or plain\n", ro.progress)
			return exitUsage
		}
		if ro.auditPath == "" {
			ro.auditPath = ro.statePath + ".audit"
		}
		ro.target = t
		return runRollout(ctx, stop, m, pool, ro, stdout, stderr)
	}
}
