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
    spawn "runner$1" "$qrcat" queue run --queue "$2" -j 4 --lease 2s --poll 0.2s \
        --hook-timeout 20s 2>>"$tmp/runner$1.err"
}

# done_count QUEUE: how many requests are DONE.
done_count() {
    "$qrcat" queue list --queue "$1" --status DONE --json | grep -c '"Type":"REQUEST"'
}

# ordeal QUEUE RUNNERS N: the whole story; counts kills in $kills.
ordeal() {
    local spec=$1 runners=$2 n=$3 r start done_now victim p
    make_hook
    mkdir -p "$tmp/root"
    start_server srv "$rcatd" --listen 127.0.0.1:0 --root "$tmp/root" --writable --drain-time 0
    p=$port
    queue_requests "$n" "$spec" "$p"
    note "$n requests queued"
    for r in $(seq 1 "$runners"); do start_runner "$r" "$spec"; done
    kills=0
    server_stops=0
    start=$SECONDS
    # Chaos for as long as requests are left, at most 60 s: a runner killed
    # every 0.2 to 0.8 s and started again; rcatd away for 1 s every 4 s.
    while [ $((SECONDS - start)) -lt 60 ]; do
        done_now=$(done_count "$spec")
        [ "$done_now" -ge "$n" ] && break
        sleep "0.$((RANDOM % 6 + 2))"
        victim=$((RANDOM % runners + 1))
        if running "runner$victim"; then
            signal KILL "runner$victim"
            await "runner$victim" 10
            kills=$((kills + 1))
        fi
        start_runner "$victim" "$spec"
        if [ $((SECONDS - start)) -ge $((4 * (server_stops + 1))) ] && [ "$server_stops" -lt 4 ]; then
            if [ $((server_stops % 2)) -eq 0 ]; then signal KILL srv; else signal TERM srv; fi
            await srv 20 || fail "rcatd did not stop"
            sleep 1
            start_server srv "$rcatd" --listen "127.0.0.1:$p" --root "$tmp/root" --writable \
                --drain-time 0
            [ "$port" = "$p" ] || fatal "rcatd came back on port $port, not $p"
            server_stops=$((server_stops + 1))
        fi
    done
    note "chaos: $kills runners killed, rcatd stopped $server_stops times, $(done_count "$spec") of $n DONE after $((SECONDS - start)) s"
    # Then the runners finish in peace (claims of the killed expire in 2 s).
    start=$SECONDS
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
    verify "$spec" "$n"
}

# verify QUEUE N: statuses, histories, files and hooks.
verify() {
    local spec=$1 n=$2 i id f dones retrs copies resumed=0 bad_files=0 retries=0 seq
    [ "$(done_count "$spec")" -eq "$n" ] || {
        "$qrcat" queue list --queue "$spec" | grep -v ' DONE ' | head -10
        fail "$(done_count "$spec") of $n requests DONE"
    }
    while read -r i id; do
        if [ $((i % 2)) -eq 1 ]; then
            cmp -s "$tmp/src/f$i" "$tmp/root/in/f$i" || bad_files=$((bad_files + 1))
        else
            cmp -s "$tmp/root/out/g$i" "$tmp/dst/g$i" || bad_files=$((bad_files + 1))
        fi
        "$qrcat" queue status --queue "$spec" --json "$id" >"$tmp/st" || fail "status $id"
        seq=$(sed -n 's/.*"Type":"HISTORY".*"Status":"\([A-Z]*\)".*/\1/p' "$tmp/st" | tr '\n' ' ')
        dones=$(grep -o ' DONE' <<<" $seq" | wc -l)
        retrs=$(grep -o ' RETR' <<<" $seq" | wc -l)
        copies=$(grep -o ' COPY' <<<" $seq" | wc -l)
        [ "$dones" -eq 1 ] || fail "request $id: DONE $dones times ($seq)"
        # INIT WAIT, then attempts (COPY, ended by RETR or WAIT, or taken
        # over by another COPY), the last COPY then DONE.
        grep -qE '^INIT WAIT (COPY (RETR |WAIT )?)*DONE $' <<<"$seq" ||
            fail "request $id: history '$seq' is not a possible one"
        resumed=$((resumed + copies - 1 - retrs))
        retries=$((retries + retrs))
        [ "$(grep -c "^success $id DONE " "$tmp/hooks.log")" -eq 1 ] ||
            fail "request $id: success hook ran $(grep -c "^success $id DONE " "$tmp/hooks.log") times"
        [ "$(grep -c "^retry $id RETR " "$tmp/hooks.log")" -eq "$retrs" ] ||
            fail "request $id: retry hook ran $(grep -c "^retry $id RETR " "$tmp/hooks.log") times for $retrs retries"
    done <"$tmp/ids"
    [ "$bad_files" -eq 0 ] || fail "$bad_files files differ from their source"
    ! grep -q '^failure ' "$tmp/hooks.log" || fail "a failure hook ran: $(grep '^failure ' "$tmp/hooks.log" | head -3)"
    [ "$kills" -gt 0 ] || fail "no runner was killed: the test proved nothing"
    note "$n DONE once each, files identical; $retries retries (each with its hook once), $resumed attempts taken over or resumed after a runner died; $(wc -l <"$tmp/hooks.log") hook runs"
}
