/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <unistd.h>

#include "workpool.h"
#include "banned.h"

void
workpool_run(int nthreads, void *(*fn)(void *), void *arg)
{
	pthread_t tid[WORKPOOL_MAX_THREADS];
	int started = 0;

	if (nthreads > WORKPOOL_MAX_THREADS)
		nthreads = WORKPOOL_MAX_THREADS;
	for (int i = 1; i < nthreads; i++)
		if (pthread_create(&tid[started], NULL, fn, arg) == 0)
			started++;
	fn(arg);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
}

int
workpool_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > WORKPOOL_MAX_THREADS ? WORKPOOL_MAX_THREADS : (int)n;
}
