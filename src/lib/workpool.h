/* SPDX-License-Identifier: Apache-2.0 */
/*
 * workpool.h - running one function on several threads at once, for the CPU-bound loops of a
 * manifest (parsing, checking, freeing its entries). The function takes its work from a
 * shared counter in arg and returns when there is none left; workpool_run returns when every
 * thread has.
 */
#ifndef DEVID_WORKPOOL_H
#define DEVID_WORKPOOL_H

/* Threads one workpool_run starts at most. */
#define WORKPOOL_MAX_THREADS 64

/*
 * Runs fn(arg) on nthreads threads (at most WORKPOOL_MAX_THREADS; fewer when threads cannot
 * be started), the calling thread being one of them, and waits for all of them.
 */
void workpool_run(int nthreads, void *(*fn)(void *), void *arg);
/* The CPUs online, 1 to WORKPOOL_MAX_THREADS. */
int workpool_cpus(void);

#endif
