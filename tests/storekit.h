/* SPDX-License-Identifier: Apache-2.0 */
/*
 * storekit.h - a test's look at the database under a store: the checks that a refused action
 * changed nothing count rows.
 */
#ifndef DEVID_TEST_STOREKIT_H
#define DEVID_TEST_STOREKIT_H

#include <stdint.h>

#include "store/store.h"

/* The first column of the first row of sql (a COUNT), or -1 when the query fails. */
int64_t storekit_count(struct store *s, const char *sql);

#endif
