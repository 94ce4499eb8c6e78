/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_service_metrics - src/service/metrics.c: latency buckets, and connector types named
 * into a bounded set of slots, from many threads at once.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "service/metrics.h"
#include "test.h"
#include "lib/banned.h"

#define THREADS 8
#define ROUNDS 1000

static void
test_latency(void)
{
	struct latency_histogram h = {0};

	latency_observe(&h, service_delivery_bounds, 1000000); /* 1 ms: the first bucket */
	latency_observe(&h, service_delivery_bounds, 5000000); /* 5 ms: le is inclusive */
	latency_observe(&h, service_delivery_bounds, 7000000); /* 7 ms: the second */
	latency_observe(&h, service_delivery_bounds, 500000000000); /* 500 s: above the last */
	latency_observe(&h, service_delivery_bounds, -5); /* a clock step back counts as 0 */
	CHECK(counter_read(&h.count[0]) == 3, "0, 1 and 5 ms in le=0.005: %llu",
	    (unsigned long long)counter_read(&h.count[0]));
	CHECK(counter_read(&h.count[1]) == 1, "7 ms in le=0.01");
	CHECK(counter_read(&h.count[SERVICE_LATENCY_BUCKETS]) == 1, "500 s above the last bound");
	CHECK(counter_read(&h.sum_ns) == 500013000000ull, "the sum in nanoseconds");
}

static void
test_types(void)
{
	static struct service_metrics m; /* zeroed, as inside struct service */
	char name[64];

	CHECK(connector_metrics_get(&m, "webhook") == &m.types[0], "the first type, first slot");
	CHECK(connector_metrics_get(&m, "webhook") == &m.types[0], "found again");
	CHECK(connector_metrics_get(&m, "aws-iot") == &m.types[1], "the next, the next slot");
	for (int i = 2; i < SERVICE_METRICS_MAX_TYPES; i++) {
		snprintf(name, sizeof(name), "type-%d", i);
		CHECK(connector_metrics_get(&m, name) == &m.types[i], "slot %d", i);
	}
	CHECK(connector_metrics_get(&m, "one-too-many") == &m.other, "past the slots: other");
	CHECK(connector_metrics_get(&m, "webhook") == &m.types[0], "the named keep their slot");
}

static struct service_metrics shared;

static void *
name_thread(void *arg)
{
	static const char *const types[] = {"webhook", "cirrent", "mosquitto"};
	size_t t = (size_t)arg;

	for (int i = 0; i < ROUNDS; i++)
		counter_add(&connector_metrics_get(&shared, types[(t + (size_t)i) % 3])->dead, 1);
	return NULL;
}

static void
test_threads(void)
{
	pthread_t th[THREADS];
	uint64_t total = 0;

	for (size_t i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, name_thread, (void *)i);
	for (size_t i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < SERVICE_METRICS_MAX_TYPES; i++) {
		if (atomic_load(&shared.types[i].state) != 2)
			break;
		CHECK(i < 3, "three types named racing, in three slots (slot %d is %s)", i,
		    shared.types[i].type);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(shared.types[i].type, shared.types[j].type) != 0,
			    "%s named twice", shared.types[i].type);
		total += counter_read(&shared.types[i].dead);
	}
	CHECK(total == THREADS * ROUNDS, "every count in a named slot: %llu",
	    (unsigned long long)total);
	CHECK(counter_read(&shared.other.dead) == 0, "none in other");
}

int
main(void)
{
	test_latency();
	test_types();
	test_threads();
	return test_done();
}
