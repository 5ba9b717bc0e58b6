// Package client is a typed Go client for the pkgpanda process
// (pkgpanda@host:port, served by pkgpandad). It offers one method per
// operation and speaks either of the process' two protocols:
//
//   - messages: a PkgpandaCall libprocess message, answered by a
//     PkgpandaResponse message carrying the same request_id, sent from a
//     libprocess process of the client's own, on the caller's runtime
//     (WithRuntime) or on one the client starts (NewMessages);
//   - HTTP: POST /pkgpanda/api/v1 with a protobuf PkgpandaCall body,
//     answered by a protobuf PkgpandaResponse (NewHTTP). Add streams its
//     tarball from an io.Reader over this protocol.
//
// The messages are those of package pkgpandapb; the client depends on
// them and on libprocess, not on the process' implementation.
//
// Failures the process reports come back as *Error, which errors.Is
// matches against ErrNotFound, ErrConflict, ErrUnauthorized, ErrForbidden
// and ErrTooLarge; its Status holds any other status.
package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// Defaults of the options.
const (
	// defaultTimeout bounds one call when the context has no deadline.
	defaultTimeout = 5 * time.Minute
	// defaultMaxResponseBytes bounds an HTTP answer the client reads.
	defaultMaxResponseBytes = 64 << 20
)

// Option configures a Client.
type Option func(*options)

type options struct {
	authorization    string
	timeout          time.Duration
	maxResponse      int64
	httpClient       *http.Client
	listen           string
	runtime          *libprocess.Runtime
	processIDPrefix  string
	responseIDLength int
}

func defaultOptions() options {
	return options{
		timeout:          defaultTimeout,
		maxResponse:      defaultMaxResponseBytes,
		processIDPrefix:  "pkgpanda-client",
		responseIDLength: 16,
	}
}

// WithAuthorization sends credentials with every call: the value an HTTP
// Authorization header holds ("Basic …" or "Bearer …"). Over messages it
// travels in PkgpandaCall.authorization, over HTTP in the header.
func WithAuthorization(authorization string) Option {
	return func(o *options) { o.authorization = authorization }
}

// WithBasicAuth is WithAuthorization for HTTP Basic credentials.
func WithBasicAuth(user, password string) Option {
	return WithAuthorization("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
}

// WithBearerToken is WithAuthorization for a bearer token (JWT).
func WithBearerToken(token string) Option {
	return WithAuthorization("Bearer " + token)
}

// WithTimeout bounds each call whose context has no earlier deadline
// (5 minutes when not given; zero or less leaves calls unbounded but for
// their context).
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithMaxResponseBytes bounds an HTTP answer (64 MiB when not given).
func WithMaxResponseBytes(n int64) Option {
	return func(o *options) { o.maxResponse = n }
}

// WithHTTPClient sets the HTTP client of NewHTTP (http.DefaultClient when
// not given).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) { o.httpClient = c }
}

// WithListen sets the "ip:port" the runtime NewMessages starts listens on
// and advertises; the process' replies are sent there. By default the
// client listens on an ephemeral port of the local address that routes to
// the target.
func WithListen(hostport string) Option {
	return func(o *options) { o.listen = hostport }
}

// WithRuntime makes NewMessages use rt, a started runtime of the caller,
// instead of starting one: the client spawns its process there and
// terminates only that process on Close, leaving rt running. The target
// must be able to reach the address rt advertises. It excludes WithListen.
func WithRuntime(rt *libprocess.Runtime) Option {
	return func(o *options) { o.runtime = rt }
}

// transport sends one call and waits for its response.
type transport interface {
	// call sends c and returns its answer. tb, when not nil, is c's
	// tarball, which the transport reads exactly once, to its size.
	call(ctx context.Context, c *pb.PkgpandaCall, tb *tarballArg) (*pb.PkgpandaResponse, error)
	close() error
}

// tarballArg is the tarball of an ADD call: size bytes to read from r.
type tarballArg struct {
	r    io.Reader
	size int64
}

