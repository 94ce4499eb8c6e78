/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_balance.c - which workers take the next connection.
 *
 * A connection stays with the worker that accepted it, and a handler blocks its worker, so
 * two connections on one worker are served one request at a time while other workers may
 * sit idle. The kernel wakes every worker for a new connection and the first to accept
 * wins, whatever it holds already: an idle worker that keeps an idle keep-alive connection
 * races as well as one with none. `devid vendor publish` keeps two pages in flight on two
 * connections beside an idle third; when the same worker took both of its senders, the pages
 * were verified one after the other and the publish took half as long again.
 *
 * So a worker listens only while no other worker that could accept (one not running a
 * handler) holds fewer connections than it does; otherwise it parks: its listener stays
 * off. A parked worker looks again when it loses a connection, and when another worker
 * gains one or starts a handler, which wakes every parked worker through its eventfd.
 * Each worker marks itself parked before it looks, and each waker changes its own state
 * before it looks for parked workers (all sequentially consistent), so one of the two
 * always sees the other: the worker with the fewest connections among those not in a
 * handler is never left parked, and a connection always has a worker to accept it.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "http/server_internal.h"
#include "lib/banned.h"

/* No other worker that could accept holds fewer connections than w. */
static bool
may_accept(const struct http_worker *w)
{
	const struct http_server *s = w->srv;
	unsigned mine = atomic_load(&w->conns);

	for (unsigned i = 0; i < s->nworkers; i++) {
		const struct http_worker *o = &s->workers[i];

		if (o != w && !atomic_load(&o->busy) && atomic_load(&o->conns) < mine)
			return false;
	}
	return true;
}

/* Something changed that may let a parked worker accept: each looks again. */
static void
wake_parked(const struct http_worker *w)
{
	const struct http_server *s = w->srv;
	const uint64_t one = 1;

	for (unsigned i = 0; i < s->nworkers; i++) {
		const struct http_worker *o = &s->workers[i];

		if (o != w && atomic_load(&o->parked)) {
			/* fails only with a wake pending already (a full counter): as good */
			ssize_t r = write(o->wake_fd, &one, sizeof(one));

			(void)r;
		}
	}
}

void
http_balance_resume(struct http_worker *w)
{
	if (w->stopping || atomic_load(&w->srv->stop_requested))
		return;
	atomic_store(&w->parked, true);
	if (!may_accept(w))
		return;
	atomic_store(&w->parked, false);
	evconnlistener_enable(w->lev);
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_worker *w = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	if (atomic_load(&w->parked))
		http_balance_resume(w);
}

void
http_balance_accepted(struct http_worker *w)
{
	/* it was listening, so not parked; it listens again after this turn of the loop, if */
	atomic_fetch_add(&w->conns, 1);
	wake_parked(w);
}

void
http_balance_closed(struct http_worker *w)
{
	atomic_fetch_sub(&w->conns, 1);
	if (atomic_load(&w->parked))
		http_balance_resume(w);
}

void
http_balance_busy(struct http_worker *w, bool busy)
{
	atomic_store(&w->busy, busy);
	if (busy)
		wake_parked(w);
}

int
http_balance_init(struct http_worker *w)
{
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0)
		return -1;
	w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, wake_cb, w);
	if (w->wake_ev == NULL || event_add(w->wake_ev, NULL) != 0)
		return -1;
	return 0;
}

void
http_balance_release(struct http_worker *w)
{
	if (w->wake_ev != NULL)
		event_free(w->wake_ev);
	w->wake_ev = NULL;
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	w->wake_fd = -1;
}
