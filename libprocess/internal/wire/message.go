package wire

import (
	"bytes"
	"errors"
	"strconv"
)

var (
	libprocessUA = []byte("libprocess/")
	methodPOST   = []byte("POST")
)

// IsMessage reports whether the request is a libprocess message (docs/libprocess-wire.md §2.1):
// method POST and either a Libprocess-From header or a User-Agent that
// starts with "libprocess/".
func IsMessage(h *Head) bool {
	if !bytes.Equal(h.Method, methodPOST) {
		return false
	}
	return h.HasFrom || bytes.HasPrefix(h.UserAgent, libprocessUA)
}

// Sender returns the sender UPID text of a message (docs/libprocess-wire.md §2.2): the trimmed
// Libprocess-From header if present, else the text after "libprocess/" in
// User-Agent. The text is not validated here.
func Sender(h *Head) []byte {
	if h.HasFrom {
		return h.LibprocessFrom
	}
	if i := bytes.Index(h.UserAgent, libprocessUA); i >= 0 {
		return trimOWS(h.UserAgent[i+len(libprocessUA):])
	}
	return nil
}

// ErrPathNotAbsolute is a message whose request target has no path that
// starts with '/': "*", an absolute URL without a path
// ("http://10.0.0.1:5051"), or a target that is not a URL at all
// ("master/x"). C++ libprocess (Mesos >= 1.4) answers the first two 400
// "Request URL path must start with '/'" before anything else
// (ProcessManager::handle in 3rdparty/libprocess/src/process.cpp); its
// HTTP parser cannot read the third and drops the connection.
var ErrPathNotAbsolute = errors.New("request URL path must start with '/'")

// SplitMessagePath splits a message's request target into the receiver id
// (still percent-encoded) and the message name (docs/libprocess-wire.md §2.2, §2.4): the receiver
// is the first path segment, the name is everything after "/<id>/", slashes
// included. The path is the target itself (origin form, "/master/x") or, as
// C++ libprocess' URL parser takes it, the path of an absolute URL
// ("http://10.0.0.1:5051/master/x": scheme letters, "://", an authority,
// then the path). Query and fragment are not part of the path.
func SplitMessagePath(target []byte) (id, name []byte, err error) {
	path := urlPath(target)
	if len(path) == 0 || path[0] != '/' {
		return nil, nil, ErrPathNotAbsolute
	}
	rest := path[1:]
	slash := bytes.IndexByte(rest, '/')
	if slash < 0 {
		return rest, nil, nil
	}
	return rest[:slash], rest[slash+1:], nil
}

// urlPath returns the path of a request target without query and fragment:
// the target itself unless it is an absolute URL, whose path starts at the
// first '/' after "scheme://"; an absolute URL without a path gives an empty
// path, and so does a target that is neither form.
func urlPath(target []byte) []byte {
	if end := bytes.IndexAny(target, "?#"); end >= 0 {
		target = target[:end]
	}
	if len(target) > 0 && target[0] == '/' {
		return target
	}
	i := 0
	for i < len(target) && ('a' <= target[i]|0x20 && target[i]|0x20 <= 'z') {
		i++
	}
	if i == 0 || !bytes.HasPrefix(target[i:], []byte("://")) {
		return nil
	}
	authority := target[i+3:]
	if slash := bytes.IndexByte(authority, '/'); slash >= 0 {
		return authority[slash:]
	}
	return nil
}

// PercentDecode appends the percent-decoding of s to dst. It returns an
// error naming the bad escape when s holds a '%' not followed by two hex
// digits. '+' is left alone (paths are not form-encoded).
func PercentDecode(dst, s []byte) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			dst = append(dst, c)
			continue
		}
		if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
			return dst, &PercentError{Offset: i}
		}
		dst = append(dst, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
		i += 2
	}
	return dst, nil
}

// PercentError is a malformed percent-escape in a path.
type PercentError struct {
	Offset int // byte offset of the '%'
}

