package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// progressWriter prints a rollout's progress: on a terminal a progress
// bar redrawn in place with the per-agent and per-batch lines above it,
// otherwise plain lines.
type progressWriter struct {
	mu    sync.Mutex
	w     io.Writer
	bar   bool
	drawn bool
}

func newProgressWriter(w io.Writer, mode string) *progressWriter {
	p := &progressWriter{w: w}
	switch mode {
	case "bar":
		p.bar = true
	case "auto", "":
		if f, ok := w.(*os.File); ok {
			p.bar = isTerminal(f)
		}
	}
	return p
}

// clear erases the bar before a line is written.
func (p *progressWriter) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// line prints one line.
func (p *progressWriter) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// agent prints an agent's line and redraws the bar at n of total.
func (p *progressWriter) agent(n, total int, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, "[%d/%d] %s\n", n, total, line)
	if p.bar && total > 0 {
		const width = 30
		k := n * width / total
		fmt.Fprintf(p.w, "[%s%s] %d/%d agents", strings.Repeat("#", k), strings.Repeat("-", width-k), n, total)
		p.drawn = true
	}
}

// done ends the bar.
func (p *progressWriter) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}
