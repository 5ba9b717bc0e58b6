package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// panickingHelperArg makes the test binary, started as a mesos-go helper,
// a helper that panics in a goroutine of its own once asked to send, as
// mesos-go v0.0.11 does when a request reaches its messenger while it
// stops.
const panickingHelperArg = "conformance-panicking-helper"

// panickingHelper is that helper; the panic ends the process.
func panickingHelper() int {
	enc := json.NewEncoder(os.Stdout)
	_ = enc.Encode(helperEvent{Ready: "conformance-mesos-go@127.0.0.1:1"})
	sc := bufio.NewScanner(os.Stdin)
	if !sc.Scan() {
		return 0
	}
	go func() { panic("http: Hijack called after ServeHTTP finished") }()
	select {}
}

// TestHelperPanicIsACaseFailure: a mesos-go messenger that panics in a
// goroutine of its own fails the case it serves, with the panic's text,
// and the run goes on to its summary.
func TestHelperPanicIsACaseFailure(t *testing.T) {
	f := startFake(t, fakeFlaws{})
	o := fakeOptions(f)
	o.Run = regexp.MustCompile(`^mesosgo\.`)
	o.MesosGoHelper = []string{testExecutable(), panickingHelperArg}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(mesosGoCases()) {
		t.Fatalf("%d results, want one per mesos-go case (%d)", len(rep.Results), len(mesosGoCases()))
	}
	for _, r := range rep.Results {
		if r.Status != Fail || !strings.Contains(r.Seen, "Hijack called after ServeHTTP finished") {
			t.Errorf("want FAIL naming the panic: %s", r.Line())
		}
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if want := "required: 0 passed, 4 failed, 0 skipped; beyond libprocess: 0 passed, 0 unmet, 0 skipped"; lines[len(lines)-1] != want {
		t.Errorf("closing line %q, want %q", lines[len(lines)-1], want)
	}
}

// TestMisbehavingCasesEndInTheReport: a case that panics, and one that
// overruns its time limit (as when a reply is late and the case ignores
// its context), are failures with a reason; the cases after them run and
// the report ends with its summary.
func TestMisbehavingCasesEndInTheReport(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	cases := []Case{
		{ID: "x.panics", Section: "§0", Run: func(t *T) { panic("peer library bug") }},
		{ID: "x.late", Section: "§0", Run: func(t *T) { <-release }},
		{ID: "x.passes", Section: "§0", Run: func(t *T) { t.Expect("nothing"); t.Seen("nothing") }},
	}
	var streamed []string
	rep := runCases(context.Background(), Options{Target: "127.0.0.1:1", Process: "p", Timeout: 100 * time.Millisecond,
		OnResult: func(r Result) { streamed = append(streamed, r.ID) }}, cases)
	want := map[string]string{"x.panics": "case panicked: peer library bug", "x.late": "did not finish within 100ms", "x.passes": ""}
	for id, reason := range want {
		r, ok := rep.Result(id)
		switch {
		case !ok:
			t.Errorf("%s missing from the report", id)
		case reason == "" && r.Status != Pass, reason != "" && (r.Status != Fail || !strings.Contains(r.Seen, reason)):
			t.Errorf("%s: %s, want %q", id, r.Line(), reason)
		}
	}
	if len(streamed) != 3 || rep.Summary() != "required: 1 passed, 2 failed, 0 skipped; beyond libprocess: 0 passed, 0 unmet, 0 skipped" {
		t.Errorf("streamed %v, summary %q", streamed, rep.Summary())
	}
}

// TestBeyondLibprocessIsItsOwnCategory: a target that behaves as C++
// libprocess does at EOF (closing, dropping what it had not answered)
// does not pass the pipeline cases beyond libprocess; they are UNMET,
// shown with the C++ source they go beyond, and no failure, unless
// RequireBeyond.
func TestBeyondLibprocessIsItsOwnCategory(t *testing.T) {
	f := startFake(t, fakeFlaws{closeOnEOF: true})
	for _, require := range []bool{false, true} {
		o := fakeOptions(f)
		o.MesosGo = false
		o.Timeout = 2 * time.Second
		o.RequireBeyond = require
		o.Run = regexp.MustCompile(`^msg\.pipeline\.(half-close|close-after-last)$`)
		rep, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		want, summary := Unmet, "required: 0 passed, 0 failed, 0 skipped; beyond libprocess: 0 passed, 2 unmet, 0 skipped"
		if require {
			want, summary = Fail, "required: 0 passed, 0 failed, 0 skipped; beyond libprocess: 0 passed, 0 unmet, 2 failed, 0 skipped"
		}
		if len(rep.Results) != 2 || rep.Failed() != require || rep.Summary() != summary {
			t.Errorf("RequireBeyond %v: %d results, Failed() %v, summary %q, want %q", require, len(rep.Results), rep.Failed(), rep.Summary(), summary)
		}
		for _, r := range rep.Results {
			line := r.Line()
			if r.Status != want || r.Category() != CategoryBeyond ||
				!regexp.MustCompile(`^`+string(want)+` msg\.pipeline\.[a-z-]+ \(§[^)]*; beyond libprocess\): expected .*; C\+\+ libprocess: .*src/process\.cpp:\d+`).MatchString(line) {
				t.Errorf("RequireBeyond %v: %s", require, line)
			}
		}
		if t.Failed() || testing.Verbose() {
			var b bytes.Buffer
			_ = rep.WriteText(&b)
			t.Log("\n" + b.String())
		}
		var js bytes.Buffer
		if err := rep.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(js.String()), "\n") {
			var rec map[string]string
			if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["category"] != CategoryBeyond || rec["outcome"] != string(want) || !strings.Contains(rec["beyond"], "process.cpp:") {
				t.Errorf("JSON record %s (%v)", l, err)
			}
		}
	}
}
