/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <sqlite3.h>

#include "db_sqlite_vfs.h"
#include "lib/banned.h"

/* A file: ours, then the default VFS's own (szOsFile bytes) right after it. */
struct wb_file {
	sqlite3_file base; /* pMethods: wb_methods */
	sqlite3_file *real;
	bool gather; /* the database, its WAL or a statement journal: writes are gathered */
	unsigned char *buf; /* GATHER_BYTES, from the first write on */
	int len; /* bytes waiting in buf */
	sqlite3_int64 off; /* where they go */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs gather_vfs;

#define REAL(file) (((struct wb_file *)(file))->real)
#define RM(file) (REAL(file)->pMethods)

/* Writes what waits in the buffer. */
static int
flush(struct wb_file *f)
{
	int rc;

	if (f->len == 0)
		return SQLITE_OK;
	rc = f->real->pMethods->xWrite(f->real, f->buf, f->len, f->off);
	f->len = 0;
	return rc;
}

static int
wb_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 ofst)
{
	struct wb_file *f = (struct wb_file *)file;
	int rc;

	if (!f->gather)
		return RM(file)->xWrite(f->real, data, amt, ofst);
	if (f->len > 0 && f->off + f->len == ofst && amt <= GATHER_BYTES - f->len) {
		memcpy(f->buf + f->len, data, (size_t)amt);
		f->len += amt;
		return SQLITE_OK;
	}
	if ((rc = flush(f)) != SQLITE_OK)
		return rc;
	if (amt >= GATHER_BYTES ||
	    (f->buf == NULL && (f->buf = sqlite3_malloc(GATHER_BYTES)) == NULL))
		return RM(file)->xWrite(f->real, data, amt, ofst);
	memcpy(f->buf, data, (size_t)amt);
	f->off = ofst;
	f->len = amt;
	return SQLITE_OK;
}

static int
wb_close(sqlite3_file *file)
{
	struct wb_file *f = (struct wb_file *)file;
	int rc = flush(f), crc = RM(file)->xClose(f->real);

	sqlite3_free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : crc;
}

/* The methods that read or change the file as a whole write the buffer out first. */
static int
wb_read(sqlite3_file *file, void *data, int amt, sqlite3_int64 ofst)
{
	int rc = flush((struct wb_file *)file);

	return rc != SQLITE_OK ? rc : RM(file)->xRead(REAL(file), data, amt, ofst);
}

static int
wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	int rc = flush((struct wb_file *)file);

	return rc != SQLITE_OK ? rc : RM(file)->xTruncate(REAL(file), size);
}

static int
wb_sync(sqlite3_file *file, int flags)
{
	int rc = flush((struct wb_file *)file);

	return rc != SQLITE_OK ? rc : RM(file)->xSync(REAL(file), flags);
}

static int
wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	int rc = flush((struct wb_file *)file);

	return rc != SQLITE_OK ? rc : RM(file)->xFileSize(REAL(file), size);
}

static int
wb_lock(sqlite3_file *file, int lock)
{
	int rc = flush((struct wb_file *)file);

	return rc != SQLITE_OK ? rc : RM(file)->xLock(REAL(file), lock);
}

static int
wb_unlock(sqlite3_file *file, int lock)
{
	int rc = flush((struct wb_file *)file);

	return rc != SQLITE_OK ? rc : RM(file)->xUnlock(REAL(file), lock);
}

static int
wb_file_control(sqlite3_file *file, int op, void *arg)
{
	int rc = flush((struct wb_file *)file);

	return rc != SQLITE_OK ? rc : RM(file)->xFileControl(REAL(file), op, arg);
}

static int
wb_fetch(sqlite3_file *file, sqlite3_int64 ofst, int amt, void **out)
{
	int rc = flush((struct wb_file *)file);

	return rc != SQLITE_OK ? rc : RM(file)->xFetch(REAL(file), ofst, amt, out);
}

/* The rest as the default VFS does them. */
static int
wb_check_reserved_lock(sqlite3_file *file, int *out)
{
	return RM(file)->xCheckReservedLock(REAL(file), out);
}

static int
wb_sector_size(sqlite3_file *file)
{
	return RM(file)->xSectorSize(REAL(file));
}

static int
wb_device_characteristics(sqlite3_file *file)
{
	return RM(file)->xDeviceCharacteristics(REAL(file));
}

static int
wb_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
	return RM(file)->xShmMap(REAL(file), region, size, extend, out);
}

static int
wb_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	return RM(file)->xShmLock(REAL(file), offset, n, flags);
}

static void
wb_shm_barrier(sqlite3_file *file)
{
	RM(file)->xShmBarrier(REAL(file));
}

static int
wb_shm_unmap(sqlite3_file *file, int delete_flag)
{
	return RM(file)->xShmUnmap(REAL(file), delete_flag);
}

static int
wb_unfetch(sqlite3_file *file, sqlite3_int64 ofst, void *p)
{
	return RM(file)->xUnfetch(REAL(file), ofst, p);
}

static const sqlite3_io_methods wb_methods = {
    .iVersion = 3,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_file_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_check_reserved_lock,
    .xFileControl = wb_file_control,
    .xSectorSize = wb_sector_size,
    .xDeviceCharacteristics = wb_device_characteristics,
    .xShmMap = wb_shm_map,
    .xShmLock = wb_shm_lock,
    .xShmBarrier = wb_shm_barrier,
    .xShmUnmap = wb_shm_unmap,
    .xFetch = wb_fetch,
    .xUnfetch = wb_unfetch,
};

static int
wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
	struct wb_file *f = (struct wb_file *)file;
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	f->gather = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_SUBJOURNAL)) != 0;
	rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	/* SQLite closes a file whose pMethods is set, even when its open failed */
	f->base.pMethods = f->real->pMethods != NULL ? &wb_methods : NULL;
	return rc;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered = SQLITE_ERROR;

static void
do_register(void)
{
	/* the default VFS (unix) implements io methods version 3, which wb_methods forwards */
	if ((real_vfs = sqlite3_vfs_find(NULL)) == NULL || real_vfs->iVersion < 2)
		return;
	gather_vfs = *real_vfs;
	gather_vfs.pNext = NULL;
	gather_vfs.zName = GATHER_VFS;
	gather_vfs.szOsFile = (int)sizeof(struct wb_file) + real_vfs->szOsFile;
	gather_vfs.xOpen = wb_open;
	registered = sqlite3_vfs_register(&gather_vfs, 0);
}

int
db_sqlite_vfs_register(void)
{
	pthread_once(&once, do_register);
	return registered;
}
