/* SPDX-License-Identifier: Apache-2.0 */
/*
 * banned.h - functions devid must not use, turned into compile errors.
 *
 * Included last by every devid source file (through the build's -include flag).
 * Use snprintf, dynbuf, strtol with checks, gmtime_r/localtime_r instead.
 */
#ifndef DEVID_BANNED_H
#define DEVID_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gmtime
#define gmtime(t) BANNED(gmtime)
#undef localtime
#define localtime(t) BANNED(localtime)
#undef atoi
#define atoi(s) BANNED(atoi)
#undef atol
#define atol(s) BANNED(atol)
#undef gets
#define gets(s) BANNED(gets)

#endif
