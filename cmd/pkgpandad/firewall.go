package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// firewallRules reads the --firewall-rules value, Mesos' --firewall_rules
// shape {"disabled_endpoints":{"paths":["/pkgpanda/add",...]}}, given as
// inline JSON, as file:///path, or as a path, and returns the disabled
// paths. Unknown fields are errors: a misspelt rule must not leave an
// endpoint open silently.
func firewallRules(v string) ([]string, error) {
	data := []byte(v)
	if t := strings.TrimSpace(v); !strings.HasPrefix(t, "{") {
		path := strings.TrimPrefix(t, "file://")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading --firewall-rules: %w", err)
		}
		data = b
	}
	var rules struct {
		DisabledEndpoints *struct {
			Paths []string `json:"paths"`
		} `json:"disabled_endpoints"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rules); err != nil {
		return nil, fmt.Errorf("parsing --firewall-rules: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parsing --firewall-rules: trailing data after the JSON object")
	}
	if rules.DisabledEndpoints == nil {
		return nil, nil
	}
	return rules.DisabledEndpoints.Paths, nil
}
