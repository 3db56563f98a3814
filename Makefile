# The two commands of the README: `make run` and `make test`.
GO ?= go
BIN := bin

.PHONY: all build run test test-short bench fuzz clean clickhouse-start clickhouse-stop

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# From a fresh clone: ClickHouse up, server up with the embedded broker,
# demo catalog from examples/ loaded, URLs printed. Ctrl-C stops it.
run: build
	scripts/run.sh

# The whole suite, integration tests included (starts ClickHouse, installs
# what the tests need). .ci/run calls this.
test:
	scripts/test.sh

# Unit tests only, no external services.
test-short:
	$(GO) test -short ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clickhouse-start:
	scripts/clickhouse.sh start

clickhouse-stop:
	scripts/clickhouse.sh stop

clean:
	rm -rf $(BIN)
