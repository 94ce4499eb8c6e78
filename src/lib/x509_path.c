/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "limits.h"
#include "x509_path.h"
#include "banned.h"

struct path_search {
	X509_STORE *roots;
	STACK_OF(X509) *anchors; /* the certificates of roots */
	X509 *leaf;
	STACK_OF(X509) *untrusted;
	const struct x509_verify_opts *o;
	STACK_OF(X509) *path; /* leaf's issuer, its issuer, ... */
	int tries;
	bool reached; /* a path reaching a root was verified; first_err holds its message */
	struct devid_error first_err;
};

static bool
in_path(const struct path_search *s, X509 *c)
{
	if (X509_cmp(c, s->leaf) == 0)
		return true;
	for (int i = 0; i < sk_X509_num(s->path); i++)
		if (X509_cmp(c, sk_X509_value(s->path, i)) == 0)
			return true;
	return false;
}

static bool
issued_by_anchor(const struct path_search *s, X509 *c)
{
	for (int i = 0; i < sk_X509_num(s->anchors); i++)
		if (X509_check_issued(sk_X509_value(s->anchors, i), c) == X509_V_OK)
			return true;
	return false;
}

/* Extends the path above cur; true when a path verified. */
static bool
search(struct path_search *s, X509 *cur)
{
	struct devid_error e;

	for (int i = 0; i < sk_X509_num(s->untrusted) && s->tries < MAX_PATH_TRIES; i++) {
		X509 *c = sk_X509_value(s->untrusted, i);
		bool ok = false;

		if (in_path(s, c) || X509_check_issued(c, cur) != X509_V_OK)
			continue;
		if (!sk_X509_push(s->path, c))
			return false;
		if (issued_by_anchor(s, c)) {
			s->tries++;
			devid_error_clear(&e);
			if (x509_chain_verify(s->roots, s->leaf, s->path, s->o, &e) == 0)
				ok = true;
			else if (!s->reached) {
				s->reached = true;
				s->first_err = e;
			}
		}
		if (!ok && sk_X509_num(s->path) < MAX_PATH_DEPTH &&
		    X509_check_issued(c, c) != X509_V_OK)
			ok = search(s, c);
		sk_X509_pop(s->path);
		if (ok)
			return true;
	}
	return false;
}

int
x509_path_verify(X509_STORE *roots, X509 *leaf, STACK_OF(X509) *untrusted,
    const struct x509_verify_opts *o, struct devid_error *e)
{
	struct path_search s = {.roots = roots, .leaf = leaf, .untrusted = untrusted, .o = o};
	bool ok;
	int rc;

	if ((rc = x509_chain_verify(roots, leaf, untrusted, o, e)) == 0 ||
	    sk_X509_num(untrusted) <= 0)
		return rc;
	if ((s.anchors = X509_STORE_get1_all_certs(roots)) == NULL ||
	    (s.path = sk_X509_new_null()) == NULL) {
		sk_X509_pop_free(s.anchors, X509_free);
		return devid_error_set(e, DEVID_ENOMEM, "chain: out of memory");
	}
	ok = search(&s, leaf);
	ERR_clear_error();
	sk_X509_pop_free(s.anchors, X509_free);
	sk_X509_free(s.path);
	if (ok) {
		devid_error_clear(e);
		return 0;
	}
	if (s.reached && e != NULL)
		*e = s.first_err;
	return DEVID_ECRYPTO;
}
