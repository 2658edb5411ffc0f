#!/bin/bash
# test_queue_pg.sh - rcat queue shared through a real PostgreSQL server that
# the test starts itself (initdb and pg_ctl from /usr/lib/postgresql/*/bin,
# a fresh cluster in the test's directory, reached only by a unix socket in
# that directory, so the port only names the socket and cannot clash with
# another server's), then stops and removes, also on failure. PostgreSQL
# refuses to run as root: as root (CI) its programs run as nobody.
#
# queue_lib.sh's ordeal: 200 requests, 3 runners claiming with FOR UPDATE
# SKIP LOCKED, SIGKILLed at random and started again while rcatd stops and
# starts; every request DONE exactly once, byte-identical, its history a
# possible one, each hook run once. Skipped (77) only when the server
# programs are not installed (scripts/install-deps.sh installs them).
set -u
umask 022
export TZ=UTC LC_ALL=C

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ] || [ ! -x "$pgbin/pg_ctl" ]; then
    echo "SKIP: no PostgreSQL server programs in /usr/lib/postgresql/*/bin" \
        "(apt-get install postgresql, or sh scripts/install-deps.sh)"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_queue_pg.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"
. "${top_srcdir:-.}/tests/queue_lib.sh"

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env "$@"
    else
        "$@"
    fi
}
pg="$tmp/pg"
pgport=5432
pg_stop() {
    [ -e "$pg/data/postmaster.pid" ] &&
        as_postgres "$pgbin/pg_ctl" -D "$pg/data" -m immediate -w stop >/dev/null 2>&1
    cleanup
}
trap pg_stop EXIT

chmod 755 "$tmp"
mkdir -p "$pg"
[ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$pg"
as_postgres "$pgbin/initdb" -D "$pg/data" -U rcat --auth=trust -E UTF8 --no-sync \
    >"$pg/initdb.log" 2>&1 || { cat "$pg/initdb.log"; fatal "initdb failed"; }
as_postgres "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 60 \
    -o "-k $pg -p $pgport -c listen_addresses= -c fsync=off -c max_connections=200" \
    start >/dev/null || { cat "$pg/server.log"; fatal "the PostgreSQL server did not start"; }
spec="postgresql:///postgres?host=$pg&port=$pgport&user=rcat"

# A first command makes the schema; a wrong address is a clear error.
run 4 "unreachable database" "$qrcat" queue list --queue "postgresql:///postgres?host=$tmp/none&port=1&user=rcat" &&
    said "unreachable" "cannot open the queue: postgresql:"
run 0 "list, empty" "$qrcat" queue list --queue "$spec"

ordeal "$spec" 3 "${QUEUE_TEST_REQUESTS:-200}"
finish test_queue_pg
