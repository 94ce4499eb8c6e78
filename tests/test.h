/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test.h - a small test harness: TAP-like lines on stdout, exit status for meson.
 *
 *   CHECK(cond, "what was expected %d", x)  records a failure with file:line and the message
 *   test_skip("reason")                      ends the program as skipped (exit 77)
 *   return test_done();                      exit status: 0 if every check passed
 */
#ifndef DEVID_TEST_H
#define DEVID_TEST_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		test_checks++;                                                                     \
		if (!(cond)) {                                                                     \
			test_failures++;                                                           \
			printf("not ok %s:%d: ", __FILE__, __LINE__);                              \
			printf(__VA_ARGS__);                                                       \
			putchar('\n');                                                             \
		}                                                                                  \
	} while (0)

#define TEST_SKIP_STATUS 77

static inline void
test_skip(const char *reason)
{
	printf("SKIP: %s\n", reason);
	exit(TEST_SKIP_STATUS);
}

static inline int
test_done(void)
{
	printf("%d checks, %d failed\n", test_checks, test_failures);
	return test_failures == 0 ? 0 : 1;
}

static inline int
test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A new private directory under $TMPDIR or /tmp; the caller removes it with test_rmdir. */
static inline void
test_tmpdir(char *buf, size_t len, const char *name)
{
	const char *t = getenv("TMPDIR");

	snprintf(buf, len, "%s/devid-%s-XXXXXX", t != NULL ? t : "/tmp", name);
	if (mkdtemp(buf) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static inline void
test_rmdir(const char *dir)
{
	nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
