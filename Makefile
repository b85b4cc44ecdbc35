# entropy-gate — see README.md.

GO := $(shell .ci/find-go)
PREFIX ?= /usr
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Static binaries, so the same file runs in an initramfs.
export CGO_ENABLED := 0
LDFLAGS := -s -w -X gitlab.tails.boum.org/tails/entropy-gate/internal/cli.Version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags '$(LDFLAGS)'
# How long each fuzz target runs in `make test`; `make fuzz` runs longer.
FUZZTIME ?= 5s
FUZZ_LONG ?= 2m
TEST_TIMEOUT ?= 40m

BINARIES := bin/entropy-gate

.PHONY: all build test unit lint fuzz fuzz-short bench run install clean deps

all: build

build: $(BINARIES)

bin/%: FORCE
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/$*

FORCE:

# Everything CI runs: packages, lint, every test, a short run of every fuzz target.
test: deps lint unit fuzz-short

deps:
	@.ci/test-deps

unit:
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

lint:
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Every Fuzz function of every package, FUZZTIME each.
fuzz-short:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null; \
		done; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(FUZZ_LONG)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The host's own kernel: status, then a wait that returns at once here.
run: bin/entropy-gate
	bin/entropy-gate status
	bin/entropy-gate wait --timeout 10s
	@echo "entropy-gate wait: ready"

install: build
	install -D -m 0755 bin/entropy-gate $(DESTDIR)$(SBINDIR)/entropy-gate
	install -D -m 0644 internal/config/entropy-gate.conf $(DESTDIR)$(SYSCONFDIR)/entropy-gate/entropy-gate.conf
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/entropy-gate/entropy-gate.conf.d

clean:
	rm -rf bin
