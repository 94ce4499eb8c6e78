/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest_stream.h - a manifest file (a JSON array of entries) read a page of entries at a
 * time, so that however long it is only one page is ever in memory: what `devid vendor publish`
 * and `devid import` send as an upload's pages.
 *
 * The reader follows the array's shape only (strings, brackets, commas, JSON whitespace); each
 * element goes into the page byte for byte, so a page built twice from one file is the same
 * bytes (and the same SHA-256), and the server checks the entries themselves. Input comes
 * through a read function, so the reader never touches a file itself.
 */
#ifndef DEVID_MANIFEST_STREAM_H
#define DEVID_MANIFEST_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "dynbuf.h"
#include "error.h"

/*
 * Reads up to cap bytes into buf: 0 with *got the bytes read (0 at the end of the input),
 * or a DEVID_E* code with e set.
 */
typedef int manifest_stream_read_fn(
    void *arg, uint8_t *buf, size_t cap, size_t *got, struct devid_error *e);

struct manifest_stream;

/* A reader of the input read gives; NULL when out of memory. */
struct manifest_stream *manifest_stream_new(manifest_stream_read_fn *read, void *arg);
void manifest_stream_free(struct manifest_stream *s);

/*
 * The next page: up to n (>= 1) elements as one JSON array text "[e1,e2,...]" in out (reset
 * first), *count of them; *count 0 and out empty after the last element. DEVID_EINVAL naming
 * the byte offset when the input is not a non-empty JSON array of values with nothing after
 * it, or an element is over MAX_STREAM_ELEMENT bytes; DEVID_ELIMIT when out cannot hold the
 * page (its maximum). After a failure every call fails the same way.
 */
int manifest_stream_page(
    struct manifest_stream *s, size_t n, struct dynbuf *out, size_t *count, struct devid_error *e);
/* Bytes of input consumed so far (for progress), and elements returned so far. */
uint64_t manifest_stream_offset(const struct manifest_stream *s);
uint64_t manifest_stream_elements(const struct manifest_stream *s);

#endif
