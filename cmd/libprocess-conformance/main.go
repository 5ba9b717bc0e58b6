// Command libprocess-conformance checks a libprocess endpoint (and, with
// --pkgpanda, the Pkgpanda HTTP API) over the network and prints one line per
// case and a closing line counting each category ("required: N passed, N
// failed, N skipped; beyond libprocess: N passed, N unmet, N skipped");
// with --report FILE it also writes one JSON record per case to FILE. It
// exits 1 when any case fails (UNMET cases beyond libprocess are no
// failures unless --require-beyond) and 2 on a usage error or when the
// report cannot be written.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/procpanda/procpanda/conformance"
	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/client"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

func main() {
	// When the suite started this program as its mesos-go helper, serve
	// as that and exit.
	conformance.RunHelper()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs the suite and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("libprocess-conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o       conformance.Options
		list    bool
		runExpr string
		report  string
	)
	fs.StringVar(&o.Target, "target", "", "host:port of the libprocess endpoint under test (required)")
	fs.StringVar(&o.Process, "process", "", "id of a process that exists on the target (required)")
	fs.StringVar(&o.Ping, "ping", "", "message name the process answers by sending --pong back with the same body")
	fs.StringVar(&o.Pong, "pong", "", "message name of that answer")
	fs.BoolVar(&o.MesosGo, "mesos-go", false, "run the mesos-go section: the process answers mesos.internal.SmallMessage with mesos.internal.SmallMessage (same body) to the sender")
	fs.BoolVar(&o.Pkgpanda, "pkgpanda", false, "run the Pkgpanda HTTP API section")
	fs.StringVar(&o.PkgpandaID, "pkgpanda-id", "pkgpanda", "process id of pkgpanda")
	fs.StringVar(&o.Fixture, "fixture", "", "pristine copy of the fixture the target's pkgpanda state started from; enables exact-state and mutating pkgpanda cases")
	fs.StringVar(&o.Listen, "listen", "", "ip:port for the suite's own libprocess peer (default: the local address toward --target, any port)")
	fs.DurationVar(&o.Timeout, "timeout", conformance.DefaultTimeout, "time limit of each case")
	fs.StringVar(&runExpr, "run", "", "only run cases whose id matches this regular expression")
	fs.StringVar(&report, "report", "", "also write one JSON record per case (id, section, title, outcome, detail; JSON Lines) to this file")
	fs.BoolVar(&o.RequireBeyond, "require-beyond", false, "count the cases beyond libprocess (what procpanda promises beyond C++ libprocess) as failures when not passed, instead of UNMET")
	fs.BoolVar(&list, "list", false, "list the cases (id, spec section, group, title; tab-separated) and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: libprocess-conformance --target host:port --process ID [--ping NAME --pong NAME] [--mesos-go] [--pkgpanda [--fixture DIR]]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if list {
		for _, c := range conformance.Cases() {
			mut := ""
			if c.Mutates != "" {
				mut = " [mutates: " + c.Mutates + "]"
			}
			if c.Beyond != "" {
				mut += " [" + conformance.CategoryBeyond + "]"
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s%s\n", c.ID, c.Section, c.Group, c.Title, mut)
		}
		return 0
	}
	if fs.NArg() > 0 || o.Target == "" || o.Process == "" || (o.Ping == "") != (o.Pong == "") {
		fs.Usage()
		return 2
	}
	if runExpr != "" {
		re, err := regexp.Compile(runExpr)
		if err != nil {
			fmt.Fprintf(stderr, "bad --run: %v\n", err)
			return 2
		}
		o.Run = re
	}
	if o.MesosGo {
		// The mesos-go messenger runs in a child process of this program
		// (see main): a panic in one of its goroutines then fails a case
		// instead of ending the run before its summary.
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "cannot find this program to run the mesos-go messenger in: %v\n", err)
			return 2
		}
		o.MesosGoHelper = []string{exe}
	}
	if o.Pkgpanda {
		o.PkgpandaRoundTrip = pkgpandaListRoundTrip()
		o.PkgpandaClientList = clientList
	}
	var reportFile *os.File
	if report != "" {
		f, err := os.Create(report)
		if err != nil {
			fmt.Fprintf(stderr, "cannot write the report: %v\n", err)
			return 2
		}
		defer f.Close()
		reportFile = f
	}
	// mesos-go logs through glog, which otherwise writes files to the
	// temporary directory; keep its output on stderr.
	_ = flag.CommandLine.Set("logtostderr", "true")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	o.OnResult = func(r conformance.Result) { fmt.Fprintln(stdout, r.Line()) }
	rep, err := conformance.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	fmt.Fprintf(stdout, "%s (%s)\n", rep.Summary(), time.Since(start).Round(time.Millisecond))
	if reportFile != nil {
		err := rep.WriteJSON(reportFile)
		if cerr := reportFile.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", report, err)
			return 2
		}
	}
	if rep.Failed() {
		return 1
	}
	return 0
}

// pkgpandaListRoundTrip is the pkgpanda message round trip: a LIST
// PkgpandaCall answered by a PkgpandaResponse with the same request id and
// status 200. The messages are the pkgpanda process' public protocol.
func pkgpandaListRoundTrip() *conformance.RoundTrip {
	const requestID = "libprocess-conformance"
	body, err := proto.Marshal(&pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST, RequestId: requestID})
	if err != nil {
		panic(err) // a fixed, valid message always encodes
	}
	return &conformance.RoundTrip{
		Name:      proto.MessageName(&pb.PkgpandaCall{}),
		Body:      body,
		ReplyName: proto.MessageName(&pb.PkgpandaResponse{}),
		Check: func(b []byte) error {
			var r pb.PkgpandaResponse
			if err := proto.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("decoding PkgpandaResponse: %w", err)
			}
			if r.RequestId != requestID || r.Status != 200 || r.Type != pb.PkgpandaCall_LIST {
				return fmt.Errorf("want LIST response %q with status 200, got type %v request_id %q status %d error %q",
					requestID, r.Type, r.RequestId, r.Status, r.Error)
			}
			return nil
		},
	}
}

// clientList lists the repository of the pkgpanda process pid with the
// typed client, over messages from a runtime of its own.
func clientList(ctx context.Context, pid string) ([]string, error) {
	target, err := libprocess.ParseUPID(pid)
	if err != nil {
		return nil, err
	}
	c, err := client.NewMessages(ctx, target)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.List(ctx)
}
