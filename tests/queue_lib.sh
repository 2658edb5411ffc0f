# queue_lib.sh - the spool's ordeal, shared by test_queue_sqlite.sh and
# test_queue_pg.sh (sourced after rcatd_lib.sh): requests queued against a
# real rcatd, carried out by several `rcat queue run' processes that are
# killed (SIGKILL) at random points and started again while rcatd is
# stopped and started; then every request must have ended DONE exactly
# once, its file byte-identical, its history a possible one, and each hook
# run exactly once (hooks append a line to a file; the lines are counted).
# Nothing asserts on time: every wait has a generous bound.

# The programs themselves rather than libtool's wrapper scripts (a shell
# start each): hundreds of queue commands stay quick.
if [ -x "$bin/.libs/rcat" ]; then
    qrcat="$bin/.libs/rcat"
    export LD_LIBRARY_PATH="${top_builddir:-.}/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    qrcat="$rcat"
fi

# The hook: one line per run, "EVENT ID STATUS ATTEMPT".
make_hook() {
    cat >"$tmp/hook" <<HOOK
#!/bin/sh
echo "\$1 \$2 \$3 \$RCAT_QUEUE_ATTEMPT" >>"$tmp/hooks.log"
HOOK
    chmod 755 "$tmp/hook"
}

# queue_requests N QUEUE PORT: N requests, stores (odd) and fetches (even)
# of files from 1 byte to 300 KB.
queue_requests() {
    local n=$1 spec=$2 p=$3 i size id
    mkdir -p "$tmp/src" "$tmp/dst" "$tmp/root/out" "$tmp/root/in"
    : >"$tmp/ids"
    for i in $(seq 1 "$n"); do
        size=$(((RANDOM * 32768 + RANDOM) % 300000 + 1))
        if [ $((i % 2)) -eq 1 ]; then
            head -c "$size" /dev/urandom >"$tmp/src/f$i"
            id=$("$qrcat" queue put --queue "$spec" "$tmp/src/f$i" "127.0.0.1:in/f$i" -P "$p" \
                --timeout 2s --retries 1000 --retry-interval 0.3s --rate 20M \
                --on-success "$tmp/hook success" --on-retry "$tmp/hook retry" \
                --on-failure "$tmp/hook failure") || fatal "queue put $i failed"
        else
            head -c "$size" /dev/urandom >"$tmp/root/out/g$i"
            id=$("$qrcat" queue get --queue "$spec" "127.0.0.1:out/g$i" -o "$tmp/dst/g$i" \
                -P "$p" --timeout 2s --retries 1000 --retry-interval 0.3s --rate 20M \
                --priority $((i % 100)) --on-success "$tmp/hook success" \
                --on-retry "$tmp/hook retry" --on-failure "$tmp/hook failure") ||
                fatal "queue get $i failed"
        fi
        echo "$i $id" >>"$tmp/ids"
    done
}

start_runner() {
    spawn "runner$1" "$qrcat" queue run --queue "$2" -j 4 --lease 3s --poll 0.2s \
        --hook-timeout 20s 2>>"$tmp/runner$1.err"
}

# done_count QUEUE: how many requests are DONE.
done_count() {
    "$qrcat" queue list --queue "$1" --status DONE --json | grep -c '"Type":"REQUEST"'
}

# server_chaos PORT: rcatd (srv) stopped four times and started again on
# PORT after 1 s; how many times in $tmp/server_stops.
server_chaos() {
    local p=$1 k
    for k in 1 2 3 4; do
        sleep "$((RANDOM % 4 + 3))"
        if [ $((k % 2)) -eq 1 ]; then signal KILL srv; else signal TERM srv; fi
        await srv 20 || { echo "FAIL: rcatd did not stop"; return; }
        sleep 1
        start_server srv "$rcatd" --listen "127.0.0.1:$p" --root "$tmp/root" --writable \
            --drain-time 0
        [ "$port" = "$p" ] || { echo "FAIL: rcatd came back on port $port, not $p"; return; }
        echo "$k" >"$tmp/server_stops"
    done
}

