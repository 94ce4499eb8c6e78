/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error.h - devid's one error convention. The definitions are public (libdevid-agent's
 * callers need them), so they live in include/devid/error.h; this header is how src/ names
 * them.
 */
#ifndef DEVID_LIB_ERROR_H
#define DEVID_LIB_ERROR_H

#include "devid/error.h"

#endif
