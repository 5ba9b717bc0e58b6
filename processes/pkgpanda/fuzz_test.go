package pkgpanda

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/gogo/protobuf/proto"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// FuzzNegotiate checks that negotiate either picks supported media types
// or fails with one of the statuses the API documents.
func FuzzNegotiate(f *testing.F) {
	f.Fuzz(func(t *testing.T, contentType, accept string) {
		req, resp, err := negotiate(contentType, accept)
		if err != nil {
			var ne *negotiateError
			if !errors.As(err, &ne) {
				t.Fatalf("error of type %T", err)
			}
			switch ne.Status {
			case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusNotAcceptable:
			default:
				t.Fatalf("status %d", ne.Status)
			}
			return
		}
		for _, mt := range []string{req, resp} {
			if mt != pb.MediaJSON && mt != pb.MediaProtobuf {
				t.Fatalf("media type %q", mt)
			}
		}
	})
}

// FuzzDecodeCall decodes arbitrary bodies as JSON and protobuf calls and
// validates them: a call that passes validation never carries an invalid
// package id (ACTIVATE excepted: its ids are compared with the repository's
// listing, as DC/OS does), and a decoded protobuf call re-encodes to an
// equal call.
func FuzzDecodeCall(f *testing.F) {
	p, err := New(Config{Tool: cli.Tool{Path: "/nonexistent/pkgpanda"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		mt := pb.MediaProtobuf
		if asJSON {
			mt = pb.MediaJSON
		}
		call, err := decodeCall(mt, body)
		if err != nil {
			return
		}
		if !asJSON {
			b, err := proto.Marshal(call)
			if err != nil {
				t.Fatalf("re-encoding: %v", err)
			}
			var again pb.PkgpandaCall
			if err := proto.Unmarshal(b, &again); err != nil || !proto.Equal(&again, call) {
				t.Fatalf("round trip: %v vs %v (%v)", call, &again, err)
			}
		}
		pc, fail := p.prepare(call, nil)
		if (pc == nil) == (fail == nil) {
			t.Fatalf("prepare gave %v and %v", pc, fail)
		}
		if fail != nil {
			if fail.Status < 400 || fail.Error == "" {
				t.Fatalf("failure without error status: %v", fail)
			}
			return
		}
		if call.GetType() == pb.PkgpandaCall_ACTIVATE {
			// DC/OS takes ACTIVATE's ids as sent: one that is not a valid
			// id is a missing package (409), found by comparing with the
			// repository's listing, and only listed ids reach the tool
			// (checkAllPresent).
			return
		}
		for _, id := range call.PackageIds {
			if err := cli.ValidID(id); err != nil {
				t.Fatalf("accepted invalid id %q for %v", id, call.GetType())
			}
		}
	})
}

// FuzzScanCall checks the streaming protobuf scanner of api/v1 against
// proto.Unmarshal: whenever the scanner accepts a body and its other
// fields decode, the whole body decodes to the same call, tarball
// included; and the other fields never exceed their cap.
func FuzzScanCall(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, maxOther uint16) {
		var tb []byte
		calls := 0
		other, err := scanCall(bufio.NewReader(bytes.NewReader(body)), int(maxOther), func(r io.Reader, n int64) error {
			calls++
			if n > int64(len(body)) {
				return errUploadTooLarge // as the size cap does
			}
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if int64(len(b)) != n {
				return io.ErrUnexpectedEOF
			}
			tb = b
			return nil
		})
		if err != nil {
			return
		}
		if len(other) > int(maxOther) || calls > 1 {
			t.Fatalf("other fields %d bytes (cap %d), tarball callbacks %d", len(other), maxOther, calls)
		}
		var got pb.PkgpandaCall
		if proto.Unmarshal(other, &got) != nil {
			return
		}
		got.Tarball = tb
		var want pb.PkgpandaCall
		if err := proto.Unmarshal(body, &want); err != nil {
			t.Fatalf("scanner accepted what proto.Unmarshal refuses (%v): %x", err, body)
		}
		if len(want.Tarball) == 0 && len(got.Tarball) == 0 {
			got.Tarball, want.Tarball = nil, nil
		}
		if !proto.Equal(&got, &want) {
			t.Fatalf("scanned %v, decoded %v", &got, &want)
		}
	})
}

// FuzzParseActiveBody checks PUT /active/'s body parser: it never
// panics, fails only with DC/OS's 400s, returns ids or other elements,
// never both, and the other elements are distinct JSON scalars.
func FuzzParseActiveBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		ids, others, fail := parseActiveBody(contentType, body)
		if fail != nil {
			if fail.Status != http.StatusBadRequest || (fail.Error != msgActiveBody && fail.Error != msgActiveElements) {
				t.Fatalf("failure %d %q", fail.Status, fail.Error)
			}
			if ids != nil || others != nil {
				t.Fatalf("failure with results %q %v", ids, others)
			}
			return
		}
		if !isJSONMedia(contentType) || !json.Valid(body) {
			t.Fatalf("accepted %q as %q", body, contentType)
		}
		if (ids == nil) == (others == nil) {
			t.Fatalf("want ids or others: %q %v", ids, others)
		}
		seen := map[string]bool{}
		for _, o := range others {
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatalf("element %v does not encode: %v", o, err)
			}
			if b[0] == '[' || b[0] == '{' || b[0] == '"' || seen[string(b)] {
				t.Fatalf("element %s is not a distinct scalar", b)
			}
			seen[string(b)] = true
		}
	})
}

// FuzzParseFetchBody checks POST /repository/<id>'s body parser: it never
// panics, accepts only JSON objects sent as JSON, and a good URL is the
// object's repository_url string.
func FuzzParseFetchBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		url, badURL, ok := parseFetchBody(contentType, body)
		if !ok {
			if url != "" || badURL {
				t.Fatalf("refused with %q %v", url, badURL)
			}
			return
		}
		var obj map[string]any
		if !isJSONMedia(contentType) || json.Unmarshal(body, &obj) != nil || obj == nil {
			t.Fatalf("accepted %q as %q", body, contentType)
		}
		v, has := obj["repository_url"]
		if !has {
			t.Fatalf("accepted %q without repository_url", body)
		}
		if s, isStr := v.(string); !badURL && v != nil && (!isStr || s != url) {
			t.Fatalf("url %q from %q", url, body)
		}
	})
}
