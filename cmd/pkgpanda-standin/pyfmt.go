package main

// The real CLI is Python: its messages embed Python's str() and repr() of
// values and its JSON files are json.dumps output. These helpers produce
// the same text.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// noFollow makes an open fail on a symbolic link.
const noFollow = syscall.O_NOFOLLOW

// errnoText is the C strerror text of err's errno (what Python prints as
// an OSError's strerror), or err's text when it carries none.
func errnoText(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		s := en.Error()
		if s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// pyOSError formats err as Python prints an OSError: `[Errno N] text:
// 'path'` (with ` -> 'path2'` for a two-path error).
func pyOSError(err error) error {
	var en syscall.Errno
	if !errors.As(err, &en) {
		return err
	}
	var pe *fs.PathError
	var le *linkErr
	switch {
	case errors.As(err, &le):
		return fmt.Errorf("[Errno %d] %s: %s -> %s", int(en), errnoText(en), pyRepr(le.old), pyRepr(le.new))
	case errors.As(err, &pe):
		return fmt.Errorf("[Errno %d] %s: %s", int(en), errnoText(en), pyRepr(pe.Path))
	}
	return fmt.Errorf("[Errno %d] %s", int(en), errnoText(en))
}

// linkErr is a failed two-path operation (symlink, rename).
type linkErr struct {
	old, new string
	err      error
}

func (e *linkErr) Error() string { return e.old + " -> " + e.new + ": " + e.err.Error() }
func (e *linkErr) Unwrap() error { return e.err }

// pyRepr is Python's repr() of a str.
func pyRepr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// calledProcessError is the text of Python's CalledProcessError for a
// command that exited with code.
func calledProcessError(args []string, code int) string {
	return fmt.Sprintf("Command '%s' returned non-zero exit status %d.", pyList(args), code)
}

// pyList is Python's repr() of a list of str.
func pyList(items []string) string {
	qs := make([]string, len(items))
	for i, s := range items {
		qs[i] = pyRepr(s)
	}
	return "[" + strings.Join(qs, ", ") + "]"
}

// jkind is the kind of a JSON value.
type jkind int

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

// jvalue is a decoded JSON value that keeps the order of object members
// (Python dicts do) and the text of numbers.
type jvalue struct {
	kind jkind
	b    bool
	s    string // string value, or number text
	arr  []jvalue
	keys []string
	vals []jvalue
}

// get returns the member k of an object.
func (v jvalue) get(k string) (jvalue, bool) {
	for i, kk := range v.keys {
		if kk == k {
			return v.vals[i], true
		}
	}
	return jvalue{}, false
}

// truthy is Python's truth value of the decoded value.
func (v jvalue) truthy() bool {
	switch v.kind {
	case jBool:
		return v.b
	case jNumber:
		f, err := strconv.ParseFloat(v.s, 64)
		return err != nil || f != 0
	case jString:
		return v.s != ""
	case jArray:
		return len(v.arr) > 0
	case jObject:
		return len(v.keys) > 0
	}
	return false
}

// typeName is Python's type(v).__name__ of the decoded value.
func (v jvalue) typeName() string {
	switch v.kind {
	case jBool:
		return "bool"
	case jNumber:
		if isPyInt(v.s) {
			return "int"
		}
		return "float"
	case jString:
		return "str"
	case jArray:
		return "list"
	case jObject:
		return "dict"
	}
	return "NoneType"
}

func isPyInt(num string) bool { return !strings.ContainsAny(num, ".eE") }

// str is Python's str() of the decoded value.
func (v jvalue) str() string {
	if v.kind == jString {
		return v.s
	}
	return v.repr()
}

// repr is Python's repr() of the decoded value.
func (v jvalue) repr() string {
	switch v.kind {
	case jNull:
		return "None"
	case jBool:
		if v.b {
			return "True"
		}
		return "False"
	case jNumber:
		return pyNumber(v.s)
	case jString:
		return pyRepr(v.s)
	case jArray:
		parts := make([]string, len(v.arr))
		for i, e := range v.arr {
			parts[i] = e.repr()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	parts := make([]string, len(v.keys))
	for i, k := range v.keys {
		parts[i] = pyRepr(k) + ": " + v.vals[i].repr()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// pyNumber is how Python prints the number json.loads made of num.
func pyNumber(num string) string {
	if isPyInt(num) {
		if strings.HasPrefix(num, "-0") && strings.Trim(num, "-0") == "" {
			return "0"
		}
		return num
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return num
	}
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return pyFloat(f)
}

// pyFloat is Python's repr() of a float.
func pyFloat(f float64) string {
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	// Go's shortest digits are Python's; only the layout differs.
	mant, e, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(e)
	if exp < -4 || exp >= 16 {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	r := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(r, ".") {
		r += ".0"
	}
	return r
}

// parseJSON decodes one JSON document the way Python's json.loads does
// for the values pkginfo.json holds (duplicate keys: the last value at
// the first key's place).
func parseJSON(data []byte) (jvalue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return jvalue{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return jvalue{}, errors.New("Extra data")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (jvalue, error) {
	t, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return jvalue{}, errors.New("Expecting value")
		}
		return jvalue{}, err
	}
	switch t := t.(type) {
	case nil:
		return jvalue{kind: jNull}, nil
	case bool:
		return jvalue{kind: jBool, b: t}, nil
	case json.Number:
		return jvalue{kind: jNumber, s: t.String()}, nil
	case string:
		return jvalue{kind: jString, s: t}, nil
	case json.Delim:
		switch t {
		case '[':
			v := jvalue{kind: jArray}
			for dec.More() {
				e, err := decodeValue(dec)
				if err != nil {
					return jvalue{}, err
				}
				v.arr = append(v.arr, e)
			}
			_, err := dec.Token()
			return v, err
		case '{':
			v := jvalue{kind: jObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return jvalue{}, err
				}
				k, _ := kt.(string)
				e, err := decodeValue(dec)
				if err != nil {
					return jvalue{}, err
				}
				if i := indexOf(v.keys, k); i >= 0 {
					v.vals[i] = e
				} else {
					v.keys = append(v.keys, k)
					v.vals = append(v.vals, e)
				}
			}
			_, err := dec.Token()
			return v, err
		}
	}
	return jvalue{}, fmt.Errorf("unexpected token %v", t)
}

func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

// pyDumps is Python's json.dumps(v, sort_keys=True, indent=2,
// separators=(',', ':')) — pkgpanda's json_prettyprint.
func pyDumps(v jvalue) string {
	var b strings.Builder
	dumpIndent(&b, v, 0)
	return b.String()
}

func dumpIndent(b *strings.Builder, v jvalue, level int) {
	pad := func(n int) { b.WriteString("\n" + strings.Repeat("  ", n)) }
	switch v.kind {
	case jArray:
		if len(v.arr) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, e := range v.arr {
			if i > 0 {
				b.WriteByte(',')
			}
			pad(level + 1)
			dumpIndent(b, e, level+1)
		}
		pad(level)
		b.WriteByte(']')
	case jObject:
		if len(v.keys) == 0 {
			b.WriteString("{}")
			return
		}
		idx := make([]int, len(v.keys))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(i, j int) bool { return v.keys[idx[i]] < v.keys[idx[j]] })
		b.WriteByte('{')
		for n, i := range idx {
			if n > 0 {
				b.WriteByte(',')
			}
			pad(level + 1)
			b.WriteString(pyJSONString(v.keys[i]))
			b.WriteByte(':')
			dumpIndent(b, v.vals[i], level+1)
		}
		pad(level)
		b.WriteByte('}')
	case jNull:
		b.WriteString("null")
	case jBool:
		if v.b {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case jNumber:
		b.WriteString(pyNumber(v.s))
	case jString:
		b.WriteString(pyJSONString(v.s))
	}
}

// pyJSONString is json.dumps of a str with ensure_ascii=True.
func pyJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			if r < 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else if r == 0x7f {
				b.WriteRune(r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// object builds a JSON object value from keys and values.
func object(keys []string, vals []jvalue) jvalue {
	return jvalue{kind: jObject, keys: keys, vals: vals}
}
