# SPDX-License-Identifier: GPL-3.0-or-later
# entropy-gate — see README.md.

GO := $(shell .ci/find-go)
PREFIX ?= /usr
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
# The version: `git describe` of a v* tag in a clone of this repository,
# else the VERSION file (a release tarball has no .git; `make VERSION=…`
# overrides both).
VERSION := $(shell { test -e .git && git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null; } || cat VERSION)
# Static binaries, so the same file runs in an initramfs.
export CGO_ENABLED := 0
# STRIP=1 drops the symbol table and debug information (-s -w); a
# distribution turns it off (STRIP=0) to keep them for a debug package.
STRIP ?= 1
# LDFLAGS and GOFLAGS are the packager's, for Go's linker and the go
# command; the version is stamped whatever they say. LDFLAGS is not taken
# from the environment, where dpkg-buildflags puts the C linker's flags.
ifeq ($(origin LDFLAGS),environment)
LDFLAGS :=
endif
GO_LDFLAGS := -X gitlab.tails.boum.org/tails/entropy-gate/internal/buildinfo.version=$(VERSION) \
	$(if $(filter 1,$(STRIP)),-s -w) $(LDFLAGS)
GOFLAGS_BUILD := -trimpath -ldflags '$(GO_LDFLAGS)'
# How long each fuzz target runs in `make test`; `make fuzz` runs longer.
FUZZTIME ?= 5s
FUZZ_LONG ?= 2m
TEST_TIMEOUT ?= 40m

# Where binaries and compiled translations are built; tests that install
# at the same time give each its own.
OUT ?= bin
LOCALEOUT ?= build/locale
# Translated desktop files, beside the compiled translations.
DESKTOPOUT ?= $(dir $(LOCALEOUT))desktop
MANOUT ?= build/man
BINARIES := $(OUT)/entropy-gate $(OUT)/entropy-notify

# The main job: boot the real kernel in QEMU and show how the gate waits.
.PHONY: demo
demo: deps
	$(GO) run ./internal/cmd/demo

.PHONY: all build test unit lint fuzz fuzz-short bench run install clean deps pot po mo desktop check-po survey version man deb spdx

all: build

build: $(BINARIES)

$(OUT)/%: FORCE
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/$*

FORCE:

# The version `make build` stamps.
version:
	@echo $(VERSION)

# Everything CI runs: packages, lint, every test, a short run of every fuzz target.
test: deps lint check-po unit fuzz-short

deps:
	@.ci/test-deps

unit:
	mkdir -p build/artifacts
	ENTROPY_GATE_ARTIFACTS=$(CURDIR)/build/artifacts $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# The linters, built from internal/tools/go.mod's pinned versions (Go
# module proxy) into .cache/tools.
TOOLS := $(CURDIR)/.cache/tools
LINTERS := $(TOOLS)/staticcheck $(TOOLS)/go-errorlint

lint: $(LINTERS)
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/go-errorlint ./...

$(TOOLS)/staticcheck: internal/tools/go.mod internal/tools/go.sum
	$(GO) -C internal/tools build -o $@ honnef.co/go/tools/cmd/staticcheck

$(TOOLS)/go-errorlint: internal/tools/go.mod internal/tools/go.sum
	$(GO) -C internal/tools build -o $@ github.com/polyfloyd/go-errorlint

# Every Fuzz function of every package, FUZZTIME each.
fuzz-short:
	@mkdir -p build; set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >build/fuzz.log 2>&1 || { cat build/fuzz.log; exit 1; }; \
		done; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(FUZZ_LONG)

