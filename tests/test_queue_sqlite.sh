#!/bin/bash
# test_queue_sqlite.sh - rcat queue with its default database, one SQLite
# file shared by several runner processes: the commands (put, get, status,
# list, cancel, bad input refused), delays, priorities, lifetimes and the
# failure hook; then queue_lib.sh's ordeal (runners SIGKILLed at random,
# rcatd stopped and started) on a smaller scale than the PostgreSQL test.
set -u
umask 022
export TZ=UTC LC_ALL=C

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_queue_sqlite.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"
. "${top_srcdir:-.}/tests/queue_lib.sh"

export XDG_STATE_HOME="$tmp/state"
db="$tmp/state/rcat/queue.db"
q() { "$qrcat" queue "$@"; }

# ---- the commands, without a runner -----------------------------------------
echo data >"$tmp/a"
run 0 "put" "$qrcat" queue put "$tmp/a" 127.0.0.1:in/a -P 9 && id1=$(cat "$tmp/out")
[ -f "$db" ] || fail "no database at \$XDG_STATE_HOME/rcat/queue.db"
[ "$id1" = 1 ] || fail "the first id is '$id1', not 1"
run 0 "status" "$qrcat" queue status "$id1" && grep -q '^status    WAIT$' "$tmp/out" || fail "status of a new request is not WAIT"
run 1 "put with --json" "$qrcat" queue put "$tmp/a" 127.0.0.1:x --json && said "refused" "cannot take it"
run 1 "put with --append" "$qrcat" queue put "$tmp/a" 127.0.0.1:x --append && said "refused" "cannot take it"
run 1 "get with --rm" "$qrcat" queue get 127.0.0.1:x -o "$tmp/x" --rm && said "refused" "cannot take it"
run 1 "put of standard input" "$qrcat" queue put - 127.0.0.1:x && said "stdin" "standard input"
run 1 "get without -o" "$qrcat" queue get 127.0.0.1:x && said "get" "needs -o FILE"
run 1 "bad transfer option" "$qrcat" queue get 127.0.0.1:x -o "$tmp/x" --rate fast && said "rate" "--rate"
run 1 "bad priority" "$qrcat" queue put "$tmp/a" 127.0.0.1:x --priority 100 && said "priority" "0 (first) to 99"
run 1 "-C with --offset (rcat's own check)" "$qrcat" queue get 127.0.0.1:x -o "$tmp/x" --offset 1 --length 5 \
    --resume-strict && said "rcat's check" "--resume-strict"
run 1 "unclosed quote in a hook" "$qrcat" queue put "$tmp/a" 127.0.0.1:x --on-success "echo 'x" &&
    said "hook" "unclosed quote"
run 4 "missing local file" "$qrcat" queue put "$tmp/nope" 127.0.0.1:x && said "missing" "No such file"
run 3 "status of nothing" "$qrcat" queue status 999
run 0 "cancel" "$qrcat" queue cancel "$id1"
run 0 "status after cancel" "$qrcat" queue status --json "$id1" &&
    grep -q '"Status":"STOP".*"Error":"cancelled"' "$tmp/out" || fail "cancel did not STOP it"
run 3 "cancel twice" "$qrcat" queue cancel "$id1"
run 0 "list" "$qrcat" queue list && [ "$(grep -c ' STOP ' "$tmp/out")" -eq 1 ] || fail "list does not show it"

# ---- a runner: order, delay, lifetime, failure hook -------------------------
make_hook
mkdir -p "$tmp/root0"
start_server srv0 "$rcatd" --listen 127.0.0.1:0 --root "$tmp/root0" --writable
p=$port
echo late >"$tmp/late"
echo first >"$tmp/first"
queued_at=$SECONDS
run 0 "delayed" "$qrcat" queue put "$tmp/late" 127.0.0.1:late -P "$p" --delay 5s && late=$(cat "$tmp/out")
run 0 "low priority" "$qrcat" queue put "$tmp/a" 127.0.0.1:low -P "$p" --priority 90 && low=$(cat "$tmp/out")
run 0 "high priority" "$qrcat" queue put "$tmp/first" 127.0.0.1:first -P "$p" --priority 0 &&
    high=$(cat "$tmp/out")
run 0 "refused by the server" "$qrcat" queue get 127.0.0.1:no/such -o "$tmp/nosuch" -P "$p" \
    --on-failure "$tmp/hook failure" && refused=$(cat "$tmp/out")
run 0 "never reachable, short life" "$qrcat" queue put "$tmp/a" 127.0.0.1:x -P 9 --timeout 1s \
    --retry-interval 0.5s --lifetime 3s --on-retry "$tmp/hook retry" \
    --on-failure "$tmp/hook failure" && short=$(cat "$tmp/out")
run 0 "runner --once, one at a time" "$qrcat" queue run --once -j 1 --poll 0.2s
ok_status() { q status --json "$1" | grep -q "\"Type\":\"REQUEST\".*\"Status\":\"$2\""; }
ok_status "$high" DONE && ok_status "$low" DONE || fail "due requests not DONE after --once"
# (Asserted only when less than the delay has surely passed: a slow machine
# may take longer to get here.)
if [ $((SECONDS - queued_at)) -lt 4 ]; then
    ok_status "$late" WAIT || fail "the delayed request ran before its time"
fi
h_at=$(q status --json "$high" | sed -n 's/.*"Type":"HISTORY".*"Status":"COPY","At":"\([^"]*\)".*/\1/p')
l_at=$(q status --json "$low" | sed -n 's/.*"Type":"HISTORY".*"Status":"COPY","At":"\([^"]*\)".*/\1/p')
[[ "$h_at" < "$l_at" ]] || fail "priority 0 ($h_at) did not start before priority 90 ($l_at)"
ok_status "$refused" STOP || fail "a refusal (exit 3) is not STOP at once"
q status --json "$refused" | grep -q '"Attempts":1,' || fail "a refusal was retried"
q status --json "$refused" | grep -q '"Error":"no/such: not found on server"' ||
    fail "a refusal's error is not rcat's words: $(q status --json "$refused" | grep REQUEST)"
for _ in $(seq 1 60); do
    ok_status "$late" DONE && break
    "$qrcat" queue run --once --poll 0.2s
    sleep 0.5
done
ok_status "$late" DONE || fail "the delayed request is not DONE once due"
cmp -s "$tmp/late" "$tmp/root0/late" || fail "the delayed file differs"
# The unreachable one: retried until its lifetime ended, then STOP.
for _ in $(seq 1 20); do
    ok_status "$short" STOP && break
    q run --once --poll 0.2s 2>/dev/null
    sleep 0.5
done
ok_status "$short" STOP || fail "a request past its lifetime is not STOP"
q status --json "$short" | grep -q '"Error":"lifetime ended"' || fail "no 'lifetime ended'"
q run --once --poll 0.2s 2>/dev/null # the failure hooks
[ "$(grep -c "^failure $refused STOP" "$tmp/hooks.log")" = 1 ] || fail "refused: failure hook count"
[ "$(grep -c "^failure $short STOP" "$tmp/hooks.log")" = 1 ] || fail "expired: failure hook count"
[ "$(grep -c "^retry $short RETR" "$tmp/hooks.log")" -ge 1 ] || fail "expired: no retry hook"
stop_server srv0
rm -f "$tmp/hooks.log"

# ---- the ordeal, smaller: 60 requests, 3 runners on one file ----------------
ordeal "$tmp/ordeal.db" 3 "${QUEUE_TEST_REQUESTS:-60}"
finish test_queue_sqlite
