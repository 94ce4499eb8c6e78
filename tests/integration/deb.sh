#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# deb: `make deb`'s packages install on a fresh Debian 12 and work. Builds devid and
# devid-agent with scripts/build-deb, installs them with dpkg -i (apt-get -f install brings
# their dependencies) into a throwaway root unpacked from the Debian 12 minbase tarball that
# ../shared/tools/fresh-check keeps, or on this machine when there is none; checks the files,
# the devid system user and /var/lib/devid; runs devid.service's ExecStart, with
# /etc/devid/devid.conf, as the unit's user against SQLite in /var/lib/devid, and asks it
# /healthz; then purges both packages and checks that nothing of them is left but the user
# (Debian's policy keeps system users).
#
# Usage: sh deb.sh SOURCE-ROOT        (needs root: it installs; skipped otherwise)
set -u
me=deb
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

repo=${1:-}
[ -f "$repo/debian/control" ] || fail "usage: deb.sh SOURCE-ROOT (with debian/)"
[ "$(id -u)" -eq 0 ] || skip "installs packages: run as root"
need_tool dpkg-buildpackage dpkg-dev
need_tool dh debhelper
need_tool curl curl
base=/var/tmp/devid-fresh-base.tar

root=""
tmp=$(mktemp -d "${TMPDIR:-/tmp}/devid-$me.XXXXXX") || fail "mktemp -d failed"
pid=""
purge_host=false # set once this test has installed the packages on this machine
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	if [ -n "$root" ]; then
		umount "$root/dev" "$root/proc" 2>/dev/null
		rm -rf --one-file-system "$tmp"
	else
		$purge_host && dpkg --purge devid devid-agent >/dev/null 2>&1
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# the service reads the packaged /etc/devid/devid.conf, as systemd would run it (the test
# setup points every other test's DEVID_CONFIG at /dev/null)
unset DEVID_CONFIG

# inroot CMD...: CMD in the throwaway root, or on this machine
inroot() {
	if [ -n "$root" ]; then
		chroot "$root" "$@"
	else
		"$@"
	fi
}

# inroot_exec CMD...: the same in place of the (sub)shell, so that `inroot_exec CMD &` makes $!
# the pid of CMD itself
inroot_exec() {
	if [ -n "$root" ]; then
		exec chroot "$root" "$@"
	fi
	exec "$@"
}

t0=$(date +%s)
sh "$repo/scripts/build-deb" "$tmp/deb" >"$tmp/build.log" 2>&1 || {
	tail -30 "$tmp/build.log" >&2
	fail "scripts/build-deb failed"
}
t1=$(date +%s)
note "built the packages in $((t1 - t0)) s"

if [ -s "$base" ]; then
	root=$tmp/root
	mkdir "$root"
	tar -C "$root" -xf "$base" || fail "cannot unpack $base"
	chmod 755 "$root"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	mount -t proc proc "$root/proc" && mount --bind /dev "$root/dev" || fail "cannot mount proc and dev"
	where="a fresh Debian 12 root"
else
	for p in devid devid-agent; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed' &&
			skip "$p is installed on this machine already; this test would remove it"
	done
	where="this machine (no $base for a fresh root)"
	purge_host=true
fi
mkdir -p "$root/tmp/debs"
cp "$tmp"/deb/devid_*.deb "$tmp"/deb/devid-agent_*.deb "$root/tmp/debs/" || fail "no .deb files built"

# dpkg -i leaves them unconfigured where dependencies are missing: apt-get -f brings them
inroot sh -c 'dpkg -i /tmp/debs/*.deb' >"$tmp/install.log" 2>&1
if inroot dpkg-query -W -f='${Status}\n' devid devid-agent | grep -qv '^install ok installed$'; then
	inroot env DEBIAN_FRONTEND=noninteractive sh -c \
		'apt-get update -qq && apt-get -f install -y -qq --no-install-recommends' \
		>>"$tmp/install.log" 2>&1 || { tail -30 "$tmp/install.log" >&2; fail "apt-get -f install failed"; }
fi
st=$(inroot dpkg-query -W -f='${Status}\n' devid devid-agent)
[ "$st" = "install ok installed
install ok installed" ] || { tail -30 "$tmp/install.log" >&2; fail "not installed: $st"; }
t2=$(date +%s)
note "installed into $where in $((t2 - t1)) s"

# the files, the user and the state directory
for f in /usr/bin/devid /usr/bin/devid-agent /etc/devid/devid.conf \
	/lib/systemd/system/devid.service /lib/systemd/system/devid-gateway.service \
	/usr/share/man/man1/devid.1.gz /usr/share/man/man1/devid-agent.1.gz \
	/usr/share/man/man8/devid-serve.8.gz /usr/share/man/man8/devid-admin.8.gz \
	/usr/share/man/man8/devid-gateway.8.gz /usr/share/man/man5/devid.conf.5.gz; do
	[ -e "$root$f" ] || fail "$f is not installed"
done
inroot /usr/bin/devid --version | grep -q '^devid ' || fail "the installed devid does not run"
inroot /usr/bin/devid-agent --help >/dev/null || fail "the installed devid-agent does not run"
user=$(sed -n 's/^User=//p' "$root/lib/systemd/system/devid.service")
[ "$user" = devid ] || fail "devid.service runs as \"$user\", not devid"
pw=$(inroot getent passwd devid) || fail "no devid user"
uid=$(echo "$pw" | cut -d: -f3)
[ "$uid" -lt 1000 ] || fail "devid is not a system user: uid $uid"
case $pw in *:/var/lib/devid:/usr/sbin/nologin) ;; *) fail "devid user: $pw" ;; esac
[ "$(file_mode "$root/var/lib/devid")" = drwx------ ] ||
	fail "/var/lib/devid is $(file_mode "$root/var/lib/devid"), not drwx------"
