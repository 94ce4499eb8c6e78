/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xmalloc.h - allocation that aborts on failure, for the server and the command line.
 * Library code a device links (src/agent) must not use these: it returns DEVID_ENOMEM.
 */
#ifndef DEVID_XMALLOC_H
#define DEVID_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size); /* overflow-checked */
void *xreallocarray(void *p, size_t nmemb, size_t size); /* overflow-checked */
char *xstrdup(const char *s);

#endif
