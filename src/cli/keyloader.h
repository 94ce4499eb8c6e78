/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyloader.h - the CA key loader `devid serve` and `devid admin ca init` hand the service:
 * file:PATH keys (development: a PEM file, mode 0600) and pkcs11: keys (RFC 7512; the key
 * is made and used inside the token). Opening goes through libdevid-agent's key backends,
 * so a device key and a CA key are found the same way.
 */
#ifndef DEVID_CLI_KEYLOADER_H
#define DEVID_CLI_KEYLOADER_H

#include "service/service.h"

extern const struct key_loader devid_key_loader;

#endif
