/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <qrencode.h>

#include "factory/factory.h"
#include "lib/banned.h"

#define LABEL_SCALE 8 /* pixels per module */
#define LABEL_QUIET 4 /* modules of quiet zone (ISO/IEC 18004) */

/* libpng reports errors by longjmp: nothing here changes after setjmp. */
static int
png_write_qr(png_structp png, png_infop info, FILE *f, const QRcode *qr, png_bytep row, int size)
{
	if (setjmp(png_jmpbuf(png)))
		return -1;
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)size, (png_uint_32)size, 8, PNG_COLOR_TYPE_GRAY,
	    PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < size; y++) {
		int my = y / LABEL_SCALE - LABEL_QUIET;

		for (int x = 0; x < size; x++) {
			int mx = x / LABEL_SCALE - LABEL_QUIET;
			bool dark = mx >= 0 && my >= 0 && mx < qr->width && my < qr->width &&
			    (qr->data[my * qr->width + mx] & 1);

			row[x] = dark ? 0 : 255;
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	return 0;
}

int
label_write_png(const char *text, const char *path, struct devid_error *e)
{
	QRcode *qr;
	FILE *f = NULL;
	png_structp png = NULL;
	png_infop info = NULL;
	png_bytep row = NULL;
	int size, rc = DEVID_EIO;

	/* the claim alphabet is QR alphanumeric: libqrencode picks that mode by itself */
	if ((qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1)) == NULL)
		return devid_error_set(e, DEVID_EINVAL, "label: cannot encode \"%s\" as QR", text);
	size = (qr->width + 2 * LABEL_QUIET) * LABEL_SCALE;
	if ((row = malloc((size_t)size)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "label: out of memory");
		goto out;
	}
	if ((f = fopen(path, "wb")) == NULL) {
		devid_error_set(e, rc, "%s: %s", path, strerror(errno));
		goto out;
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	if (png == NULL || (info = png_create_info_struct(png)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "label: out of memory");
		goto out;
	}
	if (png_write_qr(png, info, f, qr, row, size) != 0) {
		devid_error_set(e, rc, "%s: cannot write PNG", path);
		goto out;
	}
	rc = 0;
out:
	png_destroy_write_struct(&png, &info);
	if (f != NULL && fclose(f) != 0 && rc == 0)
		rc = devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	free(row);
	QRcode_free(qr);
	return rc;
}
