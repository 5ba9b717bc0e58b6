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
	"time"

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

// fetchJob is one fetch in its two steps, so that only the second holds
// any lock: stage downloads each package (`<url>/packages/<name>/<id>.tar.xz`,
// the URL's trailing `/` stripped; file:// or http(s)://) into an upload
// file, on a goroutine of its own before the fetch is queued, so a
// repository that never answers delays no read and occupies no actor;
// install then runs as an ordinary mutation (write lock, repository lock)
// and installs each download with `pkgpanda add`, keeping the CLI as the
// ABI for repository changes. A package already in the repository is not
// downloaded; add reports it. Progress goes to out as the CLI prints it
// (`\rFetching: <id>`, `\rFetched: <id>\n`). A file:// failure, of the
// download or of the add, is one generic error whatever its cause, so
// that a caller cannot probe the daemon's files; the cause is logged.
type fetchJob struct {
	p         *Process
	route     string
	url       string
	ids       []cli.ID
	m         statusMap
	out       *countWriter
	collect   bool // out writes to collected, for the response's Output
	collected bytes.Buffer
	downloads []fetched
	ups       []*upload
}

type fetched struct {
	id   cli.ID
	file string // empty: already in the repository
}

// newFetchJob prepares a fetch; stream, if set, receives the progress,
// otherwise it is collected into the response's Output.
func (p *Process) newFetchJob(route, rawURL string, ids []cli.ID, stream io.Writer, m statusMap) *fetchJob {
	f := &fetchJob{p: p, route: route, url: rawURL, ids: ids, m: m}
	f.out = &countWriter{w: stream}
	if stream == nil {
		f.out.w, f.collect = &f.collected, true
	}
	return f
}

// release removes the downloads.
func (f *fetchJob) release() {
	for _, up := range f.ups {
		up.remove()
	}
	f.ups = nil
}

// generic hides a file:// failure's cause from the caller.
func (f *fetchJob) generic(id cli.ID, r *PkgpandaResponse) *PkgpandaResponse {
	if !isFileURL(f.url) {
		return r
	}
	f.p.log.Warn().Str("route", f.route).Str("package", id.String()).Int("status", int(r.Status)).Str("cause", r.Error).
		Msg("fetch from a file:// repository failed (the caller gets a generic error)")
	return failed(f.m.toolErr, "Unable to fetch package %s from the file:// repository", id)
}

// stage downloads the packages; nil means every download is on disk.
func (f *fetchJob) stage(timeout time.Duration) *PkgpandaResponse {
	p := f.p
	ctx, cancel := context.WithTimeout(p.drainCtx, timeout)
	defer cancel()
	for _, id := range f.ids {
		fmt.Fprintf(f.out, "\rFetching: %s", id)
		if _, err := os.Lstat(filepath.Join(p.cfg.repository(), id.String())); err == nil {
			f.downloads = append(f.downloads, fetched{id: id})
			continue
		}
		up, err := p.uploads.begin()
		if err != nil {
			if errors.Is(err, errUploadsFull) {
				p.m.uploadsRejected.Inc()
			}
			return uploadFailure(err, p.cfg.maxAddSize())
		}
		f.ups = append(f.ups, up)
		name := id.String() + ".tar.xz"
		err = p.download(ctx, up, f.url, id, name)
		up.received()
		if err != nil {
			if errors.Is(err, errUploadsFull) || errors.Is(err, errDraining) {
				return uploadFailure(err, p.cfg.maxAddSize())
			}
			p.log.Warn().Err(err).Str("route", f.route).Str("package", id.String()).Msg("package download failed")
			return f.generic(id, failed(f.m.toolErr, "Unable to fetch package %s: %v", id, err))
		}
		f.downloads = append(f.downloads, fetched{id: id, file: up.path(name)})
	}
	return nil
}

// install adds the downloads; it runs as a mutation on actor a.
func (f *fetchJob) install(a *actor) (answer *PkgpandaResponse) {
	defer a.noteOutcome(a.enterOp(), &answer) // for the audit log
	p := f.p
	r := ok(http.StatusOK)
	for _, d := range f.downloads {
		if d.file == "" {
			fmt.Fprintf(f.out, "\rFetched: %s\nPackage already added.\n", d.id)
			r.AlreadyAdded = true
			continue
		}
		argv, err := p.cfg.Tool.Add(d.file)
		res, fail := p.collect(context.Background(), a, argv, err, f.m)
		if fail != nil {
			return f.generic(d.id, fail)
		}
		if bytes.Contains(res.Stdout, []byte("Package already added.")) {
			r.AlreadyAdded = true
		}
		fmt.Fprintf(f.out, "\rFetched: %s\n", d.id)
	}
	if f.collect {
		r.Output = f.collected.String()
	}
	return r
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
