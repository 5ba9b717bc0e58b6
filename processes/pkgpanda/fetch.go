package pkgpanda

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
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

// opFetch fetches packages the way `pkgpanda fetch` does, in two steps so
// that only the second holds the write lock: each package is downloaded
// (`<url>/packages/<name>/<id>.tar.xz`, the URL's trailing `/` stripped;
// file:// or http(s)://) into an upload file, without any lock, so a
// repository that never answers delays no read; then, under the write
// lock and the repository lock, `pkgpanda add` installs each download (the
// CLI stays the ABI for repository changes). A package already in the
// repository is not downloaded; add reports it. Progress goes to stream,
// if set, as the CLI prints it (`\rFetching: <id>`, `\rFetched: <id>\n`);
// otherwise the output is collected. m maps failures. A file:// download
// failure is one generic error whatever its cause, so that a caller cannot
// probe the daemon's files; the cause is logged.
func (p *Process) opFetch(a *actor, rawURL string, ids []cli.ID, stream io.Writer, m statusMap) (*PkgpandaResponse, bool) {
	var out bytes.Buffer
	w := io.Writer(&out)
	cw := &countWriter{w: io.Discard}
	if stream != nil {
		cw.w = stream
		w = cw
	}
	type download struct {
		id   cli.ID
		file string // empty: already in the repository
	}
	var downloads []download
	var ups []*upload
	defer func() {
		for _, up := range ups {
			up.remove()
		}
	}()
	ctx, cancel := context.WithTimeout(p.drainCtx, a.limits.Timeout)
	defer cancel()
	for _, id := range ids {
		fmt.Fprintf(w, "\rFetching: %s", id)
		if _, err := os.Lstat(filepath.Join(p.cfg.repository(), id.String())); err == nil {
			downloads = append(downloads, download{id: id})
			continue
		}
		up, err := p.uploads.begin()
		if err != nil {
			if errors.Is(err, errUploadsFull) {
				p.m.uploadsRejected.Inc()
			}
			return uploadFailure(err, p.cfg.maxAddSize()), cw.n > 0
		}
		ups = append(ups, up)
		name := id.String() + ".tar.xz"
		err = p.download(ctx, up, rawURL, id, name)
		up.received()
		if err != nil {
			ev := p.log.Warn().Err(err).Str("route", a.route).Str("package", id.String())
			if isFileURL(rawURL) {
				ev.Msg("fetch from a file:// repository failed (the caller gets a generic error)")
				return failed(m.toolErr, "Unable to fetch package %s from the file:// repository", id), cw.n > 0
			}
			ev.Str("repository_url", rawURL).Msg("fetch failed")
			if errors.Is(err, errUploadsFull) || errors.Is(err, errDraining) {
				return uploadFailure(err, p.cfg.maxAddSize()), cw.n > 0
			}
			return failed(m.toolErr, "Unable to fetch package %s: %v", id, err), cw.n > 0
		}
		downloads = append(downloads, download{id: id, file: up.path(name)})
	}
	r := p.withWriteLock(a, func() *PkgpandaResponse {
		r := ok(http.StatusOK)
		for _, d := range downloads {
			if d.file == "" {
				fmt.Fprintf(w, "\rFetched: %s\nPackage already added.\n", d.id)
				r.AlreadyAdded = true
				continue
			}
			argv, err := p.cfg.Tool.Add(d.file)
			res, fail := p.collect(context.Background(), a, argv, err, m)
			if fail != nil {
				return fail
			}
			if bytes.Contains(res.Stdout, []byte("Package already added.")) {
				r.AlreadyAdded = true
			}
			fmt.Fprintf(w, "\rFetched: %s\n", d.id)
		}
		return r
	})
	if stream == nil && r.Status < 400 {
		r.Output = out.String()
	}
	return r, cw.n > 0
}

// withWriteLock runs f as a mutation: under the write lock and the
// repository lock (inherited by f's children), unless the process is
// draining or an interrupted activation is left on disk. It is for
// operations that prepare outside the lock (fetch).
func (p *Process) withWriteLock(a *actor, f func() *PkgpandaResponse) *PkgpandaResponse {
	p.rw.Lock()
	defer p.rw.Unlock()
	if p.isDraining() {
		return failed(http.StatusServiceUnavailable, "pkgpanda is shutting down")
	}
	if status, msg := p.installBlocked(); status != 0 {
		return failed(status, "%s", msg)
	}
	lock, err := p.lockRepository(a)
	if err != nil {
		return failed(http.StatusServiceUnavailable, "%v", err)
	}
	a.inherit = []*os.File{lock}
	defer func() {
		a.inherit = nil
		lock.Close()
	}()
	return f()
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
