package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/client"
)

// A client that talks to pkgpandad over libprocess messages, from a
// runtime of its own, with Basic credentials.
func ExampleNewMessages() {
	d := startDaemon() // pkgpanda@127.0.0.1:<port>, over a demo repository
	defer d.Stop()

	ctx := context.Background()
	c, err := client.NewMessages(ctx, d.UPID, client.WithBasicAuth("ops", "s3cret"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ids, err := c.Active(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("active:", ids)
	if err := c.Swap(ctx, "mesos--1.12.0"); err != nil {
		log.Fatal(err)
	}
	if ids, err = c.Active(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after swap:", ids)
	// Output:
	// active: [marathon--1.10.0 mesos--1.11.0 mesos-config--demo]
	// after swap: [marathon--1.10.0 mesos--1.12.0 mesos-config--demo]
}

// A client over HTTP (POST /pkgpanda/api/v1, protobuf). Without
// credentials it may read but not mutate; a refused activation names the
// packages the repository lacks.
func ExampleNewHTTP() {
	d := startDaemon() // http://127.0.0.1:<port>/pkgpanda, over a demo repository
	defer d.Stop()

	ctx := context.Background()
	anonymous, err := client.NewHTTP(d.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer anonymous.Close()
	ids, err := anonymous.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("repository:", ids)
	err = anonymous.Activate(ctx, "mesos--1.12.0", "mesos-config--demo")
	fmt.Println("unauthorized:", errors.Is(err, client.ErrUnauthorized))

	ops, err := client.NewHTTP(d.URL, client.WithBasicAuth("ops", "s3cret"))
	if err != nil {
		log.Fatal(err)
	}
	defer ops.Close()
	err = ops.Activate(ctx, "mesos--1.12.0", "mesos-config--justmesos")
	var ce *client.Error
	if errors.Is(err, client.ErrConflict) && errors.As(err, &ce) {
		fmt.Println("missing:", ce.MissingPackages)
	}
	// Output:
	// repository: [marathon--1.10.0 mesos--1.11.0 mesos--1.12.0 mesos-config--demo]
	// unauthorized: true
	// missing: [mesos-config--justmesos]
}

// Adding a package from its tarball file: over HTTP, Add streams the file
// to the process without holding it in memory.
func ExampleClient_Add() {
	d := startDaemon()
	defer d.Stop()
	path := d.packageFile("hello--1.0") // a .tar.gz with a pkginfo.json

	ctx := context.Background()
	c, err := client.NewHTTP(d.URL, client.WithBasicAuth("ops", "s3cret"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Add(ctx, "hello--1.0", f, fi.Size())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added:", res.Package.ID, res.Package.Name, res.Package.Version)
	pkg, err := c.Get(ctx, "hello--1.0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("in the repository:", pkg.ID)
	// Output:
	// added: hello--1.0 hello 1.0
	// in the repository: hello--1.0
}

// A program that is already a libprocess peer sends from its own runtime:
// the client spawns one process there and Close leaves the runtime up.
func ExampleWithRuntime() {
	d := startDaemon()
	defer d.Stop()

	cfg := libprocess.DefaultConfig()
	cfg.IP, cfg.Port = "127.0.0.1", 0
	rt, err := libprocess.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		log.Fatal(err)
	}
	defer rt.Shutdown(context.Background())

	ctx := context.Background()
	c, err := client.NewMessages(ctx, d.UPID, client.WithRuntime(rt), client.WithBasicAuth("ops", "s3cret"))
	if err != nil {
		log.Fatal(err)
	}
	pkg, err := c.GetActive(ctx, "marathon--1.10.0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pkg.Name, pkg.Version)
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
	_, err = c.List(ctx)
	fmt.Println("after Close:", err != nil)
	// Output:
	// marathon 1.10.0
	// after Close: true
}
