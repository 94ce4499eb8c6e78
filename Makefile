# SPDX-License-Identifier: Apache-2.0
# A thin wrapper over Meson + Ninja. Every target installs what it needs first.
#   make         build build/devid (gcc, -Werror)
#   make demo    the chip-to-cloud scenario on SQLite, narrated
#   make check   every test, built with clang, ASan + UBSan, -Werror; ends "N passed, N failed"
#   make bench   hot paths beside the physical limit measured in the same run
#   make fuzz    the libFuzzer targets, FUZZ_SECONDS each (default 60)
#   make crashtest  devid serve killed at random moments, CRASH_TRIALS a store (default 50)
#   make web     the console's bundle web/dist from web/src (npm packages from the lockfile)
#   make deb     the Debian packages devid and devid-agent in build-deb/ (dpkg-buildpackage)

BUILD       ?= build
CHECK_BUILD ?= build-check
FUZZ_SECONDS ?= 60
CRASH_TRIALS ?= 50
CRASH_STORES ?= sqlite postgres

# Debian's tools only (the ones scripts/install-deps installs), for the build, the demo and the
# benchmarks alike, whatever the caller's PATH puts first; tests/meson.build does the same for
# `meson test` run by hand.
export PATH := /usr/sbin:/usr/bin:/sbin:/bin

.PHONY: all deps build demo check bench fuzz crashtest web deb format clean

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

# the crash trials of docs/crash-trials.md on the check build, each store of CRASH_STORES (both
# run even when the first fails); CRASH_SEED (the run's seed) and CRASH_KEEP (a directory for
# failed trials) pass through the environment
crashtest: deps $(CHECK_BUILD)/build.ninja
	ninja -C $(CHECK_BUILD)
	@status=0; for store in $(CRASH_STORES); do \
		case $$store in postgres) pg="sh scripts/with-postgres" ;; *) pg="" ;; esac; \
		$$pg sh tests/integration/crash.sh $(CHECK_BUILD)/devid $$store $(CRASH_TRIALS) || status=1; \
	done; exit $$status

web: deps
	sh scripts/web-deps
	cd web && node build.mjs dist

deb: deps
	sh scripts/build-deb build-deb

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(CHECK_BUILD) build-deb
