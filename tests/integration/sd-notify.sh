#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sd-notify: devid serve and devid gateway run as systemd Type=notify services: each tells a
# notification socket READY=1 once its ports accept connections and STOPPING=1 when SIGTERM or
# SIGINT stops it (sd_notify.py stands in for systemd). Without NOTIFY_SOCKET every other
# integration test runs them, so that case is covered there.
#
# Usage: sh sd-notify.sh DEVID
set -u
me=sd-notify
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

devid=${1:-}
need_devid "$devid"
need_tool /usr/bin/python3 python3
need_tool openssl openssl
make_tmp

/usr/bin/python3 "$here/sd_notify.py" "$tmp" TERM \
	"$devid" serve --db "sqlite:$tmp/devid.db" --listen 127.0.0.1:0 --workers 1 ||
	fail "devid serve"
rm -f "$tmp/notify.sock"

# the gateway's device port needs a certificate, and --trust a CA: one self-signed CA does both
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$tmp/gw.key" -out "$tmp/gw.pem" 2>"$tmp/err" || fail_run "openssl req"
printf 'a-secret-of-sixteen-bytes-or-more\n' >"$tmp/secret"
chmod 600 "$tmp/secret"
/usr/bin/python3 "$here/sd_notify.py" "$tmp" INT \
	"$devid" gateway --tls-cert "$tmp/gw.pem" --tls-key "$tmp/gw.key" --trust "$tmp/gw.pem" \
	--secret-file "$tmp/secret" --db "$tmp/gw.db" --listen 127.0.0.1:0 \
	--admin-listen 127.0.0.1:0 || fail "devid gateway"
