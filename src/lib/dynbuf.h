/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dynbuf.h - a growable byte buffer that must be given a maximum size.
 *
 * Invariants: after dynbuf_init, b->len <= b->max; the content is always followed by a NUL
 * byte once anything was added (so text can be read with dynbuf_str); appending past the
 * maximum fails with DEVID_ELIMIT and leaves the buffer unchanged.
 */
#ifndef DEVID_DYNBUF_H
#define DEVID_DYNBUF_H

#include <stddef.h>
#include <stdint.h>

struct dynbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	size_t max;
};

void dynbuf_init(struct dynbuf *b, size_t max);
/* Frees the content; the buffer may be used again (empty). */
void dynbuf_release(struct dynbuf *b);
/* Empties the buffer and keeps its memory. */
void dynbuf_reset(struct dynbuf *b);

/* Each returns 0, DEVID_ELIMIT past the maximum, or DEVID_ENOMEM. */
int dynbuf_add(struct dynbuf *b, const void *p, size_t n);
int dynbuf_addstr(struct dynbuf *b, const char *s);
int dynbuf_addf(struct dynbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The content as a NUL-terminated string; never NULL ("" when empty). Borrowed. */
const char *dynbuf_str(const struct dynbuf *b);
/* Hands the content to the caller (free() it); the buffer is left empty. */
uint8_t *dynbuf_detach(struct dynbuf *b, size_t *len);

#endif
