package httpauth

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// FuzzDecodeJWTPart checks the strict token-part decoder on arbitrary
// bytes: it never panics, and what it accepts is one valid JSON object
// whose members it returns once each, exactly as named.
func FuzzDecodeJWTPart(f *testing.F) {
	for _, s := range []string{`{"sub":"a"}`, `{"sub":"a","sub":"b"}`, `{"alg":"HS256","crit":[]}`, `{}`, `[]`, `{"a":{"b":1}} `, `{"a":1}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeJWTPart(base64.RawURLEncoding.EncodeToString(b))
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		var loose map[string]json.RawMessage
		if err := json.Unmarshal(b, &loose); err != nil {
			t.Fatalf("accepted %q, which is no JSON object: %v", b, err)
		}
		if len(loose) != len(m) {
			t.Fatalf("%q: %d members, encoding/json sees %d", b, len(m), len(loose))
		}
	})
}
