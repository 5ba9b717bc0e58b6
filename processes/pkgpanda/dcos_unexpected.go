package pkgpanda

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/procpanda/procpanda/processes/pkgpanda/cli"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// Where DC/OS's Pkgpanda API answers with its generic error handler
// (pkgpanda/http/__init__.py:79, unexpected_exception_handler: any exception
// other than PackageError and ValidationError is 500 "An unexpected error
// has occurred."), pkgpandad answers the same text and logs the reason.

// errPkginfoUndecodable marks a pkginfo.json Python's json module cannot
// decode: Repository.load (pkgpanda/__init__.py:431, through
// pkgpanda/util.py:257 load_json) lets that ValueError
// through to the generic handler.
var errPkginfoUndecodable = errors.New("pkginfo.json cannot be decoded")

// loadPkginfo reads <repository>/<id>/pkginfo.json and checks it as
// Repository.load does: unreadable, or valid JSON that is not an object,
// is a PackageError ("Unable to load package <id>."); anything
// json.load cannot decode wraps errPkginfoUndecodable. id is valid, so the
// path stays inside the repository.
func (p *Process) loadPkginfo(id cli.ID) error {
	b, err := os.ReadFile(filepath.Join(p.cfg.repository(), id.String(), "pkginfo.json"))
	if err != nil {
		return fmt.Errorf("reading pkginfo.json: %w", err)
	}
	object, err := pythonJSONObject(b)
	if err != nil {
		return fmt.Errorf("%w: %v", errPkginfoUndecodable, err)
	}
	if !object {
		return errors.New("pkginfo.json holds JSON that is not an object")
	}
	return nil
}

// pythonJSONObject decodes b as Python 3's json.load does on a file
// opened as UTF-8 text and reports whether it holds an object: b must be
// UTF-8 without a byte order mark (json.loads refuses one), one JSON value
// with whitespace around it; the literals NaN, Infinity and -Infinity are
// values, and numbers of any size are (Python reads 1e400 as inf).
func pythonJSONObject(b []byte) (object bool, err error) {
	switch {
	case !utf8.Valid(b):
		return false, errors.New("not UTF-8")
	case bytes.HasPrefix(b, []byte("\ufeff")):
		return false, errors.New("unexpected UTF-8 BOM")
	}
	// Python's extra literals become a value of the same grammatical
	// role Go's decoder takes: an empty array, which is no object and,
	// unlike a number, cannot follow a '-'.
	s := make([]byte, 0, len(b))
	inString, escaped := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			s = append(s, c)
			continue
		}
		if c == '"' {
			inString = true
		}
		rest := string(b[i:])
		replaced := false
		for _, lit := range []string{"-Infinity", "Infinity", "NaN"} {
			if strings.HasPrefix(rest, lit) {
				s = append(s, "[]"+strings.Repeat(" ", len(lit)-2)...)
				i += len(lit) - 1
				replaced = true
				break
			}
		}
		if !replaced {
			s = append(s, c)
		}
	}
	if !json.Valid(s) { // syntax only: numbers of any size pass
		return false, errors.New("invalid JSON")
	}
	return bytes.TrimLeft(s, " \t\r\n")[0] == '{', nil
}

// The tool's text when <root>/active is missing and no activation left
// anything behind (pkgpanda/__init__.py:741, Install.get_active).
const (
	noActivePrefix = "Install directory "
	noActiveSuffix = " has no active folder. Has it been bootstrapped?"
)

// hideNoActiveFolder is the failure of the Pkgpanda API operations that
// read the active set (GET /active/, GET /active/<id>, DELETE
// /repository/<id>): on a node never bootstrapped the tool fails with an
// InstallError, which DC/OS's app answers with its generic handler. The
// tool's text is logged; the answer is DC/OS's.
func hideNoActiveFolder(p *Process, in *opArgs, r *pb.PkgpandaResponse) *pb.PkgpandaResponse {
	if r.Status != http.StatusInternalServerError || !strings.HasPrefix(r.Error, noActivePrefix) || !strings.HasSuffix(r.Error, noActiveSuffix) {
		return r
	}
	p.log.Warn().Str("operation", p.ops[in.op].name).Str("reason", r.Error).Msg("the install has no active folder")
	return failed(http.StatusInternalServerError, "%s", msgUnexpected)
}
