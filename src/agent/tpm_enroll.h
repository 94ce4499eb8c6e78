/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tpm_enroll.h - `devid-agent tpm-enroll`: a TPM 2.0 device gets its operational certificate
 * (LDevID) by credential activation (docs/tpm.md, "The protocol"), its TPM driven through
 * tpm2-tss's ESAPI (libtss2-esys), the server reached through the agent's EST client.
 *
 * In the TPM, with the hierarchies' authorizations empty (as TPMs ship):
 *   - the EK certificate is read from NV (AGENT_TPM_EK_CERT_NV_RSA or _ECC) and the EK
 *     created from the matching TCG default template (L-1 RSA 2048, L-2 ECC P-256); its
 *     public area must be the one the certificate's key gives (tpm2_ek_public);
 *   - the signing key, ECC P-256, sign|fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth,
 *     scheme none, is made under the owner's storage root key (the TCG ECC P-256 SRK
 *     template, recreated as a transient primary): an LDevID belongs to the owner hierarchy
 *     and is cleared with it, and a later user of the key needs no policy session;
 *   - the AK, ECC P-256 ECDSA-SHA256, restricted|sign|fixedTPM|fixedParent|
 *     sensitiveDataOrigin|userWithAuth, is made under the EK (a PolicySecret(endorsement)
 *     session each time the EK authorizes), used for the activation only and flushed;
 *   - TPM2_Certify of the signing key by the AK; a CSR (subject CN=<udid>) whose
 *     CertificationRequestInfo the signing key signs with TPM2_Sign, assembled by OpenSSL
 *     with ecdsa-with-SHA256 without parameters (RFC 5758 3.2) and verified before use.
 * Then tpm/activate, TPM2_ActivateCredential(AK, EK), the signing key made persistent at
 * key_handle, tpm/enroll. The key is persistent before tpm/enroll so that nothing is issued
 * for a key the TPM could not keep; if tpm/enroll fails the handle is emptied again.
 */
#ifndef DEVID_AGENT_TPM_ENROLL_H
#define DEVID_AGENT_TPM_ENROLL_H

#include <stdint.h>

#include "devid/agent.h"
#include "lib/x509.h"

/* the NV indices of the EK certificates (TCG EK Credential Profile 2.2.1.5) */
#define AGENT_TPM_EK_CERT_NV_RSA 0x01c00002u
#define AGENT_TPM_EK_CERT_NV_ECC 0x01c0000au
/* persistent handles of the owner hierarchy (TPM 2.0 Part 2, 7.2; EvictControl with owner) */
#define AGENT_TPM_OWNER_PERSISTENT_FIRST 0x81000000u
#define AGENT_TPM_OWNER_PERSISTENT_LAST 0x817fffffu

enum agent_tpm_ek {
	AGENT_TPM_EK_RSA, /* RSA 2048, template L-1, certificate at 0x01c00002 */
	AGENT_TPM_EK_ECC, /* ECC P-256, template L-2, certificate at 0x01c0000a */
};

struct agent_tpm_enroll_opts {
	/* url, ca_file, label, timeout_ms; reenroll is ignored. With a label the CA comes from
	 * [label/]cacerts and the certificate must chain to it; without, r->ca stays NULL */
	struct devid_est_opts est;
	/* tpm2-tss TCTI configuration ("swtpm:host=127.0.0.1,port=2321", "device:/dev/tpmrm0");
	 * NULL: tpm2-tss's default (tabrmd, then /dev/tpmrm0, then /dev/tpm0, ...) */
	const char *tcti;
	enum agent_tpm_ek ek;
	/* where the signing key is kept: AGENT_TPM_OWNER_PERSISTENT_FIRST.._LAST, empty now */
	uint32_t key_handle;
};

/*
 * Enrolls the TPM as the header comment says. udid receives the device's UDID (SHA-256 of
 * the EK certificate's SubjectPublicKeyInfo) once the certificate is read ("" before).
 * Returns 0 when issued: r->cert is the LDevID (for the signing key, now at key_handle),
 * r->ca its CA when a label was given. Otherwise r->outcome and r->error say what failed:
 * DEVID_EST_ERROR when nothing was sent (the TPM cannot be reached, has no EK certificate
 * there, the handle is taken, a TPM command failed: the command and tpm2-tss's decoding of
 * its response code are named), DEVID_EST_REFUSED when the server refused (its reason),
 * the other outcomes as devid_est_enroll's; a TPM command that fails after something was
 * sent is DEVID_EST_FAILED. r must have been initialized; release it after.
 */
int agent_tpm_enroll(
    const struct agent_tpm_enroll_opts *o, struct devid_est_result *r, char udid[UDID_HEX_LEN + 1]);

#endif