# ordeal QUEUE RUNNERS N: the whole story; counts kills in $kills.
ordeal() {
    local spec=$1 runners=$2 n=$3 r start done_now victim p
    make_hook
    mkdir -p "$tmp/root"
    start_server srv "$rcatd" --listen 127.0.0.1:0 --root "$tmp/root" --writable --drain-time 0
    p=$port
    start=$SECONDS
    queue_requests "$n" "$spec" "$p"
    note "$n requests queued in $((SECONDS - start)) s"
    for r in $(seq 1 "$runners"); do start_runner "$r" "$spec"; done
    # rcatd away for 1 s, four times, 3 to 6 s apart, by SIGKILL and
    # SIGTERM in turn (in the background: its restarts take their time).
    server_chaos "$p" &
    local chaos=$!
    # Runners: one SIGKILLed every 0.2 to 0.7 s and started again at once,
    # until 15 were killed (or 40 s passed, or all is DONE).
    kills=0
    start=$SECONDS
    local round=0
    while [ "$kills" -lt 15 ] && [ $((SECONDS - start)) -lt 40 ]; do
        round=$((round + 1))
        [ $((round % 5)) -eq 0 ] && [ "$(done_count "$spec")" -ge "$n" ] && break
        sleep "0.$((RANDOM % 6 + 2))"
        victim=$((RANDOM % runners + 1))
        if running "runner$victim"; then
            signal KILL "runner$victim"
            await "runner$victim" 10
            kills=$((kills + 1))
        fi
        start_runner "$victim" "$spec"
    done
    wait "$chaos"
    server_stops=$(cat "$tmp/server_stops" 2>/dev/null || echo 0)
    [ "$server_stops" -eq 4 ] || fail "rcatd was stopped $server_stops times, not 4"
    note "chaos: $kills runners killed, rcatd stopped $server_stops times, $(done_count "$spec") of $n DONE after $((SECONDS - start)) s"
    # Then the runners finish in peace (claims of the killed expire in 3 s).
    start=$SECONDS
    local all=$SECONDS
    while [ "$(done_count "$spec")" -lt "$n" ] && [ $((SECONDS - start)) -lt 120 ]; do sleep 0.5; done
    start=$SECONDS
    while [ "$(grep -c '^success ' "$tmp/hooks.log" 2>/dev/null)" -lt "$n" ] &&
        [ $((SECONDS - start)) -lt 60 ]; do sleep 0.5; done
    for r in $(seq 1 "$runners"); do
        signal TERM "runner$r"
        await "runner$r" 30 || fail "runner $r did not stop on SIGTERM"
        [ "$(status "runner$r")" = 0 ] || fail "runner $r stopped with status $(status "runner$r")"
    done
    stop_server srv
    note "all DONE and hooks run $((SECONDS - all)) s after the chaos"
    start=$SECONDS
    verify "$spec" "$n"
    note "verified in $((SECONDS - start)) s"
}

# sums DIR: "NAME SUM" of every file in DIR, sorted.
sums() { (cd "$1" && md5sum -- * | awk '{ print $2, $1 }' | sort); }

# verify QUEUE N: statuses, histories, files and hooks.
verify() {
    local spec=$1 n=$2
    [ "$(done_count "$spec")" -eq "$n" ] || {
        "$qrcat" queue list --queue "$spec" | grep -v ' DONE ' | head -10
        fail "$(done_count "$spec") of $n requests DONE"
    }
    [ "$(sums "$tmp/src")" = "$(sums "$tmp/root/in")" ] || fail "stored files differ from their source"
    [ "$(sums "$tmp/root/out")" = "$(sums "$tmp/dst")" ] || fail "fetched files differ from their source"
    [ "$(ls "$tmp/src" "$tmp/root/out" | grep -c '^[fg]')" -eq "$n" ] || fail "not $n source files"
    # Every request's history, from one status command; the hooks' lines.
    "$qrcat" queue status --queue "$spec" --json $(cut -d' ' -f2 "$tmp/ids") >"$tmp/st" ||
        fail "queue status of all the requests"
    sed -n 's/.*"Type":"HISTORY","Id":\([0-9]*\),"Status":"\([A-Z]*\)".*/\1 \2/p' "$tmp/st" >"$tmp/hist"
    # A possible history: INIT WAIT, then attempts (COPY, ended by RETR or
    # WAIT, or taken over by another runner's COPY), the last COPY then
    # DONE, once. Hooks: success once, retry once per RETR, failure never.
    awk -v n="$n" '
        FILENAME == ARGV[1] { seq[$1] = seq[$1] $2 " "; next }
        FILENAME == ARGV[2] { hook[$2 " " $1]++; next }
        {
            id = $2; s = seq[id]
            if (s !~ /^INIT WAIT (COPY (RETR |WAIT )?)*DONE $/) { print "FAIL: request " id ": history " s; bad++ }
            r = gsub(/RETR/, "&", s); c = gsub(/COPY/, "&", s)
            retries += r; resumed += c - 1 - r
            if (hook[id " success"] != 1) { print "FAIL: request " id ": success hook ran " hook[id " success"] + 0 " times"; bad++ }
            if (hook[id " retry"] != r) { print "FAIL: request " id ": retry hook ran " hook[id " retry"] + 0 " times for " r " retries"; bad++ }
            if (hook[id " failure"]) { print "FAIL: request " id ": failure hook ran"; bad++ }
            runs += hook[id " success"] + hook[id " retry"]
            checked++
        }
        END {
            if (checked != n) { print "FAIL: " checked " of " n " requests checked"; bad++ }
            printf "  %d DONE once each, files identical; %d retries (each with its hook once), %d attempts taken over after a runner died; %d hook runs\n", checked, retries, resumed, runs
            exit bad > 0
        }' "$tmp/hist" "$tmp/hooks.log" "$tmp/ids" || fail "histories or hooks (above)"
    [ "$kills" -gt 0 ] || fail "no runner was killed: the test proved nothing"
}
