package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// maxEnvFile bounds an --env-file: DC/OS's /opt/mesosphere/environment is
// a few hundred bytes.
const maxEnvFile = 1 << 20

// readEnvFile reads an environment file in the syntax systemd's
// EnvironmentFile= takes for the files DC/OS writes
// (/opt/mesosphere/environment): one KEY=VALUE per line; blank lines and
// lines starting with '#' or ';' are skipped; white space around the key,
// the '=' and the value is dropped; a value wholly in double quotes has
// them removed and its \" \\ \$ \` escapes undone, a value wholly in single
// quotes has them removed. Keys are shell names ([A-Za-z_][A-Za-z0-9_]*).
// Anything else is an error naming the file and line, so that a broken
// file stops pkgpandad at start instead of reaching the CLI.
func readEnvFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --env-file: %w", err)
	}
	if len(b) > maxEnvFile {
		return nil, fmt.Errorf("--env-file %s: larger than %d bytes", path, maxEnvFile)
	}
	env, err := parseEnvFile(b)
	if err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", path, err)
	}
	return env, nil
}

// parseEnvFile parses the contents of an environment file (see
// readEnvFile) into KEY=VALUE strings, in file order.
func parseEnvFile(b []byte) ([]string, error) {
	var env []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxEnvFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !isEnvName(key) {
			return nil, fmt.Errorf("line %d: want KEY=VALUE with KEY a shell variable name, got %q", n, line)
		}
		v, err := unquoteEnvValue(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("line %d (%s): %w", n, key, err)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("line %d (%s): the value holds a NUL byte", n, key)
		}
		env = append(env, key+"="+v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return env, nil
}

// isEnvName reports whether s is a shell variable name.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// unquoteEnvValue removes the quotes of a value wholly in double or single
// quotes; other values are taken as they are.
func unquoteEnvValue(v string) (string, error) {
	if len(v) == 0 || (v[0] != '"' && v[0] != '\'') {
		return v, nil
	}
	q := v[0]
	if len(v) < 2 || v[len(v)-1] != q {
		return "", fmt.Errorf("unterminated %c quote", q)
	}
	inner := v[1 : len(v)-1]
	if q == '\'' {
		if strings.IndexByte(inner, '\'') >= 0 {
			return "", fmt.Errorf("a single quote inside a single-quoted value")
		}
		return inner, nil
	}
	var out strings.Builder
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		switch {
		case c == '\\' && i+1 < len(inner) && strings.IndexByte("\"\\$`", inner[i+1]) >= 0:
			out.WriteByte(inner[i+1])
			i++
		case c == '"':
			return "", fmt.Errorf("an unescaped double quote inside a double-quoted value")
		default:
			out.WriteByte(c)
		}
	}
	return out.String(), nil
}
