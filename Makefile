# dmarcd: common tasks. `make help` lists them.
GO      ?= go
STORE   ?= dmarcd.db
export CGO_ENABLED ?= 0

.PHONY: help run build test test-short fuzz bench bench-deps bench-quick samples vet clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## ingest the sample reports into $(STORE) and print per-domain compliance
	$(GO) run ./cmd/dmarcd ingest --store $(STORE) samples/

build: ## build bin/dmarcd (pure Go, CGO_ENABLED=0)
	$(GO) build -buildvcs=true -o bin/dmarcd ./cmd/dmarcd

test: ## run every test (servers the tests need are started by the tests; see .ci/run)
	$(GO) test ./...

test-short: ## the tests of dmarcd's own code only: those that start a server or an outside program skip (about half a minute)
	$(GO) test -short ./...

vet: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)

FUZZTIME ?= 30s
fuzz: ## run every fuzz target of the module (found by name: func FuzzX in a _test.go) for FUZZTIME each
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$dir/*_test.go); do \
			echo "fuzz $$dir $$target"; \
			$(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) $$dir; \
		done; \
	done

# Benchmarks end to end (internal/bench; BENCHMARKS.md): results in
# $(BENCH_OUT)/results.json and results.md, the tables also printed.
BENCH_OUT ?= bench.out
bench: ## benchmarks end to end: parse beside dmarc-cat and Perl, IMAP, 50,000-mail backfill, stores at 1M and 10M records and the writers beside their engines' own inserts, signer (about 50 min)
	$(GO) run ./internal/bench -out $(BENCH_OUT)

# What make bench runs beside dmarcd, from Debian (as root): the peers, GNU
# time for peak memory, and the servers the tests use too.
BENCH_PACKAGES = dmarc-cat dmarcts-report-parser libmail-dmarc-perl time dovecot-imapd clickhouse-server clickhouse-client
bench-deps: ## install what make bench compares against and runs (Debian, as root)
	apt-get install -y --no-install-recommends $(BENCH_PACKAGES)

bench-quick: ## a small version of bench (a few minutes; store at 100,000 records)
	$(GO) run ./internal/bench -quick -out $(BENCH_OUT)

samples: ## regenerate samples/ (reproducible: seed 1)
	rm -rf samples && $(GO) run ./cmd/reportgen -out samples -seed 1 -tls

clean:
	rm -rf bin $(STORE) $(STORE)-wal $(STORE)-shm $(BENCH_OUT)
