/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db_impl.h"
#include "lib/dynbuf.h"
#include "lib/banned.h"

#define PG_BYTEA_OID 17
#define PG_MAX_SQL 65536

/* Rewrites '?' placeholders (outside string literals) to $1..$n. */
static int
pg_rewrite(const char *sql, struct dynbuf *out)
{
	int n = 0, rc = 0;
	bool quoted = false;

	for (const char *p = sql; *p != '\0' && rc == 0; p++) {
		if (*p == '\'')
			quoted = !quoted;
		if (*p == '?' && !quoted)
			rc = dynbuf_addf(out, "$%d", ++n);
		else
			rc = dynbuf_add(out, p, 1);
	}
	return rc;
}

static int
pg_err(PGconn *h, PGresult *res, const char *what, struct devid_error *e)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(h);
	int code = DEVID_EIO;
	size_t n;

	/* 23505 unique_violation, 23503 foreign_key_violation, 40001 serialization_failure */
	if (state != NULL &&
	    (strcmp(state, "23505") == 0 || strcmp(state, "23503") == 0 ||
		strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
		code = DEVID_ECONFLICT;
	devid_error_set(e, code, "postgres: %s: %s", what, msg ? msg : "unknown error");
	if (e != NULL && (n = strlen(e->msg)) > 0 && e->msg[n - 1] == '\n')
		e->msg[n - 1] = '\0';
	return code;
}

static PGresult *
pg_run(struct db *db, const char *sql, const struct db_param *params, size_t n,
    struct devid_error *e, int *rc)
{
	struct dynbuf q;
	const char **values = NULL;
	int *lengths = NULL, *formats = NULL;
	char(*ints)[24] = NULL;
	char **texts = NULL;
	PGresult *res = NULL;

	dynbuf_init(&q, PG_MAX_SQL);
	*rc = DEVID_ENOMEM;
	if (pg_rewrite(sql, &q) != 0)
		goto out;
	if (n > 0 &&
	    ((values = calloc(n, sizeof(*values))) == NULL ||
		(lengths = calloc(n, sizeof(*lengths))) == NULL ||
		(formats = calloc(n, sizeof(*formats))) == NULL ||
		(ints = calloc(n, sizeof(*ints))) == NULL ||
		(texts = calloc(n, sizeof(*texts))) == NULL))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct db_param *p = &params[i];

		switch (p->type) {
		case DB_TNULL:
			break;
		case DB_TINT:
			snprintf(ints[i], sizeof(ints[i]), "%lld", (long long)p->i);
			values[i] = ints[i];
			break;
		case DB_TTEXT:
			/* text parameters go NUL-terminated */
			if ((texts[i] = malloc(p->n + 1)) == NULL)
				goto out;
			memcpy(texts[i], p->p, p->n);
			texts[i][p->n] = '\0';
			values[i] = texts[i];
			break;
		case DB_TBLOB:
			values[i] = p->n ? p->p : "";
			lengths[i] = (int)p->n;
			formats[i] = 1;
			break;
		}
	}
	res = PQexecParams(db->conn, dynbuf_str(&q), (int)n, NULL, values, lengths, formats, 0);
	if (res == NULL ||
	    (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)) {
		*rc = pg_err(db->conn, res, "query", e);
		PQclear(res);
		res = NULL;
		goto out;
	}
	*rc = 0;
out:
	if (*rc == DEVID_ENOMEM)
		devid_error_set(e, DEVID_ENOMEM, "postgres: out of memory");
	for (size_t i = 0; texts != NULL && i < n; i++)
		free(texts[i]);
	free(texts);
	free(ints);
	free(formats);
	free(lengths);
	free(values);
	dynbuf_release(&q);
	return res;
}

static int
pg_exec(struct db *db, const char *sql, const struct db_param *params, size_t n, int64_t *changes,
    struct devid_error *e)
{
	int rc;
	PGresult *res = pg_run(db, sql, params, n, e, &rc);

	if (res != NULL && changes != NULL)
		*changes = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return rc;
}

static int
pg_query(struct db *db, const char *sql, const struct db_param *params, size_t n,
    struct db_rows **out, struct devid_error *e)
{
	struct db_rows *r;
	size_t nrows, ncols, len;
	unsigned char *bin;
	int rc;
	PGresult *res = pg_run(db, sql, params, n, e, &rc);

	*out = NULL;
	if (res == NULL)
		return rc;
	nrows = (size_t)PQntuples(res);
	ncols = (size_t)PQnfields(res);
	if ((r = db_rows_new(nrows, ncols)) == NULL)
		goto oom;
	for (size_t i = 0; i < nrows; i++) {
		for (size_t c = 0; c < ncols; c++) {
			struct db_cell *cl = &r->cells[i * ncols + c];
			const char *v;

			if (PQgetisnull(res, (int)i, (int)c))
				continue;
			v = PQgetvalue(res, (int)i, (int)c);
			if (PQftype(res, (int)c) == PG_BYTEA_OID) {
				bin = PQunescapeBytea((const unsigned char *)v, &len);
				if (bin == NULL || db_cell_set(cl, bin, len) != 0) {
					PQfreemem(bin);
					goto oom;
				}
				PQfreemem(bin);
			} else if (db_cell_set(cl, v, (size_t)PQgetlength(res, (int)i, (int)c)) !=
			    0) {
				goto oom;
			}
			if (strcmp(v, "t") == 0 || strcmp(v, "f") == 0)
				cl->i = v[0] == 't';
			else
				cl->i = strtoll((const char *)cl->p, NULL, 10);
		}
	}
	PQclear(res);
	*out = r;
	return 0;
oom:
	PQclear(res);
	db_rows_free(r);
	return devid_error_set(e, DEVID_ENOMEM, "postgres: out of memory");
}

static void
pg_close(struct db *db)
{
	PQfinish(db->conn);
}

static const struct db_driver pg_driver = {
    .exec = pg_exec,
    .query = pg_query,
    .close = pg_close,
};

static void
pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* NOTICEs (e.g. "relation already exists") are not errors */
}

int
db_pg_open(const char *conninfo, struct db *db, struct devid_error *e)
{
	PGconn *h = PQconnectdb(conninfo);

	if (h == NULL || PQstatus(h) != CONNECTION_OK) {
		devid_error_set(e, DEVID_EIO, "postgres: cannot connect: %s",
		    h ? PQerrorMessage(h) : "out of memory");
		PQfinish(h);
		return DEVID_EIO;
	}
	PQsetNoticeProcessor(h, pg_notice, NULL);
	db->kind = DB_POSTGRES;
	db->drv = &pg_driver;
	db->conn = h;
	return 0;
}
