package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestSoakLosesOnlyAtRestarts runs a small soak through the code `make
// soak` runs: two restarts, nothing duplicated or reordered, and every
// lost message one that was in flight when a restart began.
func TestSoakLosesOnlyAtRestarts(t *testing.T) {
	cfg := config{messages: 20000, restarts: 2, body: 64, window: 4096, stall: 30 * time.Second, settle: 10 * time.Second}
	res, err := soak(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res.print(&out)
	t.Logf("\n%s", out.String())
	if err := res.broken(); err != nil {
		t.Fatal(err)
	}
	if res.duplicated != 0 || res.reordered != 0 || res.lostInside != 0 || res.lostTail != 0 {
		t.Errorf("duplicated %d, reordered %d, lost inside %d, lost after the last restart %d; want all 0",
			res.duplicated, res.reordered, res.lostInside, res.lostTail)
	}
	if len(res.restarts) != 2 {
		t.Fatalf("%d restarts, want 2", len(res.restarts))
	}
	for i, l := range res.restarts {
		if l.after != 0 {
			t.Errorf("restart %d: %d messages sent after it were lost", i+1, l.after)
		}
		if l.inFlight > cfg.window {
			t.Errorf("restart %d: %d lost in flight, more than the window of %d", i+1, l.inFlight, cfg.window)
		}
	}
	if res.delivered+res.lostAtRestarts() != cfg.messages {
		t.Errorf("delivered %d + lost at restarts %d != %d sent", res.delivered, res.lostAtRestarts(), cfg.messages)
	}
}

// TestClassify: the classification tells the losses libprocess allows
// (in flight at a restart) from those it does not.
func TestClassify(t *testing.T) {
	r := newRecorder(12)
	a, b := r.newIncarnation(), r.newIncarnation()
	for _, s := range []int{0, 1, 3, 4} { // 2 lost inside the first incarnation
		r.record(a, s)
	}
	// Restart at 7: 5 and 6 were in flight, 7 was sent after it.
	for _, s := range []int{8, 9, 8, 10} { // 8 twice, then 8 below 9
		r.record(b, s)
	}
	res := &result{restarts: []restartLoss{{at: 7}}}
	r.classify(res) // 11 was never delivered: lost after the last restart
	if res.delivered != 7 || res.duplicated != 1 || res.reordered != 1 || res.lostInside != 1 || res.lostTail != 1 {
		t.Errorf("delivered %d duplicated %d reordered %d inside %d tail %d; want 7 1 1 1 1",
			res.delivered, res.duplicated, res.reordered, res.lostInside, res.lostTail)
	}
	if l := res.restarts[0]; l.inFlight != 2 || l.after != 1 {
		t.Errorf("restart: %d in flight, %d after; want 2 and 1", l.inFlight, l.after)
	}
	if err := res.broken(); err == nil {
		t.Error("broken() accepts losses after a restart")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"-body", "4"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "body at least 8") {
		t.Errorf("run -body 4: %v", err)
	}
}
