package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The file DC/OS writes, as systemd reads it.
func TestParseEnvFile(t *testing.T) {
	got, err := parseEnvFile([]byte("# written by pkgpanda\nLD_LIBRARY_PATH=/opt/mesosphere/lib\n" +
		"PATH=/opt/mesosphere/bin:/usr/bin:/bin:/sbin\n\n; comment\n  SPACED = a b  \n" +
		`Q="x \"y\" \\ \$z"` + "\nS='lit \\n'\nEMPTY=\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"LD_LIBRARY_PATH=/opt/mesosphere/lib", "PATH=/opt/mesosphere/bin:/usr/bin:/bin:/sbin",
		"SPACED=a b", `Q=x "y" \ $z`, `S=lit \n`, "EMPTY="}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	for _, bad := range []string{"NOEQUALS\n", "1X=y\n", "A-B=c\n", "=v\n", "X=\"open\n", "X='a'b'\n", "X=\"a\"b\"\n", "X=a\x00b\n"} {
		if _, err := parseEnvFile([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: error %v, want one naming line 1", bad, err)
		}
	}
}

// A missing or oversized file is refused with its name.
func TestReadEnvFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := readEnvFile(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "--env-file") {
		t.Fatalf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxEnvFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readEnvFile(big); err == nil || !strings.Contains(err.Error(), big) {
		t.Fatalf("oversized file: %v", err)
	}
}

// FuzzParseEnvFile: the parser never panics, and every variable it
// returns is KEY=VALUE with a shell name and no NUL or newline.
func FuzzParseEnvFile(f *testing.F) {
	f.Add([]byte("A=1\n# c\nB=\"x\\\"y\"\n"))
	f.Add([]byte("PATH=/opt/mesosphere/bin:/usr/bin\nLD_LIBRARY_PATH=/opt/mesosphere/lib\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := parseEnvFile(b)
		if err != nil {
			return
		}
		for _, kv := range env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || !isEnvName(k) || strings.ContainsAny(v, "\x00\n") {
				t.Fatalf("parsed %q from %q", kv, b)
			}
		}
	})
}
