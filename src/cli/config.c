/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "lib/banned.h"

/* the sections devid.conf may hold: the commands that read it */
static const char *const config_sections[] = {"serve", "gateway", NULL};

struct reader {
	const char *section, *path;
	const struct option *opts;
	const struct config_env *env;
	char **args; /* "--key=value", in file order */
	int n, cap;
	FILE *f;
	int line; /* of the line inih read last */
	struct devid_error *e;
};

static const struct option *
find_option(const struct option *opts, const char *name)
{
	for (; opts->name != NULL; opts++)
		if (strcmp(opts->name, name) == 0 && strcmp(name, "config") != 0 &&
		    strcmp(name, "help") != 0)
			return opts;
	return NULL;
}

static bool
env_overrides(const struct config_env *env, const char *name)
{
	for (; env != NULL && env->option != NULL; env++)
		if (strcmp(env->option, name) == 0) {
			const char *v = getenv(env->variable);

			return v != NULL && *v != '\0';
		}
	return false;
}

static int
add_arg(struct reader *r, char *arg)
{
	char **grown;

	if (arg == NULL)
		return -1;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		if ((grown = realloc(r->args, (size_t)r->cap * sizeof(*grown))) == NULL) {
			free(arg);
			return -1;
		}
		r->args = grown;
	}
	r->args[r->n++] = arg;
	return 0;
}

/*
 * inih's reader: one line a call, counted, so that errors name it (Debian's inih passes no
 * line number to the handler). A line longer than inih's buffer is refused, not split.
 */
static char *
read_line(char *str, int num, void *stream)
{
	struct reader *r = stream;
	size_t len;

	if (r->e->code != 0 || fgets(str, num, r->f) == NULL)
		return NULL;
	r->line++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(r->f)) {
		devid_error_set(
		    r->e, DEVID_EINVAL, "%s:%d: longer than %d bytes", r->path, r->line, num - 2);
		return NULL;
	}
	return str;
}

/* inih's handler: 1 to go on, 0 for an error (set in r->e) */
static int
on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct reader *r = user;
	int line = r->line;
	const struct option *o;
	bool known = false;
	size_t len;
	char *arg;

	if (r->e->code != 0)
		return 0;
	for (size_t i = 0; config_sections[i] != NULL; i++)
		known = known || strcmp(section, config_sections[i]) == 0;
	if (*section == '\0') {
		devid_error_set(r->e, DEVID_EINVAL,
		    "%s:%d: %s is outside a section: put it under [serve] or [gateway]", r->path,
		    line, name);
		return 0;
	}
	if (!known) {
		devid_error_set(r->e, DEVID_EINVAL,
		    "%s:%d: unknown section [%s]: devid.conf has [serve] and [gateway]", r->path,
		    line, section);
		return 0;
	}
	if (strcmp(section, r->section) != 0 || env_overrides(r->env, name))
		return 1;
	if ((o = find_option(r->opts, name)) == NULL) {
		devid_error_set(r->e, DEVID_EINVAL,
		    "%s:%d: %s is not an option of devid %s (see devid %s --help)", r->path, line,
		    name, r->section, r->section);
		return 0;
	}
	/* --check-config and the like act once; a file that set them would act on every start */
	if (o->has_arg == no_argument) {
		devid_error_set(r->e, DEVID_EINVAL, "%s:%d: %s is for the command line only",
		    r->path, line, name);
		return 0;
	}
	if (*value == '\0') {
		devid_error_set(r->e, DEVID_EINVAL, "%s:%d: %s has no value", r->path, line, name);
		return 0;
	}
	len = strlen(name) + strlen(value) + 4;
	if ((arg = malloc(len)) != NULL)
		snprintf(arg, len, "--%s=%s", name, value);
	if (add_arg(r, arg) != 0) {
		devid_error_set(r->e, DEVID_ENOMEM, "%s: out of memory", r->path);
		return 0;
	}
	return 1;
}

/* The file: --config's, $DEVID_CONFIG, or the default if it exists; *required for the first two. */
static const char *
config_path(int argc, char **argv, bool *required)
{
	const char *v;

	*required = true;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
		if (strcmp(argv[i], "--config") == 0)
			return i + 1 < argc ? argv[i + 1] : NULL;
	}
	if ((v = getenv("DEVID_CONFIG")) != NULL && *v != '\0')
		return v;
	*required = false;
	return CONFIG_DEFAULT_PATH;
}

int
config_args(const char *section, const struct option *opts, const struct config_env *env, int argc,
    char **argv, struct config_args *out, struct devid_error *e)
{
	struct reader r = {.section = section, .opts = opts, .env = env, .e = e};
	bool required;
	int line;

	memset(out, 0, sizeof(*out));
	devid_error_clear(e);
	r.path = config_path(argc, argv, &required);
	if (r.path == NULL)
		return devid_error_set(e, DEVID_EINVAL, "--config needs a file");
	if (!required && access(r.path, F_OK) != 0)
		r.path = NULL;
	else if ((r.f = fopen(r.path, "r")) == NULL) {
		devid_error_set(e, DEVID_EINVAL, "%s: %s", r.path, strerror(errno));
		goto fail;
	} else {
		line = ini_parse_stream(read_line, &r, on_entry, &r);
		fclose(r.f);
		if (line != 0 && e->code == 0)
			devid_error_set(e, DEVID_EINVAL, "%s:%d: neither key = value nor [section]",
			    r.path, line);
		if (e->code != 0)
			goto fail;
	}
	if ((out->argv = calloc((size_t)(argc + r.n + 1), sizeof(*out->argv))) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "configuration: out of memory");
		goto fail;
	}
	out->argv[0] = argv[0];
	for (int i = 0; i < r.n; i++)
		out->argv[1 + i] = r.args[i];
	for (int i = 1; i < argc; i++)
		out->argv[r.n + i] = argv[i];
	out->argc = argc + r.n;
	out->nfile = r.n;
	out->path = r.path;
	free(r.args);
	return 0;
fail:
	for (int i = 0; i < r.n; i++)
		free(r.args[i]);
	free(r.args);
	return e->code;
}

void
config_args_free(struct config_args *a)
{
	/* the file's arguments sit between argv[0] and the command's own */
	for (int i = 1; a->argv != NULL && i <= a->nfile; i++)
		free(a->argv[i]);
	free(a->argv);
	memset(a, 0, sizeof(*a));
}
