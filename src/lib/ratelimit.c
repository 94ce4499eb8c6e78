#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "banned.h"

#define RATELIMIT_KEY_MAX 80

struct bucket {
	char key[RATELIMIT_KEY_MAX];
	double tokens, last;
	bool used;
};

struct ratelimit {
	pthread_mutex_t lock;
	double rate, burst;
	size_t n;
	struct bucket *b;
};

struct ratelimit *
ratelimit_new(double rate, double burst, size_t max_keys)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (rl == NULL || (rl->b = calloc(max_keys, sizeof(*rl->b))) == NULL) {
		free(rl);
		return NULL;
	}
	pthread_mutex_init(&rl->lock, NULL);
	rl->rate = rate;
	rl->burst = burst;
	rl->n = max_keys;
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->b);
	free(rl);
}

static void
refill(const struct ratelimit *rl, struct bucket *b, double now)
{
	if (now > b->last) {
		b->tokens += (now - b->last) * rl->rate;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
		b->last = now;
	}
}

bool
ratelimit_allow(struct ratelimit *rl, const char *key, double now)
{
	struct bucket *hit = NULL, *spare = NULL;
	uint64_t h = 1469598103934665603ULL;
	bool ok = false;
	size_t start;

	for (const char *p = key; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	start = (size_t)(h % rl->n);
	pthread_mutex_lock(&rl->lock);
	/* linear probe over at most 64 slots: the key's own bucket or a reusable one */
	for (size_t i = 0; i < rl->n && i < 64 && hit == NULL; i++) {
		struct bucket *b = &rl->b[(start + i) % rl->n];

		if (!b->used) {
			if (spare == NULL)
				spare = b;
			continue;
		}
		if (strncmp(b->key, key, sizeof(b->key)) == 0) {
			hit = b;
			break;
		}
		refill(rl, b, now);
		if (spare == NULL && b->tokens >= rl->burst)
			spare = b;
	}
	if (hit == NULL && spare != NULL) {
		hit = spare;
		snprintf(hit->key, sizeof(hit->key), "%s", key);
		hit->tokens = rl->burst;
		hit->last = now;
		hit->used = true;
	}
	if (hit != NULL) {
		refill(rl, hit, now);
		if (hit->tokens >= 1.0) {
			hit->tokens -= 1.0;
			ok = true;
		}
	}
	pthread_mutex_unlock(&rl->lock);
	return ok;
}
