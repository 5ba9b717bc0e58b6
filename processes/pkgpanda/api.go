package pkgpanda

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gogo/protobuf/jsonpb"
	"github.com/gogo/protobuf/proto"
	"github.com/procpanda/procpanda/libprocess"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// negotiateError is a content negotiation failure of api/v1: Status is
// 400 (no Content-Type), 415 (unsupported Content-Type) or 406
// (unacceptable Accept).
type negotiateError struct {
	Status int
	Msg    string
}

// Error returns the message.
func (e *negotiateError) Error() string { return e.Msg }

// negotiate picks the request and response media types of an api/v1
// request from its Content-Type and Accept headers, as Mesos' operator API
// does: the request must be application/json or application/x-protobuf
// (parameters such as charset are allowed); the response is JSON when
// Accept is empty or accepts JSON (application/json, application/*, */*
// with a non-zero quality), else protobuf when Accept accepts it, else a
// *negotiateError with status 406.
func negotiate(contentType, accept string) (request, response string, err error) {
	if strings.TrimSpace(contentType) == "" {
		return "", "", &negotiateError{http.StatusBadRequest, "Expecting 'Content-Type' to be present"}
	}
	mt, _, perr := mime.ParseMediaType(contentType)
	switch {
	case perr != nil:
		return "", "", &negotiateError{http.StatusUnsupportedMediaType, "unparsable Content-Type: " + perr.Error()}
	case mt == pb.MediaJSON || mt == pb.MediaProtobuf:
		request = mt
	default:
		return "", "", &negotiateError{http.StatusUnsupportedMediaType,
			fmt.Sprintf("Expecting 'Content-Type' of %s or %s", pb.MediaJSON, pb.MediaProtobuf)}
	}
	if strings.TrimSpace(accept) == "" {
		return request, pb.MediaJSON, nil
	}
	if acceptsMedia(accept, pb.MediaJSON) {
		return request, pb.MediaJSON, nil
	}
	if acceptsMedia(accept, pb.MediaProtobuf) {
		return request, pb.MediaProtobuf, nil
	}
	return "", "", &negotiateError{http.StatusNotAcceptable,
		fmt.Sprintf("Expecting 'Accept' to allow %s or %s", pb.MediaJSON, pb.MediaProtobuf)}
}

// acceptsMedia reports whether an Accept header accepts media type mt
// (type/subtype) with a non-zero quality; the most specific matching range
// decides.
func acceptsMedia(accept, mt string) bool {
	typ, _, _ := strings.Cut(mt, "/")
	best, bestQ := -1, 0.0
	for _, part := range strings.Split(accept, ",") {
		rng, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		rng = strings.ToLower(strings.TrimSpace(rng))
		spec := -1
		switch {
		case rng == mt:
			spec = 2
		case rng == typ+"/*":
			spec = 1
		case rng == "*/*":
			spec = 0
		}
		if spec < 0 || spec < best {
			continue
		}
		q := 1.0
		for _, prm := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(prm), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		if spec > best || q > bestQ {
			best, bestQ = spec, q
		}
	}
	return best >= 0 && bestQ > 0
}

// decodeCall decodes a PkgpandaCall body of media type MediaJSON (protobuf
// JSON mapping; field names as in the .proto or lowerCamelCase, enum
// values by name or number; unknown fields rejected) or MediaProtobuf.
func decodeCall(mediaType string, body []byte) (*pb.PkgpandaCall, error) {
	call := &pb.PkgpandaCall{}
	switch mediaType {
	case pb.MediaJSON:
		u := jsonpb.Unmarshaler{}
		if err := u.Unmarshal(bytes.NewReader(body), call); err != nil {
			return nil, fmt.Errorf("decoding a JSON PkgpandaCall: %w", err)
		}
	case pb.MediaProtobuf:
		if err := proto.Unmarshal(body, call); err != nil {
			return nil, fmt.Errorf("decoding a protobuf PkgpandaCall: %w", err)
		}
	default:
		return nil, fmt.Errorf("decoding a PkgpandaCall: unsupported media type %q", mediaType)
	}
	return call, nil
}