// exactReader reads exactly n bytes of r: an end of r before them is
// io.ErrUnexpectedEOF, and nothing after them is read.
type exactReader struct {
	r io.Reader
	n int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= int64(n)
	if err == io.EOF {
		if e.n > 0 {
			return n, fmt.Errorf("the tarball ends %d bytes before its size: %w", e.n, io.ErrUnexpectedEOF)
		}
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("reading the tarball: %w", err)
	}
	return n, nil
}

// Client calls the operations of one pkgpanda process. It is safe for
// concurrent use. Close releases it.
type Client struct {
	opts options
	t    transport
}

// newRequestID returns a random request id: responses are matched by it,
// so it must not be guessable by a third party on the network.
func newRequestID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a request id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// do runs one call of the given type and turns a failed response into an
// *Error.
func (c *Client) do(ctx context.Context, call *pb.PkgpandaCall, tb *tarballArg) (*pb.PkgpandaResponse, error) {
	if c.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.timeout)
		defer cancel()
	}
	id, err := newRequestID(c.opts.responseIDLength)
	if err != nil {
		return nil, err
	}
	call.RequestId = id
	r, err := c.t.call(ctx, call, tb)
	if err != nil {
		return nil, fmt.Errorf("pkgpanda %s: %w", call.Type, err)
	}
	if r.RequestId != id || r.Type != call.Type {
		return nil, fmt.Errorf("pkgpanda %s: answer for request %q of type %s, want request %q", call.Type, r.RequestId, r.Type, id)
	}
	if r.Status < 200 || r.Status > 299 {
		return r, &Error{Op: call.Type.String(), Status: int(r.Status), Message: r.Error, MissingPackages: r.MissingPackages}
	}
	return r, nil
}

// Close releases the client: for a message client, its process and the
// runtime it started.
func (c *Client) Close() error { return c.t.close() }

// List returns the ids of the packages in the repository, sorted.
func (c *Client) List(ctx context.Context) ([]string, error) {
	r, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_LIST}, nil)
	if err != nil {
		return nil, err
	}
	return r.PackageIds, nil
}

// Active returns the ids of the active packages, sorted.
func (c *Client) Active(ctx context.Context) ([]string, error) {
	r, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_ACTIVE}, nil)
	if err != nil {
		return nil, err
	}
	return r.PackageIds, nil
}

// Package names one package.
type Package struct {
	ID      string // <name>--<version>
	Name    string
	Version string
}

func toPackage(p *pb.PkgpandaPackage) Package {
	if p == nil {
		return Package{}
	}
	return Package{ID: p.Id, Name: p.Name, Version: p.Version}
}

// Get returns package id from the repository; ErrNotFound when it is not
// there.
func (c *Client) Get(ctx context.Context, id string) (Package, error) {
	r, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_GET_PACKAGE, PackageIds: []string{id}}, nil)
	if err != nil {
		return Package{}, err
	}
	return toPackage(r.Package), nil
}

// GetActive returns package id if it is active; ErrNotFound otherwise.
func (c *Client) GetActive(ctx context.Context, id string) (Package, error) {
	r, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_GET_ACTIVE_PACKAGE, PackageIds: []string{id}}, nil)
	if err != nil {
		return Package{}, err
	}
	return toPackage(r.Package), nil
}

// AddResult is what Add and Fetch report.
type AddResult struct {
	Package      Package // Add: the package added
	AlreadyAdded bool    // the package was in the repository already
	Output       string  // Fetch: the tool's output
}

// Add adds package id to the repository from its tarball (the .tar.xz
// contents): exactly size bytes read from tarball; a tarball that ends
// before is an error, and what follows is not read.
//
// Over HTTP (NewHTTP) the tarball is streamed: Add writes the call's
// protobuf encoding itself, the tarball field last, and copies the
// tarball from the reader to the connection, so it never holds the
// tarball in memory; the process writes it to disk as it arrives.
//
// Over messages (NewMessages) a libprocess message carries the whole
// tarball in its body, which the process' runtime caps (MaxMessageSize,
// 16 MiB by default) and would answer larger with a closed connection
// rather than a reply. Add therefore reads the tarball into memory, and
// refuses one larger than 16 MiB less 64 KiB before reading anything,
// with an error matching ErrTooLarge: add larger packages over HTTP.
func (c *Client) Add(ctx context.Context, id string, tarball io.Reader, size int64) (AddResult, error) {
	if size < 0 {
		return AddResult{}, fmt.Errorf("pkgpanda ADD %s: negative tarball size %d", id, size)
	}
	r, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_ADD, PackageIds: []string{id}}, &tarballArg{r: tarball, size: size})
	if err != nil {
		return AddResult{}, err
	}
	return AddResult{Package: toPackage(r.Package), AlreadyAdded: r.AlreadyAdded}, nil
}

