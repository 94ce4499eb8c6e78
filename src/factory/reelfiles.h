/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reelfiles.h - the files every reel has beside its manifest, shared by the two ways of
 * minting one (chips made here: mint.c; TPMs from their EK certificates: mint_ek.c).
 */
#ifndef DEVID_REELFILES_H
#define DEVID_REELFILES_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/error.h"
#include "factory/factory.h"

/*
 * The reel is written into a staging directory next to out (stage, len bytes, gets its
 * path; with an empty chips/ in it) and renamed to out at the end, so out appears complete or
 * not at all. out must not exist or be an empty directory.
 */
int reel_stage_dir(const char *out, char *stage, size_t len, struct devid_error *e);
/* Removes a staging directory and what is in it; nothing when stage is "". */
void reel_stage_remove(const char *stage);
/* Writes path: the batch descriptor (a flattened JWS by the manifest signer). */
int reel_write_descriptor(const struct vendor_pki *pki, const char *batch, const char *part,
    size_t count, const char *created, const char *claim_hash, const char *path,
    struct devid_error *e);
/*
 * Writes batch.json, claim.txt and claim.png into stage, whose manifest.json is complete,
 * then renames stage to out. With xml, manifest.json becomes manifest.xml first (the same
 * entries in the XML form).
 */
int reel_finish(const char *stage, const char *out, const struct vendor_pki *pki, const char *batch,
    const char *part, size_t count, const char *created, const char *claim_text, bool xml,
    struct devid_error *e);

#endif
