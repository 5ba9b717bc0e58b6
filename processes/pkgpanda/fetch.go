package pkgpanda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
	"golang.org/x/sys/unix"
)

// maxFetchRedirects bounds the redirects a package download follows.
const maxFetchRedirects = 5

// newFetchClient returns the HTTP client of package downloads: no
// overall timeout (the route's timeout bounds each download through its
// context), a bounded number of redirects, http and https only.
func newFetchClient() *http.Client {
	return &http.Client{
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxFetchRedirects {
				return fmt.Errorf("stopped after %d redirects", maxFetchRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
			}
			return nil
		},
	}
}

// A fetch is two steps of one operation, so that only the second holds
// any lock. stageFetch (the operation's stage) downloads each package
// (`<url>/packages/<name>/<id>.tar.xz`, the URL's trailing `/` stripped;
// file:// or http(s)://) into an upload file, on a goroutine of its own
// before the fetch is queued, so a repository that never answers delays
// no read and occupies no actor. The operation's command then runs as an
// ordinary mutation (write lock, repository lock): `pkgpanda add` on each
// download (perPackage), keeping the CLI as the ABI for repository
// changes. A package already in the repository is not downloaded nor
// added; it is reported as added. Progress goes to opArgs.progress as the
// CLI prints it (`\rFetching: <id>`, `\rFetched: <id>\n`). A file://
// failure, of the download or of the add, is one generic error whatever
// its cause, so that a caller cannot probe the daemon's files; the cause
// is logged.

// hideFileFailure hides the cause of a failure to fetch in.pkg from a
// file:// repository (any other failure is returned as is).
func (p *Process) hideFileFailure(in *opArgs, r *pb.PkgpandaResponse) *pb.PkgpandaResponse {
	if !isFileURL(in.url) {
		return r
	}
	s := &p.ops[in.op]
	p.log.Warn().Str("route", s.actor).Str("package", in.pkg.id.String()).Int("status", int(r.Status)).Str("cause", r.Error).
		Msg("fetch from a file:// repository failed (the caller gets a generic error)")
	return failed(s.statuses.toolErr, "Unable to fetch package %s from the file:// repository", in.pkg.id)
}

// stageFetch downloads in.ids into in.pkgs; nil means every download is
// on disk. The downloads are in.ups, removed by in.release.
func stageFetch(p *Process, in *opArgs, timeout time.Duration) *pb.PkgpandaResponse {
	ctx, cancel := context.WithTimeout(p.drainCtx, timeout)
	defer cancel()
	progress := in.progress
	if progress == nil {
		progress = io.Discard
	}
	s := &p.ops[in.op]
	for _, id := range in.ids {
		fmt.Fprintf(progress, "\rFetching: %s", id)
		in.pkg = pkgFile{id: id}
		if _, err := os.Lstat(filepath.Join(p.cfg.repository(), id.String())); err == nil {
			in.pkgs = append(in.pkgs, in.pkg)
			continue
		}
		up, err := p.uploads.begin()
		if err != nil {
			if errors.Is(err, errUploadsFull) {
				p.m.uploadsRejected.Inc()
			}
			return uploadFailure(err, p.cfg.maxAddSize())
		}
		in.ups = append(in.ups, up)
		name := id.String() + ".tar.xz"
		err = p.download(ctx, up, in.url, id, name)
		up.received()
		if err != nil {
			if errors.Is(err, errUploadsFull) || errors.Is(err, errDraining) {
				return uploadFailure(err, p.cfg.maxAddSize())
			}
			p.log.Warn().Err(err).Str("route", s.actor).Str("package", id.String()).Msg("package download failed")
			return p.hideFileFailure(in, failed(s.statuses.toolErr, "Unable to fetch package %s: %v", id, err))
		}
		in.pkgs = append(in.pkgs, pkgFile{id: id, path: up.path(name)})
	}
	return nil
}

func isFileURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && strings.EqualFold(u.Scheme, "file")
}

// download copies <repositoryURL>/packages/<name>/<id>.tar.xz into the
// upload's file name, at most MaxAddSize bytes.
func (p *Process) download(ctx context.Context, up *upload, repositoryURL string, id cli.ID, name string) error {
	src := strings.TrimRight(repositoryURL, "/") + "/packages/" + id.Name + "/" + id.String() + ".tar.xz"
	u, err := url.Parse(src)
	if err != nil {
		return fmt.Errorf("parsing the package URL: %w", err)
	}
	limit := p.cfg.maxAddSize()
	switch strings.ToLower(u.Scheme) {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("file URL %s names a host", src)
		}
		path := u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		if !filepath.IsAbs(path) {
			base := p.cfg.Dir
			if base == "" {
				if base, err = os.Getwd(); err != nil {
					return err
				}
			}
			path = filepath.Join(base, path)
		}
		// O_NONBLOCK: a FIFO must not block the open; only regular files
		// are read.
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		_, err = p.receive(up, name, f, limit)
		return err
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return err
		}
		resp, err := p.fetchClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", src, resp.Status)
		}
		_, err = p.receive(up, name, resp.Body, limit)
		return err
	}
	return fmt.Errorf("unsupported repository URL scheme %q", u.Scheme)
}
