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
	target, err := libprocess.ParseUPID("pkgpanda@10.0.0.2:5052")
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.NewMessages(context.Background(), target, client.WithBasicAuth("ops", "secret"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ids, err := c.Active(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ids)
}

// A client over HTTP (POST /pkgpanda/api/v1, protobuf); a refused
// activation names the packages the repository lacks.
func ExampleNewHTTP() {
	c, err := client.NewHTTP("http://10.0.0.2:5052/pkgpanda")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	err = c.Activate(context.Background(), "mesos--0.23.0", "mesos-config--justmesos")
	var ce *client.Error
	switch {
	case errors.Is(err, client.ErrConflict) && errors.As(err, &ce):
		fmt.Println("missing:", ce.MissingPackages)
	case err != nil:
		log.Fatal(err)
	}
}

// Adding a package from its tarball.
func ExampleClient_Add() {
	c, err := client.NewHTTP("http://127.0.0.1:5052/pkgpanda", client.WithBearerToken(os.Getenv("TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	f, err := os.Open("mesos--0.23.0.tar.xz")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Add(context.Background(), "mesos--0.23.0", f, fi.Size())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Package.ID, res.AlreadyAdded)
}