[ "$(inroot stat -c %U:%G /var/lib/devid)" = devid:devid ] || fail "/var/lib/devid is not devid's"

# the service's command lines, as systemd would run them: ExecStartPre (the configuration
# check), then ExecStart, reading /etc/devid/devid.conf, as the devid user, umask 0077. An
# operator's change to the file: a free port, since 8443 may be taken on this machine.
sed -i 's|^listen = .*|listen = 127.0.0.1:0|' "$root/etc/devid/devid.conf"
pre=$(sed -n 's/^ExecStartPre=//p' "$root/lib/systemd/system/devid.service")
[ "$pre" = "/usr/bin/devid serve --check-config" ] || fail "unexpected ExecStartPre: $pre"
inroot setpriv --reuid=devid --regid=devid --init-groups sh -c "umask 0077; exec $pre" >"$tmp/check.out" 2>&1 ||
	{ cat "$tmp/check.out" >&2; fail "the packaged configuration does not pass --check-config"; }
grep -q '^devid serve: configuration OK$' "$tmp/check.out" || fail "--check-config: $(cat "$tmp/check.out")"
[ ! -e "$root/var/lib/devid/devid.db" ] || fail "--check-config created the database"
cmd=$(sed -n 's/^ExecStart=//p' "$root/lib/systemd/system/devid.service")
[ "$cmd" = "/usr/bin/devid serve" ] || fail "unexpected ExecStart: $cmd"
inroot_exec setpriv --reuid=devid --regid=devid --init-groups sh -c \
	"umask 0077; exec $cmd" >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
port=""
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do
	port=$(sed -n 's|^devid serve: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$tmp/serve.out")
	kill -0 "$pid" 2>/dev/null || break
	[ -n "$port" ] || sleep 0.1
	i=$((i + 1))
done
[ -n "$port" ] || { cat "$tmp/serve.err" >&2; fail "devid serve did not start as the service runs it"; }
body=$(curl -sS --max-time 10 "http://127.0.0.1:$port/healthz") || fail "/healthz did not answer"
[ "$body" = '{"status":"ok"}' ] || fail "/healthz answered: $body"
for f in devid.db interop.pem; do
	[ "$(file_mode "$root/var/lib/devid/$f")" = -rw------- ] ||
		fail "/var/lib/devid/$f is $(file_mode "$root/var/lib/devid/$f"), not -rw-------"
	[ "$(inroot stat -c %U "/var/lib/devid/$f")" = devid ] || fail "/var/lib/devid/$f is not devid's"
done
inroot setpriv --reuid=devid --regid=devid --init-groups env DEVID_DB=sqlite:/var/lib/devid/devid.db \
	/usr/bin/devid admin tenant list >/dev/null 2>"$tmp/admin.err" ||
	fail "devid admin as devid on the service's database: $(cat "$tmp/admin.err")"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=""
[ "$rc" -eq 0 ] || fail "devid serve exited $rc on SIGTERM"
note "devid serve ran as devid from /etc/devid/devid.conf on port $port: /healthz ok"

# purge: nothing left but the user
inroot dpkg -L devid devid-agent >"$tmp/files"
inroot dpkg --purge devid devid-agent >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log" >&2; fail "dpkg --purge failed"; }
inroot dpkg-query -W devid devid-agent >/dev/null 2>&1 && fail "dpkg still knows the packages after purge"
left=""
while read -r f; do
	[ -d "$root$f" ] && continue # directories other packages share
	[ -e "$root$f" ] && left="$left $f"
done <"$tmp/files"
for f in /var/lib/devid /etc/devid /etc/systemd/system/multi-user.target.wants/devid.service \
	/var/lib/systemd/deb-systemd-helper-enabled/devid.service.dsh-also; do
	[ -e "$root$f" ] && left="$left $f"
done
[ -z "$left" ] || fail "left after purge:$left"
inroot getent passwd devid >/dev/null && note "after purge the devid user stays (Debian policy)"
t3=$(date +%s)
note "built $((t1 - t0)) s, installed $((t2 - t1)) s, ran and purged $((t3 - t2)) s in $where"
