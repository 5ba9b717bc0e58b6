package pkgpanda

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gogo/protobuf/jsonpb"
	"github.com/gogo/protobuf/proto"
	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
)

// Media types of the api/v1 route, as in Mesos' operator API.
const (
	MediaJSON     = "application/json"
	MediaProtobuf = "application/x-protobuf"
)

// NegotiateError is a content negotiation failure of api/v1: Status is
// 400 (no Content-Type), 415 (unsupported Content-Type) or 406
// (unacceptable Accept).
type NegotiateError struct {
	Status int
	Msg    string
}

// Error returns the message.
func (e *NegotiateError) Error() string { return e.Msg }

// Negotiate picks the request and response media types of an api/v1
// request from its Content-Type and Accept headers, as Mesos' operator API
// does: the request must be application/json or application/x-protobuf
// (parameters such as charset are allowed); the response is JSON when
// Accept is empty or accepts JSON (application/json, application/*, */*
// with a non-zero quality), else protobuf when Accept accepts it, else a
// *NegotiateError with status 406.
func Negotiate(contentType, accept string) (request, response string, err error) {
	if strings.TrimSpace(contentType) == "" {
		return "", "", &NegotiateError{http.StatusBadRequest, "Expecting 'Content-Type' to be present"}
	}
	mt, _, perr := mime.ParseMediaType(contentType)
	switch {
	case perr != nil:
		return "", "", &NegotiateError{http.StatusUnsupportedMediaType, "unparsable Content-Type: " + perr.Error()}
	case mt == MediaJSON || mt == MediaProtobuf:
		request = mt
	default:
		return "", "", &NegotiateError{http.StatusUnsupportedMediaType,
			fmt.Sprintf("Expecting 'Content-Type' of %s or %s", MediaJSON, MediaProtobuf)}
	}
	if strings.TrimSpace(accept) == "" {
		return request, MediaJSON, nil
	}
	if acceptsMedia(accept, MediaJSON) {
		return request, MediaJSON, nil
	}
	if acceptsMedia(accept, MediaProtobuf) {
		return request, MediaProtobuf, nil
	}
	return "", "", &NegotiateError{http.StatusNotAcceptable,
		fmt.Sprintf("Expecting 'Accept' to allow %s or %s", MediaJSON, MediaProtobuf)}
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

// DecodeCall decodes a PkgpandaCall body of media type MediaJSON (protobuf
// JSON mapping; field names as in the .proto or lowerCamelCase, enum
// values by name or number; unknown fields rejected) or MediaProtobuf.
func DecodeCall(mediaType string, body []byte) (*PkgpandaCall, error) {
	call := &PkgpandaCall{}
	switch mediaType {
	case MediaJSON:
		u := jsonpb.Unmarshaler{}
		if err := u.Unmarshal(bytes.NewReader(body), call); err != nil {
			return nil, fmt.Errorf("decoding a JSON PkgpandaCall: %w", err)
		}
	case MediaProtobuf:
		if err := proto.Unmarshal(body, call); err != nil {
			return nil, fmt.Errorf("decoding a protobuf PkgpandaCall: %w", err)
		}
	default:
		return nil, fmt.Errorf("decoding a PkgpandaCall: unsupported media type %q", mediaType)
	}
	return call, nil
}

// EncodeResponse encodes r as mediaType (MediaJSON: protobuf JSON mapping
// with the .proto's field names and enum names; MediaProtobuf: binary).
func EncodeResponse(mediaType string, r *PkgpandaResponse) ([]byte, error) {
	switch mediaType {
	case MediaJSON:
		var buf bytes.Buffer
		m := jsonpb.Marshaler{OrigName: true}
		if err := m.Marshal(&buf, r); err != nil {
			return nil, fmt.Errorf("encoding a JSON PkgpandaResponse: %w", err)
		}
		return buf.Bytes(), nil
	case MediaProtobuf:
		b, err := proto.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encoding a protobuf PkgpandaResponse: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("encoding a PkgpandaResponse: unsupported media type %q", mediaType)
}

// prepared is a validated call, ready for its actor.
type prepared struct {
	route string
	write bool
	run   func(ctx context.Context, a *actor) *PkgpandaResponse
}

// prepare validates call without running anything. It returns either a
// prepared call or an immediate failure.
func (p *Process) prepare(call *PkgpandaCall) (*prepared, *PkgpandaResponse) {
	ids := call.PackageIds
	need := func(min, max int) *PkgpandaResponse {
		if len(ids) < min || (max >= 0 && len(ids) > max) {
			if max == min {
				return failed(http.StatusBadRequest, "%s takes %d package id(s), got %d", call.Type, min, len(ids))
			}
			return failed(http.StatusBadRequest, "%s takes at least %d package id(s), got %d", call.Type, min, len(ids))
		}
		return nil
	}
	parse := func(invalidStatus int) ([]cli.ID, *PkgpandaResponse) {
		parsed, err := parseIDs(ids)
		if err != nil {
			return nil, failed(invalidStatus, "%v", err)
		}
		return parsed, nil
	}
	switch call.Type {
	case PkgpandaCall_LIST, PkgpandaCall_ACTIVE:
		if f := need(0, 0); f != nil {
			return nil, f
		}
		if call.Type == PkgpandaCall_LIST {
			return &prepared{RouteRepository, false, p.opList}, nil
		}
		return &prepared{RouteActive, false, p.opActive}, nil
	case PkgpandaCall_GET_PACKAGE, PkgpandaCall_GET_ACTIVE_PACKAGE:
		if f := need(1, 1); f != nil {
			return nil, f
		}
		parsed, f := parse(http.StatusNotFound)
		if f != nil {
			return nil, f
		}
		if call.Type == PkgpandaCall_GET_PACKAGE {
			return &prepared{RouteRepository, false, func(ctx context.Context, a *actor) *PkgpandaResponse {
				return p.opGetPackage(ctx, a, parsed[0])
			}}, nil
		}
		return &prepared{RouteActive, false, func(ctx context.Context, a *actor) *PkgpandaResponse {
			return p.opGetActivePackage(ctx, a, parsed[0])
		}}, nil
	case PkgpandaCall_ADD:
		if f := need(1, 1); f != nil {
			return nil, f
		}
		parsed, f := parse(http.StatusBadRequest)
		if f != nil {
			return nil, f
		}
		if len(call.Tarball) == 0 {
			return nil, failed(http.StatusBadRequest, "ADD needs the tarball")
		}
		if int64(len(call.Tarball)) > p.cfg.maxAddSize() {
			return nil, failed(http.StatusRequestEntityTooLarge, "the tarball exceeds %d bytes", p.cfg.maxAddSize())
		}
		tarball := call.Tarball
		return &prepared{RouteAdd, true, func(ctx context.Context, a *actor) *PkgpandaResponse {
			return p.opAdd(ctx, a, parsed[0], bytes.NewReader(tarball))
		}}, nil
	case PkgpandaCall_FETCH:
		if f := need(1, -1); f != nil {
			return nil, f
		}
		parsed, f := parse(http.StatusBadRequest)
		if f != nil {
			return nil, f
		}
		url := call.RepositoryUrl
		if _, err := p.cfg.Tool.Fetch(url, parsed...); err != nil {
			return nil, failed(http.StatusBadRequest, "%v", err)
		}
		return &prepared{RouteRepository, true, func(ctx context.Context, a *actor) *PkgpandaResponse {
			r, _ := p.opFetch(ctx, a, url, parsed, nil, apiFetchStatuses())
			return r
		}}, nil
	case PkgpandaCall_REMOVE:
		if f := need(1, -1); f != nil {
			return nil, f
		}
		parsed, f := parse(http.StatusNotFound)
		if f != nil {
			return nil, f
		}
		return &prepared{RouteRepository, true, func(ctx context.Context, a *actor) *PkgpandaResponse {
			return p.opDelete(ctx, a, parsed)
		}}, nil
	case PkgpandaCall_ACTIVATE:
		if f := need(1, -1); f != nil {
			return nil, f
		}
		parsed, f := parse(http.StatusBadRequest)
		if f != nil {
			return nil, f
		}
		return &prepared{RouteActive, true, func(ctx context.Context, a *actor) *PkgpandaResponse {
			return p.opActivate(ctx, a, parsed, true, apiActivateStatuses())
		}}, nil
	case PkgpandaCall_SWAP:
		if f := need(1, 1); f != nil {
			return nil, f
		}
		parsed, f := parse(http.StatusBadRequest)
		if f != nil {
			return nil, f
		}
		return &prepared{RouteSwap, true, func(ctx context.Context, a *actor) *PkgpandaResponse {
			return p.opSwap(ctx, a, parsed[0])
		}}, nil
	case PkgpandaCall_CHECK:
		if f := need(0, 0); f != nil {
			return nil, f
		}
		if call.ListChecks {
			return &prepared{RouteCheck, false, p.opCheckList}, nil
		}
		return &prepared{RouteCheck, false, func(ctx context.Context, a *actor) *PkgpandaResponse {
			r, _ := p.opCheck(ctx, a, nil)
			return r
		}}, nil
	}
	return nil, failed(http.StatusBadRequest, "unknown call type %s", call.Type)
}

// dispatchCall validates and queues call; finish receives the response
// (with the call's type and request id) exactly once, on some goroutine.
// clientCtx, if non-nil, cancels a read-only call when its client goes.
func (p *Process) dispatchCall(call *PkgpandaCall, clientCtx context.Context, finish func(*PkgpandaResponse)) {
	done := func(r *PkgpandaResponse) {
		r.Type = call.Type
		r.RequestId = call.RequestId
		finish(r)
	}
	pc, fail := p.prepare(call)
	if fail != nil {
		done(fail)
		return
	}
	a := p.actors[pc.route]
	j := &job{
		write: pc.write,
		ctx:   clientCtx,
		run: func(ctx context.Context, _ func()) {
			done(pc.run(ctx, a))
		},
		reject: func(status int, msg string) { done(failed(status, "%s", msg)) },
	}
	if ok, why := p.enqueue(a, j); !ok {
		done(failed(http.StatusServiceUnavailable, "%s", why))
	}
}

func (p *Process) serveAPIv1(req *libprocess.Request, respond libprocess.Responder) {
	if !allowed(req, http.MethodPost) {
		respond(methodNotAllowed(http.MethodPost))
		return
	}
	if s := subPath(req); s != "" && s != "/" {
		respond(libprocess.ErrorResponse(http.StatusNotFound, "no such route"))
		return
	}
	reqType, respType, err := Negotiate(req.Header.Get("Content-Type"), req.Header.Get("Accept"))
	if err != nil {
		status := http.StatusBadRequest
		if ne, ok := err.(*NegotiateError); ok {
			status = ne.Status
		}
		respond(libprocess.ErrorResponse(status, err.Error()))
		return
	}
	withBody(req, respond, p.cfg.maxAddSize()+maxJSONBody, func(body []byte) {
		p.serveCall(req, respond, reqType, respType, body)
	})
}

// serveCall decodes and dispatches one api/v1 call.
func (p *Process) serveCall(req *libprocess.Request, respond libprocess.Responder, reqType, respType string, body []byte) {
	call, err := DecodeCall(reqType, body)
	if err != nil {
		respond(libprocess.ErrorResponse(http.StatusBadRequest, err.Error()))
		return
	}
	p.dispatchCall(call, req.Context(), func(r *PkgpandaResponse) {
		body, err := EncodeResponse(respType, r)
		if err != nil {
			respond(libprocess.ErrorResponse(http.StatusInternalServerError, err.Error()))
			return
		}
		resp := libprocess.Response{Status: int(r.Status), Header: http.Header{"Content-Type": {respType}}, Body: body}
		if resp.Status == http.StatusNoContent {
			// The body carries the request id; 204 cannot have one.
			resp.Status = http.StatusOK
		}
		if resp.Status == http.StatusServiceUnavailable {
			resp.Header.Set("Retry-After", "1")
		}
		respond(resp)
	})
}

// installMessages installs the PkgpandaCall message handler: the call is
// answered with a PkgpandaResponse message to the sender's UPID.
func (p *Process) installMessages() error {
	err := libprocess.InstallProto(p.lp, func() *PkgpandaCall { return new(PkgpandaCall) },
		func(from libprocess.UPID, call *PkgpandaCall) {
			if from.IsZero() {
				p.log.Warn().Str("type", call.Type.String()).Msg("dropping a PkgpandaCall without a sender to answer")
				return
			}
			p.dispatchCall(call, nil, func(r *PkgpandaResponse) {
				if err := p.lp.SendProto(from, r); err != nil {
					p.log.Warn().Err(err).Str("to", from.String()).Str("request_id", r.RequestId).Msg("sending a PkgpandaResponse failed")
				}
			})
		})
	if err != nil {
		return fmt.Errorf("installing the PkgpandaCall handler: %w", err)
	}
	return nil
}
