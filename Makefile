# SPDX-License-Identifier: Apache-2.0
# A thin wrapper over Meson + Ninja. Every target installs what it needs first.
#   make         build build/devid (gcc, -Werror)
#   make demo    the chip-to-cloud scenario on SQLite, narrated
#   make check   every test, built with clang, ASan + UBSan, -Werror; ends "N passed, N failed"
#   make bench   hot paths beside the physical limit measured in the same run
#   make fuzz    the libFuzzer targets, FUZZ_SECONDS each (default 60)
#   make web     the console's bundle web/dist from web/src (npm packages from the lockfile)
#   make deb     the Debian packages devid and devid-agent in build-deb/ (dpkg-buildpackage)

BUILD       ?= build
CHECK_BUILD ?= build-check
FUZZ_SECONDS ?= 60

# Debian's tools only (the ones scripts/install-deps installs), for the build, the demo and the
# benchmarks alike, whatever the caller's PATH puts first; tests/meson.build does the same for
# `meson test` run by hand.
export PATH := /usr/sbin:/usr/bin:/sbin:/bin

.PHONY: all deps build demo check bench fuzz web deb format clean

all: build

deps:
	@sh scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(CHECK_BUILD)/build.ninja:
	CC=clang meson setup $(CHECK_BUILD) --buildtype=debugoptimized \
	    -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true

check: deps $(CHECK_BUILD)/build.ninja
	ninja -C $(CHECK_BUILD)
	sh scripts/run-tests $(CHECK_BUILD)

demo: build
	sh scripts/demo $(BUILD)

bench: build
	sh bench/run $(BUILD)

fuzz: deps $(CHECK_BUILD)/build.ninja
	ninja -C $(CHECK_BUILD)
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run-all $(CHECK_BUILD)

web: deps
	sh scripts/web-deps
	cd web && node build.mjs dist

deb: deps
	sh scripts/build-deb build-deb

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(CHECK_BUILD) build-deb
