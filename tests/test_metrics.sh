#!/bin/sh
# test_metrics.sh - `rcatd --metrics` as an operator's Prometheus sees it:
# a real rcatd with --metrics on a free port of 127.0.0.1, scraped over HTTP
# while a STORE from a pipe is held half-way (the producer waits for the
# test, so nothing depends on timing) and again after it, a FETCH and a
# refused STAT. Each page must pass a strict check of the text exposition
# format (below) and `promtool check metrics` when promtool is installed
# (sh scripts/install-deps.sh --metrics); the byte counters must equal what
# moved, the running gauge show the held transfer, the calls their outcome.
# Also: no --metrics, no HTTP listener; a port alone binds 127.0.0.1 only.
set -u
b="${top_builddir:-.}"
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
size=1048576 # each half of the stored stream

fail() {
    echo "FAIL: $*"
    [ -f "$tmp/rcatd.err" ] && tail -n 20 "$tmp/rcatd.err"
    exit 1
}

command -v curl >/dev/null || {
    echo "SKIP: curl not installed (sh scripts/install-deps.sh)"
    exit 77
}

# The exposition format, strictly: HELP and TYPE once per family, before its
# samples, which are contiguous; names and label names well formed; label
# values quoted with only \\ \" \n escapes; values numbers; counters end in
# _total; histogram buckets cumulative, ending in le="+Inf" equal to _count.
check_format() {
    awk '
    function bad(why) { printf "line %d: %s: %s\n", NR, why, $0; err = 1; exit 1 }
    /^# HELP / { if (split($0, f, " ") < 4) bad("HELP without text"); help[f[3]] = 1; next }
    /^# TYPE / {
        n = split($0, f, " ")
        if (n != 4 || f[4] !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("bad TYPE")
        if (f[3] in type) bad("family typed twice")
        if (!(f[3] in help)) bad("TYPE before HELP")
        if (f[4] == "counter" && f[3] !~ /_total$/) bad("counter without _total")
        type[f[3]] = f[4]; fam = f[3]; cum = -1; next
    }
    /^#/ { bad("unknown comment") }
    /^$/ { bad("empty line") }
    {
        if (!match($0, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) bad("bad metric name")
        name = substr($0, 1, RLENGTH); rest = substr($0, RLENGTH + 1)
        base = name
        if (type[fam] == "histogram") sub(/_(bucket|sum|count)$/, "", base)
        if (base != fam) bad("sample outside its family " fam)
        le = ""
        if (rest ~ /^\{/) {
            rest = substr(rest, 2)
            while (rest !~ /^\}/) {
                if (!match(rest, /^[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"/)) bad("bad label")
                pair = substr(rest, 1, RLENGTH); rest = substr(rest, RLENGTH + 1)
                if (pair ~ /^le="/) le = substr(pair, 5, length(pair) - 5)
                if (rest ~ /^,/) rest = substr(rest, 2)
                else if (rest !~ /^\}/) bad("labels not separated")
            }
            rest = substr(rest, 2)
        }
        if (rest !~ /^ (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN)$/) bad("bad value")
        v = substr(rest, 2) + 0
        if (name ~ /_bucket$/) {
            if (le == "") bad("bucket without le")
            if (v < cum) bad("buckets not cumulative")
            cum = v; inf = (le == "+Inf") ? v : -1
        }
        if (type[fam] == "histogram" && name ~ /_count$/ && v != inf) bad("_count is not the +Inf bucket")
        seen[fam] = 1
    }
    END { if (!err && length(seen) == 0) { print "no samples"; exit 1 } }' "$1"
}

# scrape FILE: the page into FILE, checked.
scrape() {
    curl -fsS "http://$metrics/metrics" >"$1" || fail "scrape of http://$metrics/metrics"
    check_format "$1" || fail "format of $1"
    if command -v promtool >/dev/null; then
        promtool check metrics <"$1" >"$1.promtool" 2>&1 || {
            cat "$1.promtool"
            fail "promtool check metrics"
        }
    fi
}

# value FILE SAMPLE: the value of the sample (name and labels as printed).
value() {
    awk -v s="$2" 'substr($0, 1, length(s) + 1) == s " " { print $2; found = 1 }
                   END { if (!found) print "none" }' "$1"
}

expect() {
    got=$(value "$1" "$2")
    [ "$got" = "$3" ] || fail "$2 is $got, not $3 ($1)"
}

# wait_for COND...: runs COND until it succeeds, for at most 30 s (never a
# pass/fail by time: only a bound on a wait that must end).
wait_for() {
    for _ in $(seq 1 300); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

start_rcatd() {
    "$b/rcat/rcatd" --root "$tmp/root" --listen 127.0.0.1:0 "$@" >"$tmp/rcatd.out" \
        2>"$tmp/rcatd.err" &
    pid=$!
    wait_for grep -q '^rcatd listening on' "$tmp/rcatd.out" || fail "rcatd did not start"
    port=$(sed -n 's/^rcatd listening on \([0-9]*\)$/\1/p' "$tmp/rcatd.out")
}

mkdir "$tmp/root"
head -c 3000000 /dev/urandom >"$tmp/root/out.bin"

# No --metrics: no HTTP listener at all (no line, no TCP socket of rcatd's).
start_rcatd
grep -q 'metrics on' "$tmp/rcatd.err" && fail "metrics served without --metrics"
if command -v ss >/dev/null; then
    ss -ltnp 2>/dev/null | grep -q "pid=$pid," && fail "rcatd listens on TCP without --metrics"
fi
kill "$pid"
wait "$pid"

# A bad address is refused at start.
"$b/rcat/rcatd" --root "$tmp/root" --listen 127.0.0.1:0 --metrics 127.0.0.1:x >/dev/null \
    2>"$tmp/bad.err" && fail "--metrics 127.0.0.1:x accepted"
grep -q -- '--metrics wants' "$tmp/bad.err" || fail "--metrics 127.0.0.1:x: $(cat "$tmp/bad.err")"

# A port alone: 127.0.0.1.
start_rcatd --writable --metrics 0
wait_for grep -q 'metrics on http://' "$tmp/rcatd.err" || fail "no metrics line in the log"
metrics=$(sed -n 's|.*metrics on http://\(.*\)/metrics$|\1|p' "$tmp/rcatd.err")
case $metrics in 127.0.0.1:[0-9]*) ;; *) fail "--metrics 0 serves on $metrics, not 127.0.0.1" ;; esac
curl -s -o /dev/null -w '%{http_code}' "http://$metrics/" | grep -q 404 || fail "/ is not 404"

# A STORE from a pipe, held half-way until the test has scraped.
{
    head -c $size /dev/urandom
    for _ in $(seq 1 600); do # 60 s at most, should the test be gone
        [ -e "$tmp/go" ] && break
        sleep 0.1
    done
    head -c $size /dev/urandom
} | "$b/rcat/rcat" -q --identity metrics-test --put - "rcat://127.0.0.1:$port/in.bin" \
    2>"$tmp/put.err" &
put=$!
running() {
    scrape "$tmp/during"
    [ "$(value "$tmp/during" rcatd_transfers_running)" = 1 ]
}
wait_for running || fail "rcatd_transfers_running never 1 during the STORE"
expect "$tmp/during" 'rcatd_transfer_bytes_total{direction="in"}' 0
touch "$tmp/go"
wait "$put" || fail "the STORE: $(cat "$tmp/put.err")"
[ "$(stat -c %s "$tmp/root/in.bin")" = $((2 * size)) ] || fail "in.bin is not $((2 * size)) bytes"

"$b/rcat/rcat" -q --identity metrics-test -o "$tmp/copy" "rcat://127.0.0.1:$port/out.bin" ||
    fail "the FETCH"
cmp "$tmp/copy" "$tmp/root/out.bin" || fail "the FETCH's copy differs"
"$b/rcat/rcat" -q --stat "rcat://127.0.0.1:$port/missing" 2>/dev/null && fail "STAT missing"

# The context's counters arrive within a second of the loop publishing them:
# both the STORE's bytes in and the FETCH's bytes out.
published() {
    scrape "$tmp/after"
    v=$(value "$tmp/after" rcatd_network_received_bytes_total)
    w=$(value "$tmp/after" rcatd_network_sent_bytes_total)
    [ "$v" != none ] && [ "$v" -ge $((2 * size)) ] && [ "$w" != none ] && [ "$w" -ge 3000000 ]
}
wait_for published || fail "rcatd_network_received/sent_bytes_total below what was stored/fetched"
expect "$tmp/after" rcatd_transfers_running 0
expect "$tmp/after" rcatd_calls_running 0
expect "$tmp/after" 'rcatd_transfer_bytes_total{direction="in"}' $((2 * size))
expect "$tmp/after" 'rcatd_transfer_bytes_total{direction="out"}' 3000000
expect "$tmp/after" 'rcatd_identity_bytes_total{identity="metrics-test"}' $((2 * size + 3000000))
expect "$tmp/after" 'rcatd_calls_total{proc="STORE",status="ok"}' 1
expect "$tmp/after" 'rcatd_calls_total{proc="FETCH",status="ok"}' 1
expect "$tmp/after" 'rcatd_calls_total{proc="STAT",status="RCAT_NOT_FOUND"}' 1
expect "$tmp/after" rcatd_transfer_rate_bytes_per_second_count 2
# both streamed: each ended with a round trip, on loopback below a second
expect "$tmp/after" rcatd_transfer_rtt_seconds_count 2
expect "$tmp/after" 'rcatd_transfer_rtt_seconds_bucket{le="2"}' 2
sent=$(value "$tmp/after" rcatd_network_sent_bytes_total)
[ "$sent" -ge 3000000 ] || fail "rcatd_network_sent_bytes_total $sent is below the 3000000 fetched"
kill -0 "$pid" || fail "rcatd died"
promtool_used=no
command -v promtool >/dev/null && promtool_used=yes
echo "PASS: /metrics during and after a STORE of $((2 * size)) B and a FETCH of 3000000 B" \
    "(format checked; promtool: $promtool_used)"
