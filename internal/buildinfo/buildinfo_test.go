package buildinfo

import "testing"

// A stamp wins; without one a test binary has no module version.
func TestVersion(t *testing.T) {
	if v := Version("v1.2.3-4-gabc"); v != "v1.2.3-4-gabc" {
		t.Fatalf("stamped: %q", v)
	}
	if v := Version(""); v != "(devel)" {
		t.Fatalf("unstamped test binary: %q, want (devel)", v)
	}
}
