// Command procpanda-soak sends a long stream of numbered messages between
// two libprocess runtimes over loopback while restarting the receiving
// runtime several times, and reports what libprocess promises about such a
// stream: nothing is duplicated, nothing is reordered, and messages are lost
// only at restart boundaries (delivery is at most once). It is what
// `make soak` runs; it is not part of `make test`.
//
// Each message carries its sequence number. The receiver records every
// number it is handed, per incarnation of its runtime. A number seen twice
// is a duplicate; a number smaller than the previous one of the same
// incarnation is a reordering (the sender keeps one connection per peer, so
// within an incarnation this is the order on one connection); a number
// missing between two numbers of the same incarnation is a loss inside an
// incarnation, which must not happen. Numbers missing between the last
// number of one incarnation and the first of the next were lost at that
// restart: those sent before it were in flight (at most once allows their
// loss); those sent after it — once the sender's runtime had reported the
// old receiver's exit and the new one was up — must not be lost. The
// sender keeps at most -window messages in flight, and losses settle
// (see soak), so the run ends however many are lost.
//
// It prints one table row for the run and one per restart, and exits 1
// if a promise was broken.
//
// Usage:
//
//	procpanda-soak [-messages 1000000] [-restarts 10] [-body 64] [-window 4096]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "procpanda-soak:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("procpanda-soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config{}
	fs.IntVar(&cfg.messages, "messages", 1_000_000, "messages to send")
	fs.IntVar(&cfg.restarts, "restarts", 10, "times the receiving runtime is restarted during the stream")
	fs.IntVar(&cfg.body, "body", 64, "bytes per message body (at least 8)")
	fs.IntVar(&cfg.window, "window", 4096, "messages in flight at most (sent since the last restart and not yet settled)")
	fs.DurationVar(&cfg.stall, "stall", 30*time.Second, "fail when no delivery frees the window, or the sender does not see a restart, for this long")
	fs.DurationVar(&cfg.settle, "settle", 5*time.Second, "at the end, count the rest as lost after this long without a delivery")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := soak(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	res.print(stdout)
	return res.broken()
}
