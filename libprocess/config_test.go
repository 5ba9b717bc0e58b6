package libprocess

import (
	"math"
	"strings"
	"testing"
	"time"
)

func fakeEnv(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestConfigApplyEnv(t *testing.T) {
	cfg := DefaultConfig()
	err := cfg.ApplyEnv(fakeEnv(map[string]string{
		"LIBPROCESS_IP":                                   "10.0.0.5",
		"LIBPROCESS_PORT":                                 " 5052 ",
		"LIBPROCESS_ADVERTISE_IP":                         "203.0.113.7",
		"LIBPROCESS_ADVERTISE_PORT":                       "15052",
		"LIBPROCESS_REQUIRE_PEER_ADDRESS_IP_MATCH":        "true",
		"LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT": "2/1secs",
		"LIBPROCESS_UNRELATED":                            "x",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IP != "10.0.0.5" || cfg.Port != 5052 || cfg.AdvertiseIP != "203.0.113.7" || cfg.AdvertisePort != 15052 ||
		!cfg.RequirePeerAddressIPMatch || cfg.MetricsSnapshotRateLimit != 2 {
		t.Errorf("cfg = %+v", cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// Fields without a variable keep their values.
	def := DefaultConfig()
	if cfg.MaxMessageSize != def.MaxMessageSize || cfg.MailboxCapacity != def.MailboxCapacity || cfg.ReadTimeout != def.ReadTimeout {
		t.Errorf("unrelated fields changed: %+v", cfg)
	}
}

func TestConfigApplyEnvUnsetKeepsFields(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IP, cfg.Port, cfg.RequirePeerAddressIPMatch, cfg.MetricsSnapshotRateLimit = "127.0.0.1", 99, true, 7
	before := cfg
	if err := cfg.ApplyEnv(fakeEnv(nil)); err != nil {
		t.Fatal(err)
	}
	if cfg.IP != before.IP || cfg.Port != before.Port || cfg.RequirePeerAddressIPMatch != before.RequirePeerAddressIPMatch ||
		cfg.MetricsSnapshotRateLimit != before.MetricsSnapshotRateLimit {
		t.Errorf("cfg changed without variables: %+v", cfg)
	}
}

func TestConfigApplyEnvBools(t *testing.T) {
	for v, want := range map[string]bool{
		"1": true, "true": true, "TRUE": true, "yes": true, "on": true, " true ": true,
		"0": false, "false": false, "False": false, "no": false, "off": false, "": false,
	} {
		cfg := DefaultConfig()
		cfg.RequirePeerAddressIPMatch = !want
		if err := cfg.ApplyEnv(fakeEnv(map[string]string{"LIBPROCESS_REQUIRE_PEER_ADDRESS_IP_MATCH": v})); err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		if cfg.RequirePeerAddressIPMatch != want {
			t.Errorf("%q: got %v", v, cfg.RequirePeerAddressIPMatch)
		}
	}
}

func TestConfigApplyEnvRates(t *testing.T) {
	cases := map[string]float64{
		"5":           5,
		"10/1secs":    10,
		"1/2mins":     1.0 / 120,
		"30/1mins":    0.5,
		"0.5/1secs":   0.5,
		"100/500ms":   200,
		" 3 / 1secs ": 3,
	}
	for v, want := range cases {
		cfg := DefaultConfig()
		if err := cfg.ApplyEnv(fakeEnv(map[string]string{"LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT": v})); err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		if math.Abs(cfg.MetricsSnapshotRateLimit-want) > 1e-9 {
			t.Errorf("%q: rate %v, want %v", v, cfg.MetricsSnapshotRateLimit, want)
		}
	}
}

func TestConfigApplyEnvErrorsNameTheVariable(t *testing.T) {
	cases := []struct{ name, value string }{
		{"LIBPROCESS_PORT", "http"},
		{"LIBPROCESS_PORT", "-1"},
		{"LIBPROCESS_PORT", "65536"},
		{"LIBPROCESS_PORT", ""},
		{"LIBPROCESS_PORT", "50 52"},
		{"LIBPROCESS_ADVERTISE_PORT", "x"},
		{"LIBPROCESS_ADVERTISE_PORT", "70000"},
		{"LIBPROCESS_REQUIRE_PEER_ADDRESS_IP_MATCH", "maybe"},
		{"LIBPROCESS_REQUIRE_PEER_ADDRESS_IP_MATCH", "2"},
		{"LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT", "fast"},
		{"LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT", "0/1secs"},
		{"LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT", "-1"},
		{"LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT", "5/1fortnight"},
		{"LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT", "5/"},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		err := cfg.ApplyEnv(fakeEnv(map[string]string{c.name: c.value}))
		if err == nil {
			t.Errorf("%s=%q: no error (cfg %+v)", c.name, c.value, cfg)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.name+": ") {
			t.Errorf("%s=%q: error %q does not name the variable", c.name, c.value, err)
		}
		if c.value != "" && !strings.Contains(err.Error(), c.value) {
			t.Errorf("%s=%q: error %q does not show the value", c.name, c.value, err)
		}
	}
}

// LIBPROCESS_IP and LIBPROCESS_ADVERTISE_IP are taken as given and checked
// by Validate.
func TestConfigApplyEnvBadIPFailsValidate(t *testing.T) {
	for _, name := range []string{"LIBPROCESS_IP", "LIBPROCESS_ADVERTISE_IP"} {
		cfg := DefaultConfig()
		if err := cfg.ApplyEnv(fakeEnv(map[string]string{name: "not-an-ip"})); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "not-an-ip") {
			t.Errorf("%s=not-an-ip: Validate = %v", name, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (&Config{}).validate(); err == nil {
		t.Errorf("zero Config validates")
	}
	def := DefaultConfig()
	if err := def.validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	good := []func(*Config){
		func(c *Config) { c.IP = "0.0.0.0" },
		func(c *Config) { c.IP = "::1" },
		func(c *Config) { c.AdvertiseIP = "203.0.113.7" },
		func(c *Config) { c.Port, c.AdvertisePort = 65535, 65535 },
		func(c *Config) { c.IdleTimeout = time.Minute },
	}
	for i, mut := range good {
		c := DefaultConfig()
		mut(&c)
		if err := c.validate(); err != nil {
			t.Errorf("good %d: %v", i, err)
		}
	}
	bad := []struct {
		field string
		mut   func(*Config)
	}{
		{"IP", func(c *Config) { c.IP = "localhost" }},
		{"IP", func(c *Config) { c.IP = "1.2.3.4:5" }},
		{"AdvertiseIP", func(c *Config) { c.AdvertiseIP = "10.0.0" }},
		{"Port", func(c *Config) { c.Port = -1 }},
		{"Port", func(c *Config) { c.Port = 65536 }},
		{"AdvertisePort", func(c *Config) { c.AdvertisePort = 70000 }},
		{"AdvertisePort", func(c *Config) { c.AdvertisePort = -5 }},
		{"MaxMessageSize", func(c *Config) { c.MaxMessageSize = 0 }},
		{"MailboxCapacity", func(c *Config) { c.MailboxCapacity = -1 }},
		{"OutboundQueueCapacity", func(c *Config) { c.OutboundQueueCapacity = 0 }},
		{"OutboundQueueBytes", func(c *Config) { c.OutboundQueueBytes = 0 }},
		{"OutboundQueueBudget", func(c *Config) { c.OutboundQueueBudget = -1 }},
		{"ReadTimeout", func(c *Config) { c.ReadTimeout = 0 }},
		{"WriteTimeout", func(c *Config) { c.WriteTimeout = -time.Second }},
		{"DialTimeout", func(c *Config) { c.DialTimeout = 0 }},
		{"IdleTimeout", func(c *Config) { c.IdleTimeout = -1 }},
	}
	for _, b := range bad {
		c := DefaultConfig()
		b.mut(&c)
		err := c.validate()
		if err == nil || !strings.Contains(err.Error(), b.field) {
			t.Errorf("bad %s: Validate = %v", b.field, err)
		}
	}
}

// TestOutboundByteBoundsRaised: bounds too small for one maximal message
// are raised so that one always fits, and the snapshot shows the bounds in
// force.
func TestOutboundByteBoundsRaised(t *testing.T) {
	rt := startRuntime(t, func(c *Config) {
		c.MaxMessageSize = 1 << 20
		c.OutboundQueueBytes = 1000
		c.OutboundQueueBudget = 2000
	})
	snap := rt.Snapshot()
	want := float64(1<<20 + 64<<10)
	if snap["libprocess/outbound_queue_bytes_limit"] != want || snap["libprocess/outbound_queue_budget"] != want {
		t.Errorf("limit %v, budget %v; want both %v", snap["libprocess/outbound_queue_bytes_limit"], snap["libprocess/outbound_queue_budget"], want)
	}
	def := startRuntime(t).Snapshot()
	if def["libprocess/outbound_queue_bytes_limit"] != 17<<20 || def["libprocess/outbound_queue_budget"] != 32<<20 {
		t.Errorf("defaults: limit %v, budget %v", def["libprocess/outbound_queue_bytes_limit"], def["libprocess/outbound_queue_budget"])
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"5secs":    5 * time.Second,
		"100ms":    100 * time.Millisecond,
		"2mins":    2 * time.Minute,
		"1hrs":     time.Hour,
		"1days":    24 * time.Hour,
		"2weeks":   14 * 24 * time.Hour,
		"250us":    250 * time.Microsecond,
		"10ns":     10 * time.Nanosecond,
		"1.5secs":  1500 * time.Millisecond,
		" 5secs\n": 5 * time.Second,
		".5mins":   30 * time.Second,
	}
	for s, want := range good {
		got, err := parseDuration(s)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{
		"", "junk", "5", "secs", "5sec", "5 secs", "5s", "5m", "5SECS", "-5secs", "0secs", "0.0ms",
		"1.2.3secs", ".secs", "5secs5", "1e3secs", "0.1ns", "99999999999999999999weeks",
	} {
		if d, err := parseDuration(s); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", s, d)
		} else if !strings.Contains(err.Error(), "duration") {
			t.Errorf("parseDuration(%q): error %q", s, err)
		}
	}
}
