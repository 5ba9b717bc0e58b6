package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/gogo/protobuf/proto"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// apiV1Route is the pkgpanda process' route that takes calls over HTTP.
const apiV1Route = "api/v1"

// NewHTTP returns a client that posts calls to base + "/api/v1", where
// base is the pkgpanda process' URL, e.g. "http://10.0.0.2:5052/pkgpanda".
func NewHTTP(base string, opts ...Option) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("pkgpanda client: parsing the base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("pkgpanda client: base URL %q is not http(s)://host[:port]/<process id>", base)
	}
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	hc := o.httpClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{opts: o, t: &httpTransport{
		url:    strings.TrimSuffix(u.String(), "/") + "/" + apiV1Route,
		client: hc,
		opts:   &o,
	}}, nil
}

// httpTransport posts protobuf calls to api/v1.
type httpTransport struct {
	url    string
	client *http.Client
	opts   *options
}

// tarballKey is the protobuf key of PkgpandaCall.tarball: field 5,
// length-delimited (wire type 2).
const tarballKey = 5<<3 | 2

// callBody returns the protobuf encoding of c followed, when tb is not
// nil, by its tarball field, streamed from tb.r, and the body's length.
// Protobuf lets fields come in any order, so the fields of c, encoded at
// once, then the tarball's key, length and bytes, are one PkgpandaCall.
func callBody(c *pb.PkgpandaCall, tb *tarballArg) (io.Reader, int64, error) {
	head, err := proto.Marshal(c)
	if err != nil {
		return nil, 0, fmt.Errorf("encoding the call: %w", err)
	}
	if tb == nil {
		return bytes.NewReader(head), int64(len(head)), nil
	}
	head = binary.AppendUvarint(head, tarballKey)
	head = binary.AppendUvarint(head, uint64(tb.size))
	return io.MultiReader(bytes.NewReader(head), &exactReader{r: tb.r, n: tb.size}), int64(len(head)) + tb.size, nil
}

func (t *httpTransport) call(ctx context.Context, c *pb.PkgpandaCall, tb *tarballArg) (*pb.PkgpandaResponse, error) {
	body, size, err := callBody(c, tb)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, io.NopCloser(body))
	if err != nil {
		return nil, fmt.Errorf("making the request: %w", err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", pb.MediaProtobuf)
	req.Header.Set("Accept", pb.MediaProtobuf)
	if t.opts.authorization != "" {
		req.Header.Set("Authorization", t.opts.authorization)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, t.opts.maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if int64(len(b)) > t.opts.maxResponse {
		return nil, fmt.Errorf("the answer exceeds %d bytes", t.opts.maxResponse)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == pb.MediaProtobuf {
		r := &pb.PkgpandaResponse{}
		if err := proto.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("decoding the answer (status %d): %w", resp.StatusCode, err)
		}
		return r, nil
	}
	// Refusals before the call is decoded (authentication, negotiation,
	// limits) are answered {"error": …} or plain text, not a response.
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil, fmt.Errorf("answer %d of type %q, want %s", resp.StatusCode, resp.Header.Get("Content-Type"), pb.MediaProtobuf)
	}
	msg := strings.TrimSpace(string(b))
	var obj struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &obj) == nil && obj.Error != "" {
		msg = obj.Error
	}
	return &pb.PkgpandaResponse{Type: c.Type, RequestId: c.RequestId, Status: int32(resp.StatusCode), Error: msg}, nil
}

func (t *httpTransport) close() error {
	if t.opts.httpClient == nil {
		return nil // http.DefaultClient is shared: not ours to close
	}
	t.client.CloseIdleConnections()
	return nil
}