// Error implements error.
func (e *PercentError) Error() string {
	return "malformed percent-escape at offset " + strconv.Itoa(e.Offset)
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// PercentEncodeID appends id encoded for use as a path segment: unreserved
// characters (RFC 3986) and a few sub-delims libprocess ids use ('(' and
// ')', as in "slave(1)") pass through, everything else becomes %XX.
func PercentEncodeID(dst []byte, id string) []byte {
	const hexdigits = "0123456789ABCDEF"
	for i := 0; i < len(id); i++ {
		c := id[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '(' || c == ')' || c == '@' || c == ':' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexdigits[c>>4], hexdigits[c&15])
	}
	return dst
}

// AppendMessage appends the request C++ libprocess writes for a message
// (docs/libprocess-wire.md §3.1): "POST /<to-id>/<name> HTTP/1.1" (or "/<name>" when toID is
// empty), User-Agent and Libprocess-From naming the sender, Connection:
// Keep-Alive, Host naming the receiver's address, and for a non-empty body
// "Transfer-Encoding: chunked" with the body as one chunk and the
// last-chunk. An empty body gets no body headers.
func AppendMessage(dst []byte, from, toID, toHostPort, name string, body []byte) []byte {
	dst = AppendMessageHead(dst, from, toID, toHostPort, name, len(body))
	if len(body) == 0 {
		return dst
	}
	dst = append(dst, body...)
	return append(dst, MessageTail...)
}

// MessageTail is what follows a non-empty body in AppendMessage's
// encoding: the end of its chunk and the last-chunk.
const MessageTail = "\r\n0\r\n\r\n"

// AppendMessageHead appends AppendMessage's encoding of a message with a
// body of bodyLen bytes up to the body: for an empty body the whole
// message, otherwise the head and the chunk-size line, to be followed by
// the body and MessageTail. A writer uses it to send a large body from
// where it lies instead of copying it.
func AppendMessageHead(dst []byte, from, toID, toHostPort, name string, bodyLen int) []byte {
	dst = append(dst, "POST /"...)
	if toID != "" {
		dst = PercentEncodeID(dst, toID)
		dst = append(dst, '/')
	}
	dst = append(dst, name...)
	dst = append(dst, " HTTP/1.1\r\nUser-Agent: libprocess/"...)
	dst = append(dst, from...)
	dst = append(dst, "\r\nLibprocess-From: "...)
	dst = append(dst, from...)
	dst = append(dst, "\r\nConnection: Keep-Alive\r\nHost: "...)
	dst = append(dst, toHostPort...)
	if bodyLen == 0 {
		return append(dst, "\r\n\r\n"...)
	}
	dst = append(dst, "\r\nTransfer-Encoding: chunked\r\n\r\n"...)
	dst = strconv.AppendUint(dst, uint64(bodyLen), 16)
	return append(dst, "\r\n"...)
}

// AppendResponse appends a complete response with a text body: status line,
// Date (the caller passes the preformatted HTTP date, see AppendHTTPDate in
// fasthttp), Content-Type when the body is non-empty, and Content-Length.
// closing says the connection closes after this response; as in C++
// libprocess, whose response encoder never writes a Connection header
// (HttpResponseEncoder in 3rdparty/libprocess/src/encoder.hpp), it adds no
// header: the peer asked for the close (Connection: close, or HTTP/1.0
// without keep-alive) or sees it.
func AppendResponse(dst []byte, status int, date []byte, body string, closing bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, StatusText(status)...)
	dst = append(dst, "\r\nDate: "...)
	dst = append(dst, date...)
	if body != "" {
		dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8"...)
	}
	dst = append(dst, "\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// StatusText is the reason phrase libprocess writes for the statuses the
// message path answers with.
func StatusText(status int) string {
	switch status {
	case 200:
		return "OK"
	case 202:
		return "Accepted"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 413:
		return "Request Entity Too Large"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Unknown"
}
