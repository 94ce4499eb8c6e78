/* SPDX-License-Identifier: Apache-2.0 */
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
	for (i++; i < n; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return 0;
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
