/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_manifest_stream.c - libFuzzer target for manifest_stream_page(), which reads a manifest
 * file a page at a time for `devid vendor publish` and `devid import`. The first byte sets
 * the size of the pieces the input arrives in (1 to 256 bytes, as reads of a file or a pipe
 * may give), the second the entries per page (1 to 16), the rest is the file. Aborts when the
 * reader breaks its contract: a page is a JSON array text of at most that many elements, a
 * failure has a reason and repeats, and where manifest_split (the server's reading of a whole
 * manifest) also takes the input, the two find the same elements, byte for byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/manifest.h"
#include "lib/manifest_stream.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
	const uint8_t *p;
	size_t n, at, piece;
};

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_manifest_stream: contract broken: %s\n", what);
		abort();
	}
}

static int
feed_read(void *arg, uint8_t *buf, size_t cap, size_t *got, struct devid_error *e)
{
	struct feed *f = arg;
	size_t k = f->n - f->at;

	(void)e;
	if (k > f->piece)
		k = f->piece;
	if (k > cap)
		k = cap;
	memcpy(buf, f->p + f->at, k);
	f->at += k;
	*got = k;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed f;
	struct manifest_stream *s;
	struct manifest_span *spans = NULL;
	struct devid_error e, again;
	struct dynbuf page, all;
	size_t n, count, total = 0, nspans = 0;
	int rc;

	if (size < 2)
		return 0;
	f = (struct feed){.p = data + 2, .n = size - 2, .piece = (size_t)data[0] + 1};
	n = (size_t)(data[1] % 16) + 1;
	if ((s = manifest_stream_new(feed_read, &f)) == NULL)
		return 0;
	dynbuf_init(&page, 1 << 24);
	dynbuf_init(&all, 1 << 24);
	devid_error_clear(&e);
	for (;;) {
		rc = manifest_stream_page(s, n, &page, &count, &e);
		if (rc != 0) {
			expect(e.msg[0] != '\0', "a failure without a reason");
			devid_error_clear(&again);
			expect(manifest_stream_page(s, n, &page, &count, &again) == rc &&
				strcmp(again.msg, e.msg) == 0,
			    "a failure that does not repeat");
			break;
		}
		if (count == 0) {
			expect(page.len == 0, "an empty page with bytes");
			break;
		}
		expect(count <= n, "more elements than asked for");
		expect(page.len >= 2 && page.p[0] == '[' && page.p[page.len - 1] == ']',
		    "a page that is not an array text");
		total += count;
		expect(manifest_stream_elements(s) == total, "elements miscounted");
		/* the elements, one per line, to compare with the whole-text reading */
		expect(dynbuf_add(&all, page.p + 1, page.len - 2) == 0 &&
			dynbuf_add(&all, "\n", 1) == 0,
		    "buffer");
	}
	if (rc == 0 && manifest_split(f.p, f.n, &spans, &nspans)) {
		struct dynbuf want;

		dynbuf_init(&want, 1 << 24);
		expect(nspans == total, "stream and split count different elements");
		for (size_t i = 0, k = 0; i < nspans; i++) {
			expect(dynbuf_add(&want, f.p + spans[i].off, spans[i].len) == 0 &&
				dynbuf_add(
				    &want, ++k % n == 0 || i + 1 == nspans ? "\n" : ",", 1) == 0,
			    "buffer");
		}
		expect(want.len == all.len && memcmp(want.p, all.p, all.len) == 0,
		    "stream and split find different elements");
		dynbuf_release(&want);
	}
	free(spans);
	dynbuf_release(&page);
	dynbuf_release(&all);
	manifest_stream_free(s);
	return 0;
}
