/* SPDX-License-Identifier: Apache-2.0 */
/*
 * azure_dps.h - the pieces of the azure-dps connector that tests reach directly: the shared
 * access signature and the reading of a bulk enrollment answer.
 */
#ifndef DEVID_AZURE_DPS_H
#define DEVID_AZURE_DPS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/dynbuf.h"
#include "lib/error.h"

#define AZURE_DPS_MAX_BULK 10 /* enrollments in one bulk call (the service's limit) */
#define AZURE_DPS_MAX_ANSWER (1 << 16) /* bytes of an answer read */
#define AZURE_SAS_MAX_KEY 256 /* bytes of a base64 policy key */

/*
 * A shared access signature as Azure documents it:
 *   SharedAccessSignature sr=<enc(resource)>&sig=<enc(b64(HMAC-SHA256(b64dec(key),
 *   enc(resource) "\n" expiry)))>&se=<expiry>&skn=<enc(policy)>
 * resource is what the token is for (for DPS: its host name); key_b64 the policy's key,
 * base64. *out is malloc'ed (free() it, it holds no key). DEVID_EINVAL when the key is not
 * base64.
 */
int azure_sas_token(const char *resource, const char *policy, const char *key_b64, int64_t expiry,
    char **out, struct devid_error *e);

/*
 * Reads a BulkEnrollmentOperationResult (exact bytes p[0..n)) for a call that carried the
 * registration ids ids[0..k): codes[i] is 0 when ids[i] went through, else its errorCode
 * (a DPS error code: the HTTP status, then three digits, e.g. 409201). An answer that says it
 * failed without naming any item fails every item with 500000. DEVID_EINVAL when the answer
 * is not such a document or names an id that was not sent.
 */
int azure_dps_results_parse(const uint8_t *p, size_t n, const char *const *ids, size_t k,
    long *codes, struct devid_error *e);

#endif
