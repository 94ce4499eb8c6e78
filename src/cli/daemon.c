/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "lib/log.h"
#include "lib/banned.h"

void
daemon_ready(const char *status)
{
	if (sd_notifyf(0, "READY=1\nSTATUS=%s", status) < 0)
		log_warn("sd_notify failed", LOG_STR("state", "READY=1"));
}

static void *
signal_thread(void *arg)
{
	struct daemon_signals *d = arg;
	int sig = 0;

	while (sigwait(&d->set, &sig) == 0 && sig == SIGHUP && !atomic_load(&d->finishing)) {
		log_info("reloading", LOG_STR("signal", "SIGHUP"));
		if (sd_notify(0, "RELOADING=1") < 0)
			log_warn("sd_notify failed", LOG_STR("state", "RELOADING=1"));
		d->reload(d->arg);
		if (sd_notify(0, "READY=1") < 0)
			log_warn("sd_notify failed", LOG_STR("state", "READY=1"));
	}
	if (!atomic_load(&d->finishing))
		log_info("stopping", LOG_STR("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
	if (sd_notify(0, "STOPPING=1") < 0)
		log_warn("sd_notify failed", LOG_STR("state", "STOPPING=1"));
	d->stop(d->arg);
	return NULL;
}

int
daemon_signals_start(
    struct daemon_signals *d, void (*stop)(void *), void (*reload)(void *), void *arg)
{
	sigset_t old;

	d->stop = stop;
	d->reload = reload;
	d->arg = arg;
	d->started = false;
	atomic_store(&d->finishing, false);
	sigemptyset(&d->set);
	sigaddset(&d->set, SIGINT);
	sigaddset(&d->set, SIGTERM);
	sigaddset(&d->set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &d->set, &old) != 0)
		return -1;
	if (pthread_create(&d->thread, NULL, signal_thread, d) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return -1;
	}
	d->started = true;
	return 0;
}

void
daemon_signals_finish(struct daemon_signals *d)
{
	if (!d->started)
		return;
	atomic_store(&d->finishing, true);
	/* wakes sigwait when no signal came; a thread past it keeps the signal pending, unused */
	pthread_kill(d->thread, SIGTERM);
	pthread_join(d->thread, NULL);
	d->started = false;
}
