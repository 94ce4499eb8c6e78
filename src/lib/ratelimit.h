/*
 * ratelimit.h - token buckets keyed by short strings (a token id, an address).
 *
 * Each key may take `burst` actions at once and regains `rate` per second. At most max_keys
 * buckets are kept; when full, a bucket that has refilled completely (and so carries no
 * state) is reused, and if there is none the action is refused: under a flood of new keys the
 * limiter fails closed. Thread-safe.
 */
#ifndef DEVID_RATELIMIT_H
#define DEVID_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

struct ratelimit;

struct ratelimit *ratelimit_new(double rate, double burst, size_t max_keys);
void ratelimit_free(struct ratelimit *rl);
/* Takes one action for key at time now (seconds); false when the key is over its limit. */
bool ratelimit_allow(struct ratelimit *rl, const char *key, double now);

#endif
