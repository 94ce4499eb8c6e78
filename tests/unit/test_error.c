/* SPDX-License-Identifier: Apache-2.0 */
/* Error messages: prefixes, codes, and valid UTF-8 whatever the input quoted in them. */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "lib/error.h"
#include "test.h"
#include "lib/banned.h"

static bool
valid_utf8(const char *s)
{
	json_t *j = json_string(s); /* jansson checks UTF-8 strictly */
	bool ok = j != NULL;

	json_decref(j);
	return ok;
}

int
main(void)
{
	struct devid_error e;
	char big[600];

	devid_error_clear(&e);
	CHECK(devid_error_set(&e, DEVID_EINVAL, "entry %d: %s", 3, "bad") == DEVID_EINVAL &&
		e.code == DEVID_EINVAL && strcmp(e.msg, "entry 3: bad") == 0,
	    "set: %s", e.msg);
	devid_error_prefix(&e, "batch %s", "B1");
	CHECK(strcmp(e.msg, "batch B1: entry 3: bad") == 0, "prefix: %s", e.msg);
	CHECK(devid_error_set(NULL, DEVID_EIO, "x") == DEVID_EIO, "NULL error is allowed");

	/* quoted outside input: invalid bytes become '?', valid characters stay */
	devid_error_set(&e, DEVID_EINVAL, "near '%s'", "a\xff\xc3(b\xc3\xa9\xed\xa0\x80z");
	CHECK(valid_utf8(e.msg), "message is valid UTF-8: %s", e.msg);
	CHECK(strstr(e.msg, "\xc3\xa9") != NULL, "a valid character is kept: %s", e.msg);
	CHECK(strchr(e.msg, '?') != NULL, "invalid bytes are replaced: %s", e.msg);
	devid_error_set(&e, DEVID_EINVAL, "%s", "\xe0\x80\xaf overlong");
	CHECK(valid_utf8(e.msg), "overlong form replaced: %s", e.msg);

	/* truncation in the middle of a character drops the partial character */
	memset(big, 'x', sizeof(big));
	for (size_t i = 0; i + 1 < sizeof(big); i += 2) {
		big[i] = '\xc3';
		big[i + 1] = '\xa9';
	}
	big[sizeof(big) - 1] = '\0';
	devid_error_set(&e, DEVID_EINVAL, "x%s", big);
	CHECK(strlen(e.msg) < DEVID_ERROR_MAX && valid_utf8(e.msg),
	    "truncated message stays valid UTF-8 (%zu bytes)", strlen(e.msg));
	devid_error_prefix(&e, "%s", "p");
	CHECK(valid_utf8(e.msg), "prefix of a long message stays valid UTF-8");
	return test_done();
}
