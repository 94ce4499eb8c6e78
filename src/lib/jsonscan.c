/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "jsonscan.h"
#include "limits.h"
#include "banned.h"

static int
is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t
jsonscan_ws(const uint8_t *p, size_t n, size_t i)
{
	while (i < n && is_ws(p[i]))
		i++;
	return i;
}

size_t
jsonscan_string_end(const uint8_t *p, size_t n, size_t i)
{
	const uint8_t *q;
	size_t k, bs;

	/* memchr to each quote, which is the end unless an odd run of backslashes escapes it */
	for (;;) {
		if (i + 1 >= n || (q = memchr(p + i + 1, '"', n - i - 1)) == NULL)
			return 0;
		k = (size_t)(q - p);
		for (bs = 0; k - bs - 1 > i && p[k - bs - 1] == '\\'; bs++)
			;
		if (bs % 2 == 0)
			return k + 1;
		i = k;
	}
}

size_t
jsonscan_value_end(const uint8_t *p, size_t n, size_t i)
{
	size_t depth = 0, start = i;

	if (i >= n)
		return 0;
	if (p[i] == '"')
		return jsonscan_string_end(p, n, i);
	if (p[i] != '{' && p[i] != '[') {
		while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && !is_ws(p[i]))
			i++;
		return i > start ? i : 0;
	}
	while (i < n) {
		if (p[i] == '"') {
			if ((i = jsonscan_string_end(p, n, i)) == 0)
				return 0;
			continue;
		}
		if (p[i] == '{' || p[i] == '[') {
			if (++depth > MAX_JSON_DEPTH)
				return 0;
		} else if ((p[i] == '}' || p[i] == ']') && --depth == 0) {
			return i + 1;
		}
		i++;
	}
	return 0;
}