# Boot-entropy data (minutes; not part of `make test`): boot the QEMU guest in
# each configuration and print the table for docs/boot-entropy.md.
survey: deps
	$(GO) run ./internal/cmd/survey $(SURVEY_FLAGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The host's own kernel: status, then a wait that returns at once here.
run: $(OUT)/entropy-gate
	$(OUT)/entropy-gate status
	$(OUT)/entropy-gate wait --timeout 10s
	@echo "entropy-gate wait: ready"

# Translations: po/entropy-gate.pot from the sources (strings marked with
# G and N), merged into po/LL.po, compiled to build/locale/LL/LC_MESSAGES.
# The languages, listed in po/LINGUAS, where msgfmt --desktop reads them.
LINGUAS := $(shell sed 's/\#.*//' po/LINGUAS)
# Files that call a translation function (G or N), for xgettext.
I18N_CALL := \.[GN](
# Desktop files, whose Name and Comment are translated.
DESKTOP_SOURCES := units/applications/org.boum.tails.EntropyNotify.desktop.in units/autostart/entropy-notify.desktop.in
GO_SOURCES = $(shell { git ls-files -- 'cmd/*.go' 'internal/*.go' 2>/dev/null || find cmd internal -name '*.go'; } \
	| grep -v '_test\.go$$' | xargs grep -l '$(I18N_CALL)' | LC_ALL=C sort)

pot:
	xgettext --language=C --from-code=UTF-8 --keyword= --keyword=G --keyword=N:1,2 \
		--add-comments=TRANSLATORS: --package-name=entropy-gate --msgid-bugs-address=https://gitlab.tails.boum.org/tails/entropy-gate/-/issues \
		--add-location=file --sort-by-file -o po/entropy-gate.pot.new $(GO_SOURCES)
	@# The desktop files' strings follow the program's (xgettext --join-existing would re-sort them).
	xgettext --omit-header --add-location=file --sort-by-file -o po/desktop.pot.new $(DESKTOP_SOURCES)
	msgcat --use-first -o po/entropy-gate.pot.new po/entropy-gate.pot.new po/desktop.pot.new
	rm po/desktop.pot.new
	@# No creation date, so an unchanged source tree gives an unchanged file.
	sed -i '/^"POT-Creation-Date:/d' po/entropy-gate.pot.new
	mv po/entropy-gate.pot.new po/entropy-gate.pot

po: pot
	for l in $(LINGUAS); do msgmerge --quiet --update --backup=none --no-fuzzy-matching po/$$l.po po/entropy-gate.pot; done

mo:
	for l in $(LINGUAS); do mkdir -p $(LOCALEOUT)/$$l/LC_MESSAGES && \
		msgfmt --check -o $(LOCALEOUT)/$$l/LC_MESSAGES/entropy-gate.mo po/$$l.po; done

# units/DIR/NAME.desktop.in → $(DESKTOPOUT)/DIR/NAME.desktop, with every
# translation's Name= and Comment=.
desktop: $(patsubst units/%.in,$(DESKTOPOUT)/%,$(DESKTOP_SOURCES))

$(DESKTOPOUT)/%.desktop: units/%.desktop.in $(wildcard po/*.po)
	mkdir -p $(@D)
	msgfmt --desktop --template=$< -d po -o $@

# CI: the template is current and every translation compiles.
check-po:
	cp po/entropy-gate.pot build/entropy-gate.pot.committed 2>/dev/null || { mkdir -p build && cp po/entropy-gate.pot build/entropy-gate.pot.committed; }
	$(MAKE) -s pot
	@diff -u build/entropy-gate.pot.committed po/entropy-gate.pot || { echo "po/entropy-gate.pot is stale: run make po and commit"; exit 1; }
	for l in $(LINGUAS); do msgfmt --check --statistics -o /dev/null po/$$l.po; done
	@for f in po/*.po; do l=$$(basename $$f .po); echo " $(LINGUAS) " | grep -q " $$l " || { echo "po/LINGUAS lacks $$l"; exit 1; }; done

# Manual pages, from one markdown source each in docs/man (go-md2man).
MANPAGES := $(basename $(notdir $(wildcard docs/man/*.md)))

man:
	mkdir -p $(MANOUT)
	for p in $(MANPAGES); do go-md2man -in docs/man/$$p.md -out $(MANOUT)/$$p; done

install: build mo desktop man
	install -D -m 0755 $(OUT)/entropy-gate $(DESTDIR)$(SBINDIR)/entropy-gate
	install -D -m 0755 $(OUT)/entropy-notify $(DESTDIR)$(BINDIR)/entropy-notify
	install -D -m 0644 units/user/entropy-notify.service $(DESTDIR)$(PREFIX)/lib/systemd/user/entropy-notify.service
	@# Enabled by presets (systemctl preset, or the package's maintainer
	@# scripts), not by links under /usr, so that disable can undo it.
	install -D -m 0644 units/system-preset/80-entropy-gate.preset $(DESTDIR)$(PREFIX)/lib/systemd/system-preset/80-entropy-gate.preset
	install -D -m 0644 units/user-preset/80-entropy-gate.preset $(DESTDIR)$(PREFIX)/lib/systemd/user-preset/80-entropy-gate.preset
	install -D -m 0644 $(DESKTOPOUT)/autostart/entropy-notify.desktop $(DESTDIR)$(SYSCONFDIR)/xdg/autostart/entropy-notify.desktop
	install -D -m 0644 $(DESKTOPOUT)/applications/org.boum.tails.EntropyNotify.desktop $(DESTDIR)$(PREFIX)/share/applications/org.boum.tails.EntropyNotify.desktop
	install -D -m 0644 internal/config/entropy-gate.conf $(DESTDIR)$(SYSCONFDIR)/entropy-gate/entropy-gate.conf
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/entropy-gate/entropy-gate.conf.d
	cd units/system && find . -type f | while read -r f; do \
		install -D -m 0644 "$$f" "$(DESTDIR)$(UNITDIR)/$$f"; done
	install -D -m 0755 units/initramfs-tools/hooks/entropy-gate $(DESTDIR)$(PREFIX)/share/initramfs-tools/hooks/entropy-gate
	install -D -m 0755 units/initramfs-tools/scripts/init-bottom/entropy-gate $(DESTDIR)$(PREFIX)/share/initramfs-tools/scripts/init-bottom/entropy-gate
	install -D -m 0644 units/dbus/org.boum.tails.EntropyGate1.conf $(DESTDIR)$(PREFIX)/share/dbus-1/system.d/org.boum.tails.EntropyGate1.conf
	install -D -m 0644 units/dbus/org.boum.tails.EntropyGate1.service $(DESTDIR)$(PREFIX)/share/dbus-1/system-services/org.boum.tails.EntropyGate1.service
	install -D -m 0644 units/dbus/org.boum.tails.EntropyGate1.xml $(DESTDIR)$(PREFIX)/share/dbus-1/interfaces/org.boum.tails.EntropyGate1.xml
	install -D -m 0644 units/catalog/entropy-gate.catalog $(DESTDIR)$(PREFIX)/lib/systemd/catalog/entropy-gate.catalog
	for l in $(LINGUAS); do install -D -m 0644 $(LOCALEOUT)/$$l/LC_MESSAGES/entropy-gate.mo \
		$(DESTDIR)$(PREFIX)/share/locale/$$l/LC_MESSAGES/entropy-gate.mo; done
	for p in $(MANPAGES); do install -D -m 0644 $(MANOUT)/$$p \
		$(DESTDIR)$(PREFIX)/share/man/man$${p##*.}/$$p; done

# The Debian package: a copy of the tree in $(DEBOUT)/entropy-gate, its Go
# modules vendored there, built offline by dpkg-buildpackage; the .deb
# lands in $(DEBOUT). Where the build dependencies are not met (Debian
# 12's Go is too old) it builds with $(GO) and -d: see debian/README.source.
DEBOUT ?= build/deb
DEBSRC = $(DEBOUT)/entropy-gate

deb:
	rm -rf $(DEBOUT) && mkdir -p $(DEBSRC)
	tar --exclude=./.git --exclude=./.cache --exclude=./bin --exclude=./build --exclude=./vendor -cf - . | tar -C $(DEBSRC) -xf -
	cd $(DEBSRC) && GOFLAGS=-mod=mod $(GO) mod vendor
	cd $(DEBSRC) && if dpkg-checkbuilddeps; then deps=; else \
		echo "building with $(GO) without the build-dependency check" >&2; deps=-d; fi; \
		GO=$(GO) dpkg-buildpackage -b -us -uc $$deps

# Adds the SPDX licence line to every tracked file that should carry one
# and lacks it (which files: internal/licensing/doc.go).
spdx:
	$(GO) run ./internal/licensing/spdx $(CURDIR)

clean:
	rm -rf bin build
