# procpanda build targets. `make run` and `make test` are the two commands a
# newcomer needs; the rest are for developers.
GO        ?= go
BIN       := bin
PORT      ?= 5052
RUNDIR    := .run
FUZZTIME  ?= 20s
BENCHTIME ?= 2s
# VERSION is stamped into pkgpandad (pkgpandad --version).
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: build run test bench bench-cache bench-fleet attack soak fuzz vet lint clean

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# STATICCHECK is pinned so CI results do not change under us. It is
# installed into $(BIN) (built once per machine, from the Go build cache
# after that) and run as a plain binary, so that the build flags it is
# given below apply to the code it checks and not to itself.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

# CHECKFLAGS is the one build configuration of `make test`: vet (run by
# go test with every analyzer, -vet=all), staticcheck (through GOFLAGS)
# and the tests all see the race-instrumented build, so every package is
# compiled once for all three. Compiling the tree a second time without
# -race for a separate `go vet` and staticcheck took about as long as the
# tests' own build on a fresh machine.
CHECKFLAGS := -race

vet:
	$(GO) vet ./...

# lint catches drift: unformatted files, staticcheck findings, a go.mod
# that `go mod tidy` would change, and code that no longer builds for the
# non-Linux targets developers use. Only the packages with Linux-only
# files (subprocess, pkgpanda's cache) have parts that differ there, so
# the other OS builds everything and vets just those (vetting every test
# package for darwin too compiled all test dependencies a third time).
# go vet runs with the tests (`make test`), or alone with `make vet`.
lint:
	@out="$$(gofmt -l .)"; \
	  if [ -n "$$out" ]; then echo "gofmt -l reports:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	GOOS=darwin $(GO) build ./...
	GOOS=darwin $(GO) vet ./processes/pkgpanda/subprocess/
	@mkdir -p $(BIN)
	GOBIN=$(abspath $(BIN)) $(GO) install $(STATICCHECK)
	GOFLAGS=$(CHECKFLAGS) $(BIN)/staticcheck ./...

# test runs go vet and the Go tests with a temporary directory of their
# own and fails if anything is left in it afterwards.
test: lint module-test
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/procpanda-test.XXXXXX"); \
	  echo "TMPDIR=$$tmp $(GO) test $(CHECKFLAGS) -vet=all -count=1 -timeout 15m ./..."; \
	  TMPDIR=$$tmp $(GO) test $(CHECKFLAGS) -vet=all -count=1 -timeout 15m ./...; rc=$$?; \
	  if [ -n "$$(ls -A $$tmp)" ]; then \
	    echo "make test: the tests left files in their temporary directory:"; ls -la $$tmp; rc=1; \
	  fi; \
	  rm -rf $$tmp; exit $$rc

# run builds the daemon and starts it on 127.0.0.1:$(PORT). When no real
# pkgpanda is on PATH it creates a demo repository under $(RUNDIR) and uses
# the stand-in CLI, so `curl http://127.0.0.1:$(PORT)/pkgpanda/repository/`
# answers at once: reads are open on loopback, while mutations need the
# credential generated for this run ($(RUNDIR)/credentials.json, owner
# only), printed with a curl line to paste.
run: build
	@mkdir -p $(RUNDIR) && chmod 700 $(RUNDIR)
	@umask 077; secret=$$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n'); \
	  printf '{"credentials":[{"principal":"ops","secret":"%s"}]}\n' "$$secret" > $(RUNDIR)/credentials.json; \
	  base=http://127.0.0.1:$(PORT)/pkgpanda; \
	  echo "reads are open:     curl $$base/repository/"; \
	  if command -v pkgpanda >/dev/null 2>&1; then \
	    echo "using pkgpanda from PATH"; \
	    echo "mutations need the credential made for this run ($(RUNDIR)/credentials.json):"; \
	    echo "  curl -u ops:$$secret -X PUT -H 'Content-Type: application/json' -d '[\"<id>\", ...]' $$base/active/"; \
	    set -- --pkgpanda "$$(command -v pkgpanda)"; \
	  else \
	    echo "no pkgpanda on PATH: using the stand-in CLI over a demo repository in $(RUNDIR)"; \
	    echo "mutations need the credential made for this run ($(RUNDIR)/credentials.json), e.g."; \
	    echo "  curl -u ops:$$secret -X POST '$$base/swap?id=mesos--1.12.0'"; \
	    set -- --pkgpanda $(BIN)/pkgpanda-standin --demo $(RUNDIR); \
	  fi; \
	  LIBPROCESS_IP=127.0.0.1 LIBPROCESS_PORT=$(PORT) exec $(BIN)/pkgpandad "$$@" \
	    --http-credentials $(RUNDIR)/credentials.json --authenticate-reads=false

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./libprocess/... ./processes/...

# bench-cache runs only the pkgpanda benchmarks of reads with and without
# reuse and of DELETE and PUT /active/ against direct CLI runs (about two
# minutes; run it several times, machine load moves it), and the spawn
# engine against os/exec.
bench-cache:
	$(GO) test -run '^$$' -bench '^BenchmarkCacheReads$$' -benchtime 1x ./processes/pkgpanda/
	$(GO) test -run '^$$' -bench '^BenchmarkEngineVsExec$$' -benchtime 1000x ./processes/pkgpanda/subprocess/

# bench-fleet runs `pkgpanda-fleet status` over 1,000 simulated agents on
# loopback (all answering; then 10 with nothing listening and 5 that never
# answer) and reports wall time, the tool's peak RSS and open descriptors,
# and the most calls in flight at once.
bench-fleet:
	$(GO) test -run '^$$' -bench '^BenchmarkStatus1000$$' -benchtime 3x ./cmd/pkgpanda-fleet/

# attack starts pkgpandad on loopback and runs the resource attacks of
# cmd/procpanda-attack against it one after the other (idle, slow-drip and
# 16 MiB-announcing connections, distinct senders, large api/v1 bodies,
# callers that never read their replies), printing peak RSS, open fds and
# /help latency for each. Bounded: a few minutes. Not part of `make test`.
attack: build
	$(BIN)/procpanda-attack -pkgpandad $(BIN)/pkgpandad -standin $(BIN)/pkgpanda-standin $(ATTACKFLAGS)

# soak streams 1,000,000 numbered messages between two runtimes over
# loopback while restarting the receiver 10 times, and reports delivered,
# duplicated and reordered messages and the losses of each restart. A few
# seconds.
soak: build
	$(BIN)/procpanda-soak $(SOAKFLAGS)

# fuzz runs every fuzz target for FUZZTIME each (go test accepts one target
# per invocation).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf $(BIN) $(RUNDIR)

include cmd/pkgpanda-module/module.mk