// Fetch adds packages ids to the repository from the remote repository
// at repositoryURL.
func (c *Client) Fetch(ctx context.Context, repositoryURL string, ids ...string) (AddResult, error) {
	r, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_FETCH, PackageIds: ids, RepositoryUrl: repositoryURL}, nil)
	if err != nil {
		return AddResult{}, err
	}
	return AddResult{Package: toPackage(r.Package), AlreadyAdded: r.AlreadyAdded, Output: r.Output}, nil
}

// Remove removes packages ids from the repository and returns the ids
// actually removed.
func (c *Client) Remove(ctx context.Context, ids ...string) ([]string, error) {
	r, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_REMOVE, PackageIds: ids}, nil)
	if err != nil {
		return nil, err
	}
	return r.PackageIds, nil
}

// Activate makes ids the active set. A refusal because some are not in
// the repository is an *Error with Status 409 and MissingPackages.
func (c *Client) Activate(ctx context.Context, ids ...string) error {
	_, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_ACTIVATE, PackageIds: ids}, nil)
	return err
}

// Swap activates package id in place of the active package of the same
// name.
func (c *Client) Swap(ctx context.Context, id string) error {
	_, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_SWAP, PackageIds: []string{id}}, nil)
	return err
}

// Check runs the checks of the active packages and returns their output.
// Failing checks are an *Error carrying the status the process chose.
func (c *Client) Check(ctx context.Context) (string, error) {
	r, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_CHECK}, nil)
	if err != nil {
		return "", err
	}
	return r.Output, nil
}

// Checks lists the checks of one active package.
type Checks struct {
	PackageID string
	Checks    []string
}

// CheckList lists the checks of the active packages without running them.
func (c *Client) CheckList(ctx context.Context) ([]Checks, error) {
	r, err := c.do(ctx, &pb.PkgpandaCall{Type: pb.PkgpandaCall_CHECK, ListChecks: true}, nil)
	if err != nil {
		return nil, err
	}
	out := make([]Checks, 0, len(r.Checks))
	for _, ch := range r.Checks {
		out = append(out, Checks{PackageID: ch.PackageId, Checks: ch.Checks})
	}
	return out, nil
}

// Sentinels a failed operation's *Error matches with errors.Is.
var (
	ErrNotFound     = errors.New("pkgpanda: not found")      // status 404
	ErrConflict     = errors.New("pkgpanda: conflict")       // status 409
	ErrUnauthorized = errors.New("pkgpanda: unauthorized")   // status 401
	ErrForbidden    = errors.New("pkgpanda: forbidden")      // status 403
	ErrTooLarge     = errors.New("pkgpanda: body too large") // status 413
)

// Error is an operation the pkgpanda process answered with a failure.
type Error struct {
	Op      string // the call type, e.g. "ACTIVATE"
	Status  int    // the HTTP status the operation answers with
	Message string // the process' (or the tool's) message
	// MissingPackages lists the ids ACTIVATE found missing (409).
	MissingPackages []string
}

// Error implements error.
func (e *Error) Error() string {
	s := fmt.Sprintf("pkgpanda %s: %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Message)
	if len(e.MissingPackages) > 0 {
		s += fmt.Sprintf(" (missing %v)", e.MissingPackages)
	}
	return s
}

// Is matches the sentinel of e's status.
func (e *Error) Is(target error) bool {
	switch e.Status {
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusConflict:
		return target == ErrConflict
	case http.StatusUnauthorized:
		return target == ErrUnauthorized
	case http.StatusForbidden:
		return target == ErrForbidden
	case http.StatusRequestEntityTooLarge:
		return target == ErrTooLarge
	}
	return false
}
