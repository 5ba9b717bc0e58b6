package main

import (
	"strings"
	"testing"
)

// FuzzParseGlobalArgs checks that whatever parseGlobalArgs accepts turns
// into option arguments the tool understands and that re-parse to the same
// options, so no flag from pkgpandad's command line smuggles anything else
// into an argv. The input is the arguments separated by newlines.
func FuzzParseGlobalArgs(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		args := strings.Split(in, "\n")
		o, err := parseGlobalArgs(args)
		if err != nil {
			return
		}
		out, err := o.Args()
		if err != nil {
			t.Fatalf("accepted options do not render: %v", err)
		}
		for _, a := range out {
			if !strings.HasPrefix(a, "--") {
				t.Fatalf("rendered argument %q is not an option", a)
			}
		}
		back, err := parseGlobalArgs(out)
		if err != nil || back != o {
			t.Fatalf("round trip: %+v -> %q -> %+v, %v", o, out, back, err)
		}
	})
}
