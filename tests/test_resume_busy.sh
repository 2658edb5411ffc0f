#!/bin/bash
# test_resume_busy.sh - a store resumed (rcat --put -C) while the server
# still runs the killed previous attempt of the same target: the server's
# end of that attempt holds the partial file until it finds the client gone,
# so the resume cannot use it yet. rcat must say so in words (the target is
# busy with another transfer, try again later: RPC2_EBUSY, exit 3), never
# "file exists"; and --retries must treat it as retryable, so that a resume
# with retries finishes, byte-identical, once the old attempt has ended
# (a RETR event names RPC2_EBUSY); and rcat queue retries it too.
# Real rcatd and rcat on loopback; the server on port 0, every wait bounded.
set -u
umask 022
export TZ=UTC LC_ALL=C

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_resume_busy.XXXXXX") || exit 1
. "${srcdir:-.}/tests/rcatd_lib.sh"

size=$((32 << 20))
root="$tmp/root"
cli="$tmp/cli"
mkdir -p "$root" "$cli"
head -c "$size" /dev/urandom >"$cli/src" || fatal "cannot write the test file"
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }

start_server busy "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable --restart-interval 1
url="rcat://127.0.0.1:$port"

# a store slowed to about 8 s, killed (-9) once a quarter is written
spawn put "$rcat" -C --rate 32M -q --put "$cli/src" "$url/up"
start=$SECONDS
while running put && [ "$(fsize "$root/.up.rcat-part")" -lt $((size / 4)) ] &&
    [ $((SECONDS - start)) -lt 60 ]; do
    sleep 0.02
done
running put || fatal "the first store ended before it could be killed: $(status put)"
signal KILL put
await put 10

# at once: the server's end of the killed store still holds the partial
if grep -q ' STORE ' "$tmp/busy.log"; then
    note "the server found the killed client gone at once: the busy case was not run"
else
    if run 3 "resume while the old store runs" "$rcat" -C --put "$cli/src" "$url/up"; then
        said "resume while the old store runs" "busy on server"
        said "resume while the old store runs" "try again later"
        grep -q "exists" "$tmp/err" && fail "resume while the old store runs: says 'exists': $(cat "$tmp/err")"
    fi
    if run 3 "resume while the old store runs (--json)" "$rcat" -C --json --put "$cli/src" "$url/up"; then
        grep -q '"Type":"ERROR".*"Error":"RPC2_EBUSY"' "$tmp/err" ||
            fail "--json resume while busy: no ERROR RPC2_EBUSY: $(grep ERROR "$tmp/err")"
        grep -q '"Type":"STOP".*"Result":"RPC2_EBUSY"' "$tmp/err" ||
            fail "--json resume while busy: STOP Result is not RPC2_EBUSY: $(grep STOP "$tmp/err")"
    fi
    # the spool: a request refused this way is retried (RETR), not ended
    # (STOP); its runner reads the library's error from rcat's ERROR event
    export XDG_STATE_HOME="$tmp/state"
    if run 0 "queue a store while the old one runs" "$rcat" queue put "$cli/src" "$url/up" \
        --retries 5 --retry-interval 1h; then
        qid=$(cat "$tmp/out")
        run 0 "queue run --once while busy" "$rcat" queue run --once --poll 0.2s
        "$rcat" queue status --json "$qid" >"$tmp/qstatus" 2>&1
        grep -q '"Type":"REQUEST".*"Status":"RETR"' "$tmp/qstatus" ||
            fail "a queued store refused as busy is not RETR: $(grep REQUEST "$tmp/qstatus")"
        grep -q '"Error":"up: busy on server: ' "$tmp/qstatus" ||
            fail "the queued store's error is not rcat's words: $(grep REQUEST "$tmp/qstatus")"
        "$rcat" queue cancel "$qid" >/dev/null 2>&1
    fi
    [ -e "$root/up" ] && fail "a refused resume left the name"
fi

# with retries: tried again until the old store has ended, then resumed
timeout 240 "$rcat" -C --json --retries 12 --retry-interval 1s --max-time 200s \
    --put "$cli/src" "$url/up" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 0 ]; then
    same "$cli/src" "$root/up" "resume with --retries"
    if grep -q ' STORE ' "$tmp/busy.log" && grep -q '"Type":"RETR"' "$tmp/err"; then
        grep -q '"Type":"RETR".*"Error":"RPC2_EBUSY"' "$tmp/err" ||
            fail "resume with --retries: RETR does not name RPC2_EBUSY: $(grep RETR "$tmp/err")"
    fi
    start=$(grep '"Type":"STOP"' "$tmp/err" | tail -1 | grep -o '"StartByte":[0-9]*' | cut -d: -f2)
    [ "${start:-0}" -gt 0 ] || note "resume with --retries started over (StartByte ${start:-?})"
else
    sed 's/^/    /' "$tmp/err" | tail -8
    fail "resume with --retries: exit $rc, want 0"
fi
[ -z "$(ls -A "$root" | grep -v -x up)" ] || fail "left on the server: $(ls -A "$root")"

stop_server busy
finish resume_busy
