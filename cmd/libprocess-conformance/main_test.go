package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/procpanda/procpanda/libprocess"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--target", "127.0.0.1:1"},
		{"--target", "127.0.0.1:1", "--process", "p", "--ping", "x"},
		{"--target", "127.0.0.1:1", "--process", "p", "--run", "("},
		{"--no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}

func TestList(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--list"}, &out, &errOut); code != 0 {
		t.Fatalf("--list exited %d: %s", code, errOut.String())
	}
	for _, id := range []string{"msg.classify.libprocess-from", "route.dotdot", "help.json", "peer.outbound.headers", "mesosgo.reply", "pkgpanda.repository.fetch"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + "\t[^\t]*§").MatchString(out.String()) {
			t.Errorf("--list lacks %s", id)
		}
	}
}

func TestFailureExitsOne(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"--target", "127.0.0.1:1", "--process", "p", "--run", `^route\.root$`, "--timeout", "1s"}, &out, &errOut)
	if code != 1 || !strings.HasPrefix(out.String(), "FAIL route.root (§4.2): expected 404; seen ") ||
		!strings.Contains(out.String(), "\n0 passed, 1 failed") {
		t.Errorf("exit %d, output:\n%s", code, out.String())
	}
}

func TestPassExitsZero(t *testing.T) {
	cfg := libprocess.DefaultConfig()
	cfg.IP, cfg.Port = "127.0.0.1", 0
	rt, err := libprocess.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	}()
	p := libprocess.NewProcess("echo")
	p.Install("conformance.Ping", func(m *libprocess.Message) { _ = p.Send(m.From, "conformance.Pong", m.Body) })
	if _, err := rt.Spawn(p); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"--target", rt.Addr(), "--process", "echo", "--ping", "conformance.Ping", "--pong", "conformance.Pong",
		"--run", `^(peer\.|route\.|help\.)`}, &out, &errOut)
	if code != 0 || strings.Contains(out.String(), "FAIL") {
		t.Errorf("exit %d, output:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
}
