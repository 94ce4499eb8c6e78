/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon.h - what the long-running commands (devid serve, devid gateway) share: they tell the
 * service manager when they are ready and when they stop (sd_notify(3): systemd runs them as
 * Type=notify services), they stop on SIGINT or SIGTERM and reload on SIGHUP. Without
 * $NOTIFY_SOCKET in the environment the notifications do nothing.
 */
#ifndef DEVID_CLI_DAEMON_H
#define DEVID_CLI_DAEMON_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

struct daemon_signals {
	void (*stop)(void *arg);
	void (*reload)(void *arg);
	void *arg;
	sigset_t set;
	pthread_t thread;
	bool started;
	atomic_bool finishing; /* woken by daemon_signals_finish, not by a signal */
};

/* READY=1, with status (borrowed) as the STATUS= line: call once every port is bound. */
void daemon_ready(const char *status);

/*
 * From here on SIGINT, SIGTERM and SIGHUP are taken by a thread of d's own, not by a signal
 * handler: at the first SIGINT or SIGTERM it tells the service manager STOPPING=1, then calls
 * stop(arg), which must be callable more than once; at each SIGHUP it says RELOADING=1,
 * calls reload(arg) (which logs what it did) and says READY=1 again. Call it before starting
 * any other thread: threads inherit the blocked signals. 0, or -1 when the thread could not
 * start (nothing changed then).
 */
int daemon_signals_start(
    struct daemon_signals *d, void (*stop)(void *), void (*reload)(void *), void *arg);

/*
 * Ends d's thread and waits for it; if no signal came, the thread still says STOPPING=1 and
 * calls stop(arg), since the caller is stopping. SIGINT and SIGTERM stay blocked: the process
 * is ending, and a second signal during the drain must not kill it. Accepts a d that never
 * started.
 */
void daemon_signals_finish(struct daemon_signals *d);

#endif
