/* SPDX-License-Identifier: Apache-2.0 */
/*
 * service_metrics.h - the domain's metrics (src/service/metrics.h), the connection pool and
 * the outbox's jobs in Prometheus text format, as a collector of the /metrics registry.
 * Every family and label is listed in docs/metrics.md.
 */
#ifndef DEVID_HTTP_SERVICE_METRICS_H
#define DEVID_HTTP_SERVICE_METRICS_H

#include "lib/dynbuf.h"
#include "service/service.h"

/*
 * A metrics collector (metrics_add_collector) over arg, a struct service: appends the
 * devid_* families. Counters come from svc->metrics and the pool; the jobs gauge from one
 * query of the database, whose success devid_database_up says (the rest renders either way).
 */
int service_metrics_collect(void *arg, struct dynbuf *out);

#endif
