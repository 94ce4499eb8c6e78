/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_sqlite_vfs.h - an SQLite VFS over the default one (unix) that gathers small writes that
 * follow one another into large ones.
 *
 * Why: SQLite writes a WAL frame as two pwrite calls (its 24-byte header, then the page), a
 * checkpoint copies the frames into the database a page a call, and a statement journal
 * saves each page that an INSERT of a transaction touches again, again in two calls. A
 * 20,000-chip publish made 142,000 pwrite calls so; on this kind of virtual machine a system
 * call costs microseconds, and with the writes gathered (10,000 calls) devid serve spends
 * about a tenth less CPU on the publish.
 *
 * How: the writes to the database, its WAL and statement journals that continue the previous
 * one wait in a buffer of GATHER_BYTES, written in one call when the next write does not fit
 * or does not follow, and before anything else is done with that file: a read, a sync, a
 * truncation, its size, a lock or unlock, a file control, a memory map, its close.
 *
 * Why that is safe: another connection or process reads only what SQLite has synced first.
 * A commit syncs the WAL before it is made visible (synchronous=FULL, which db_sqlite.c
 * sets); a checkpoint syncs the database before it records how far it copied; a statement
 * journal is its connection's own. A crash loses only writes that no sync covered, which
 * SQLite never counted on. Every other file, and every other method, is the default VFS's.
 */
#ifndef DEVID_DB_SQLITE_VFS_H
#define DEVID_DB_SQLITE_VFS_H

#define GATHER_VFS "devid-gather"
/* under 128 KiB: the unix VFS cuts the length of one write to 17 bits */
#define GATHER_BYTES (64 * 1024)

/* Registers the VFS GATHER_VFS (not as the default), once; SQLITE_OK or an SQLITE_* code. */
int db_sqlite_vfs_register(void);

#endif
