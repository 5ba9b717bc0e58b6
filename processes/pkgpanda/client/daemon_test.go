package client_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/libprocess/httpauth"
	"github.com/procpanda/procpanda/processes/pkgpanda"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// daemon is what the examples talk to: a pkgpanda process on a loopback
// runtime of its own, over the stand-in CLI's demo repository, whose
// mutations need the credentials ops:s3cret.
type daemon struct {
	UPID libprocess.UPID // pkgpanda@127.0.0.1:<port>
	URL  string          // http://127.0.0.1:<port>/pkgpanda
	Dir  string          // a temporary directory, removed by Stop

	rt *libprocess.Runtime
	p  *pkgpanda.Process
}

// startDaemon starts a daemon; a failure ends the example.
func startDaemon() *daemon {
	d, err := newDaemon()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the example daemon:", err)
		os.Exit(1)
	}
	return d
}

func newDaemon() (d *daemon, err error) {
	dir, err := os.MkdirTemp("", "pkgpanda-client-example-")
	if err != nil {
		return nil, err
	}
	d = &daemon{Dir: dir}
	defer func() {
		if err != nil {
			d.Stop()
		}
	}()
	demo := filepath.Join(dir, "demo")
	if out, err := exec.Command(standin, "demo-init", demo).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("demo-init: %v: %s", err, out)
	}
	d.p, err = pkgpanda.New(pkgpanda.Config{
		Tool: cli.Tool{Path: standin, Options: cli.Options{
			Root:          filepath.Join(demo, "install"),
			Repository:    filepath.Join(demo, "packages"),
			ConfigDir:     filepath.Join(demo, "etc"),
			StateDirRoot:  filepath.Join(demo, "state"),
			RootedSystemd: true,
			NoSystemd:     true,
		}},
		Env:           []string{"PATH=/usr/bin:/bin"},
		TempDir:       dir,
		KillGrace:     time.Second,
		Authenticator: httpauth.NewBasic(map[string]string{"ops": "s3cret"}),
		OpenReads:     true,
	})
	if err != nil {
		return nil, err
	}
	cfg := libprocess.DefaultConfig()
	cfg.IP, cfg.Port = "127.0.0.1", 0
	if d.rt, err = libprocess.New(cfg); err != nil {
		return nil, err
	}
	if err := d.rt.Start(); err != nil {
		return nil, err
	}
	if d.UPID, err = d.p.Start(d.rt); err != nil {
		return nil, err
	}
	d.URL = "http://" + d.UPID.HostPort() + "/" + d.UPID.ID
	return d, nil
}

// Stop drains the process, stops its runtime and removes the directory.
func (d *daemon) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if d.p != nil && d.UPID.ID != "" {
		if err := d.p.Drain(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "draining the example daemon:", err)
		}
	}
	if d.rt != nil {
		if err := d.rt.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the example daemon's runtime:", err)
		}
	}
	os.RemoveAll(d.Dir)
}

// packageFile writes the tarball of a package that requires nothing into
// the daemon's directory and returns its path.
func (d *daemon) packageFile(name string) string {
	path := filepath.Join(d.Dir, name+".tar.gz")
	f, err := os.Create(path)
	if err == nil {
		gz := gzip.NewWriter(f)
		tw := tar.NewWriter(gz)
		info := []byte(`{"requires": []}`)
		err = tw.WriteHeader(&tar.Header{Name: "pkginfo.json", Mode: 0o644, Size: int64(len(info)), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = tw.Write(info)
		}
		for _, c := range []interface{ Close() error }{tw, gz, f} {
			if cerr := c.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "writing an example package:", err)
		os.Exit(1)
	}
	return path
}
