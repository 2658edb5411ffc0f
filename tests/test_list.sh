#!/bin/bash
# test_list.sh - LIST pages in O(page) (issue 10): a directory of 200,000
# entries paged to its end with `rcat --ls` (1,563 pages of 128) is read
# from disk about once, not once per page. rcatd counts the entries it read
# (list_names_read on its counters line); the check is on that count, never
# on time. Before, each page read and sorted the whole directory: 200,000
# x 1,563 entries.
set -u
export LC_ALL=C
bin="${top_builddir:-.}/rcat"
rcat="$bin/rcat"
rcatd="$bin/rcatd"
[ -x "$rcat" ] && [ -x "$rcatd" ] || { echo "FAIL: $rcat or $rcatd not built"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 makes the directories"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_list.XXXXXX") || exit 1
pid=""
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    wait
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

mkdir "$tmp/root"
python3 - "$tmp/root" <<'PY'
import os, sys
for n in (20000, 200000):
    d = os.path.join(sys.argv[1], "d%d" % n)
    os.mkdir(d)
    for i in range(n):
        os.close(os.open(os.path.join(d, "f%07d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
PY

"$rcatd" --listen 127.0.0.1:0 --root "$tmp/root" --log "$tmp/log" >"$tmp/out" 2>"$tmp/err" &
pid=$!
port=""
for _ in $(seq 1 200); do
    port=$(sed -n 's/^rcatd listening on \([0-9][0-9]*\)$/\1/p' "$tmp/out")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { cat "$tmp/err"; echo "FAIL: rcatd did not start"; exit 1; }

# names_read: the server's list_names_read now.
names_read() {
    local before
    before=$(grep -c "stats (SIGUSR1)" "$tmp/log")
    kill -USR1 "$pid"
    for _ in $(seq 1 200); do
        [ "$(grep -c "stats (SIGUSR1)" "$tmp/log")" -gt "$before" ] && break
        sleep 0.05
    done
    grep "stats (SIGUSR1)" "$tmp/log" | tail -n 1 | sed -n 's/.* list_names_read=\([0-9]*\).*/\1/p'
}

for n in 20000 200000; do
    before=$(names_read)
    t0=$SECONDS
    if ! timeout 300 "$rcat" --ls "rcat://127.0.0.1:$port/d$n" >"$tmp/ls" 2>"$tmp/ls.err"; then
        fail "--ls of $n entries failed: $(cat "$tmp/ls.err")"
        continue
    fi
    lines=$(wc -l <"$tmp/ls")
    [ "$lines" -eq "$n" ] || fail "--ls of $n entries listed $lines"
    [ "$(awk '{print $NF}' "$tmp/ls" | sort -c 2>&1)" = "" ] || fail "--ls of $n entries is not sorted"
    read_now=$(( $(names_read) - before ))
    pages=$(( (n + 127) / 128 ))
    echo "  $n entries in $pages pages: $read_now entries read ($((read_now / n)) x the directory)"
    # once, and again each time the listing ages out (every 10 s) on a slow
    # machine; paging by rereading would read it once per page ($pages x)
    ages=$(((SECONDS - t0) / 10 + 2))
    [ "$read_now" -le $((ages * n)) ] ||
        fail "paging $n entries read $read_now in $((SECONDS - t0)) s: not O(page)"
done

kill -TERM "$pid"
wait "$pid"
pid=""
[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