// encodeResponse encodes r as mediaType (MediaJSON: protobuf JSON mapping
// with the .proto's field names and enum names; MediaProtobuf: binary).
func encodeResponse(mediaType string, r *pb.PkgpandaResponse) ([]byte, error) {
	switch mediaType {
	case pb.MediaJSON:
		var buf bytes.Buffer
		m := jsonpb.Marshaler{OrigName: true}
		if err := m.Marshal(&buf, r); err != nil {
			return nil, fmt.Errorf("encoding a JSON PkgpandaResponse: %w", err)
		}
		return buf.Bytes(), nil
	case pb.MediaProtobuf:
		b, err := proto.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encoding a protobuf PkgpandaResponse: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("encoding a PkgpandaResponse: unsupported media type %q", mediaType)
}

// prepare validates call without running anything, with the operation
// table: the call type names the operation, whose prepare is the same one
// its HTTP route runs. tb is the call's tarball, already on disk in its
// upload file "tarball" (nil when the call has none); on success the
// prepared call holds it. It returns either the prepared call or an
// immediate failure.
func (p *Process) prepare(call *pb.PkgpandaCall, tb *upload) (*opArgs, *pb.PkgpandaResponse) {
	op, known := p.callOp(call)
	if !known {
		return nil, failed(http.StatusBadRequest, "unknown call type %s", call.Type)
	}
	spec := &p.ops[op]
	if n := len(call.PackageIds); n < spec.minIDs || (spec.maxIDs >= 0 && n > spec.maxIDs) {
		if spec.maxIDs == spec.minIDs {
			return nil, failed(http.StatusBadRequest, "%s takes %d package id(s), got %d", call.Type, spec.minIDs, n)
		}
		return nil, failed(http.StatusBadRequest, "%s takes at least %d package id(s), got %d", call.Type, spec.minIDs, n)
	}
	return p.prepareOp(op, opInput{ids: call.PackageIds, url: call.RepositoryUrl, tarball: tb})
}

// tarballFile is the name of a call's tarball in its upload directory
// until the call's package id names it.
const tarballFile = "tarball"

// dispatchCall validates call and submits it; finish receives the
// response (with the call's type and request id) exactly once, on some
// goroutine. who is the authenticated caller; tb the call's tarball on
// disk (nil for none), removed once the call is done. ctx, if non-nil, is
// the client's: it cancels a read-only call when its client goes.
func (p *Process) dispatchCall(ctx context.Context, call *pb.PkgpandaCall, who caller, tb *upload, finish func(*pb.PkgpandaResponse)) {
	done := func(r *pb.PkgpandaResponse) {
		r.Type = call.Type
		r.RequestId = call.RequestId
		finish(r)
	}
	args, fail := p.prepare(call, tb)
	if fail != nil {
		if tb != nil {
			tb.remove()
		}
		done(fail)
		return
	}
	p.newCall(ctx, args, who, done).submit()
}

// callWithTarball takes a decoded call whose tarball (if any) is in
// memory, writes the tarball to an upload file at once (so that a queued
// ADD holds a file name, not the bytes) and dispatches the call. A caller
// that would be refused ADD is refused before anything is written. ctx
// is as for dispatchCall.
func (p *Process) callWithTarball(ctx context.Context, call *pb.PkgpandaCall, who caller, finish func(*pb.PkgpandaResponse)) {
	if len(call.Tarball) == 0 {
		p.dispatchCall(ctx, call, who, nil, finish)
		return
	}
	reply := func(r *pb.PkgpandaResponse) {
		r.Type, r.RequestId = call.Type, call.RequestId
		finish(r)
	}
	if call.Type != pb.PkgpandaCall_ADD {
		call.Tarball = nil // only ADD takes one; nothing to keep
		p.dispatchCall(ctx, call, who, nil, finish)
		return
	}
	if r := p.admit(opAdd, who); r != nil {
		reply(failed(r.status, "%s", r.msg))
		return
	}
	limit := p.cfg.maxAddSize()
	if int64(len(call.Tarball)) > limit {
		p.m.uploadsTooLarge.Inc()
		reply(failed(http.StatusRequestEntityTooLarge, "the tarball exceeds %d bytes", limit))
		return
	}
	up, run, err := p.beginUpload()
	if err != nil {
		if errors.Is(err, errUploadsFull) {
			p.m.uploadsRejected.Inc()
		}
		reply(uploadFailure(err, limit))
		return
	}
	body := call.Tarball
	call.Tarball = nil
	run(func() { reply(failInternal()) }, func() {
		_, err := p.receive(up, tarballFile, bytes.NewReader(body), limit)
		up.received()
		if err != nil {
			up.remove()
			reply(uploadFailure(err, limit))
			return
		}
		p.dispatchCall(ctx, call, who, up, finish)
	})
}

// maxCallFields caps the bytes of an api/v1 body without its tarball,
// and of a JSON api/v1 body as a whole.
const maxCallFields = 1 << 20

func (p *Process) serveAPIv1(req *libprocess.Request, respond libprocess.Responder, who caller) {
	if !allowed(req, http.MethodPost) {
		respond(methodNotAllowed(http.MethodPost))
		return
	}
	if s := subPath(req); s != "" && s != "/" {
		respond(libprocess.ErrorResponse(http.StatusNotFound, "no such route"))
		return
	}
	reqType, respType, err := negotiate(req.Header().Get("Content-Type"), req.Header().Get("Accept"))
	if err != nil {
		status := http.StatusBadRequest
		if ne, ok := err.(*negotiateError); ok {
			status = ne.Status
		}
		respond(libprocess.ErrorResponse(status, err.Error()))
		return
	}
	mayMutate, _ := p.mayStart(who) // authenticated has answered those it refuses
	answer := func(r *pb.PkgpandaResponse) {
		body, err := encodeResponse(respType, r)
		if err != nil {
			respond(libprocess.ErrorResponse(http.StatusInternalServerError, err.Error()))
			return
		}
		resp := libprocess.Response{Status: int(r.Status), Header: http.Header{"Content-Type": {respType}}, Body: body}
		if resp.Status == http.StatusNoContent {
			// The body carries the request id; 204 cannot have one.
			resp.Status = http.StatusOK
		}
		p.decorate(&resp)
		respond(resp)
	}
	// checkCall applies the api/v1 rule for the authorization field: the
	// HTTP Authorization header authenticates; the field must be empty or
	// the very same credential, so a body cannot switch principals.
	checkCall := func(call *pb.PkgpandaCall) bool {
		if call.Authorization != "" && call.Authorization != req.Header().Get("Authorization") {
			answer(&pb.PkgpandaResponse{Type: call.Type, RequestId: call.RequestId, Status: http.StatusBadRequest,
				Error: "the authorization field differs from the Authorization header; over HTTP, authenticate with the header"})
			return false
		}
		call.Authorization = ""
		return true
	}
	if reqType == pb.MediaJSON {
		p.withBody(req, respond, maxCallFields, "a JSON api/v1 body is capped at 1 MiB: send large tarballs as "+pb.MediaProtobuf+" or to /pkgpanda/add", func(body []byte) {
			call, err := decodeCall(pb.MediaJSON, body)
			if err != nil {
				respond(libprocess.ErrorResponse(http.StatusBadRequest, err.Error()))
				return
			}
			if checkCall(call) {
				p.callWithTarball(req.Context(), call, who, answer)
			}
		})
		return
	}
	p.serveProtobufCall(req, respond, who, mayMutate, checkCall, answer)
}

// serveProtobufCall reads a protobuf api/v1 body with scanCall: the
// tarball goes straight from the socket to an upload file (bounded by the
// upload limits and MaxAddSize), the other fields (at most maxCallFields
// bytes) to memory. A caller that may not mutate cannot send a tarball.
// The body is read on a goroutine Drain waits for.
func (p *Process) serveProtobufCall(req *libprocess.Request, respond libprocess.Responder, who caller, mayMutate bool,
	checkCall func(*pb.PkgpandaCall) bool, answer func(*pb.PkgpandaResponse)) {
	var body io.Reader = bytes.NewReader(req.Body)
	if req.BodyStream != nil {
		body = req.BodyStream
	}
	limit := p.cfg.maxAddSize()
	var up *upload // the tarball's upload, once begun
	ok := p.goUpload("reading a protobuf api/v1 body", func() {
		if up != nil {
			up.remove()
		}
		answer(failInternal())
	}, func() {
		other, err := scanCall(bufio.NewReaderSize(body, 32<<10), maxCallFields, func(r io.Reader, n int64) error {
			switch {
			case n == 0:
				return nil
			case !mayMutate:
				return errMayNotMutate
			case n > limit:
				p.m.uploadsTooLarge.Inc()
				return errUploadTooLarge
			}
			var err error
			if up, err = p.uploads.begin(); err != nil {
				if errors.Is(err, errUploadsFull) {
					p.m.uploadsRejected.Inc()
				}
				return err
			}
			_, err = p.receive(up, tarballFile, r, limit)
			up.received()
			return err
		})
		var fail *pb.PkgpandaResponse
		var call pb.PkgpandaCall
		switch {
		case errors.Is(err, errMayNotMutate):
			if r := p.admit(opAdd, who); r != nil {
				fail = failed(r.status, "%s", r.msg)
			} else {
				fail = failed(http.StatusForbidden, "%v", err)
			}
		case errors.Is(err, errUploadTooLarge), errors.Is(err, errUploadsFull), errors.Is(err, errDraining), errors.Is(err, errWriteFile):
			fail = uploadFailure(err, limit)
		case errors.Is(err, errCallTooLarge):
			fail = failed(http.StatusRequestEntityTooLarge, "%v (at most %d bytes)", err, maxCallFields)
		case errors.Is(err, libprocess.ErrBodyTooLarge):
			fail = failed(http.StatusRequestEntityTooLarge, "the request body is too large")
		case err != nil:
			fail = failed(http.StatusBadRequest, "decoding a protobuf PkgpandaCall: %v", err)
		default:
			if uerr := proto.Unmarshal(other, &call); uerr != nil {
				fail = failed(http.StatusBadRequest, "decoding a protobuf PkgpandaCall: %v", uerr)
			}
		}
		if up != nil && (fail != nil || call.Type != pb.PkgpandaCall_ADD) {
			up.remove() // failed, or not an ADD: only ADD takes a tarball
			up = nil
		}
		if fail != nil {
			discardSome(body)
			p.rejectHTTP(respond)(int(fail.Status), fail.Error)
			return
		}
		if !checkCall(&call) {
			if up != nil {
				up.remove()
			}
			return
		}
		p.dispatchCall(req.Context(), &call, who, up, answer)
	})
	if !ok {
		p.rejectHTTP(respond)(http.StatusServiceUnavailable, "pkgpanda is shutting down")
	}
}

// maxDiscard bounds what is read and dropped of a refused body before the
// refusal is sent, so that a client still writing sees the answer rather
// than a reset connection.
const maxDiscard = 4 << 20

func discardSome(r io.Reader) { _, _ = io.CopyN(io.Discard, r, maxDiscard) }

// errMayNotMutate refuses a tarball from a caller that may only read.
var errMayNotMutate = errors.New("this caller may not add packages, so it may not send a tarball")
