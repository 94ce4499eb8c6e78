/* SPDX-License-Identifier: Apache-2.0 */
/*
 * embed [-p PREFIX] OUT.c FILE... - writes files as a C table of struct console_file
 * (src/http/console.h), PREFIX_files[] and PREFIX_nfiles (PREFIX "console" by default: the
 * console's built files; "openapi": docs/openapi.json), so that devid serves them from its
 * own binary. Each file is named by its base name and tagged with a 64-bit FNV-1a hash of its
 * bytes, the ETag devid answers with. A build tool: runs on the build machine only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".txt", "text/plain; charset=utf-8"},
	    {".json", "application/json"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

static int
embed_one(FILE *out, const char *file, int index, uint64_t *hash, size_t *len)
{
	FILE *in = fopen(file, "rb");
	int c;

	if (in == NULL) {
		perror(file);
		return -1;
	}
	*hash = 14695981039346656037ULL;
	*len = 0;
	fprintf(out, "static const unsigned char file%d[] = {", index);
	while ((c = getc(in)) != EOF) {
		*hash = (*hash ^ (uint64_t)c) * 1099511628211ULL;
		fprintf(out, "%s%d,", *len % 24 == 0 ? "\n" : "", c);
		(*len)++;
	}
	fprintf(out, "0};\n");
	fclose(in);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *prefix = "console";
	FILE *out;
	uint64_t *hash;
	size_t *len;

	if (argc > 2 && strcmp(argv[1], "-p") == 0) {
		prefix = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: embed [-p PREFIX] OUT.c FILE...\n");
		return 2;
	}
	if ((out = fopen(argv[1], "w")) == NULL) {
		perror(argv[1]);
		return 1;
	}
	hash = calloc((size_t)argc, sizeof(*hash));
	len = calloc((size_t)argc, sizeof(*len));
	if (hash == NULL || len == NULL)
		return 1;
	fprintf(out, "/* written by web/embed/embed.c at build time: do not edit */\n");
	fprintf(out, "#include \"http/console.h\"\n\n");
	for (int i = 2; i < argc; i++) {
		const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];

		if (content_type(base) == NULL) {
			fprintf(stderr, "embed: %s: no content type for this file name\n", argv[i]);
			return 1;
		}
		if (embed_one(out, argv[i], i, &hash[i], &len[i]) != 0)
			return 1;
	}
	fprintf(out, "\nconst struct console_file %s_files[] = {\n", prefix);
	for (int i = 2; i < argc; i++) {
		const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];

		fprintf(out, "    {\"%s\", \"%s\", file%d, %zu, \"\\\"%016llx\\\"\"},\n", base,
		    content_type(base), i, len[i], (unsigned long long)hash[i]);
	}
	fprintf(out, "};\nconst size_t %s_nfiles = %d;\n", prefix, argc - 2);
	free(hash);
	free(len);
	return fclose(out) == 0 ? 0 : 1;
}
