#!/bin/bash
# run_wan.sh - rcat against TCP (bbr and cubic) across emulated WAN links, in one run.
#
# Loopback says nothing about long, lossy paths, and this kernel has no tc netem, so the
# script builds its own path: two network namespaces (a server end "srv" and a client end
# "cli"), a TUN device in each, joined by bench/wan/linkemu (rate-limited bottleneck with a
# one-BDP drop-tail queue, one-way delay, random loss). On each profile it fetches a
# random file with rcat from rcatd (srv -> cli), then runs iperf3 with bbr and with cubic
# in the same direction through the same link, and prints goodput, the ratios to the link
# rate and to bbr, and the send efficiency read from the emulator's own counters. Then a
# fairness run (rcat beside one cubic flow) and, when rcat has --policy, a background run.
# See bench/README.md ("WAN bench") for the columns. Needs root, ip, /dev/net/tun, iperf3
# (and gnuplot for --plot): sh scripts/install-deps.sh --bench.
set -eu

usage() {
    cat <<'EOF'
Usage: bench/run_wan.sh [options] [PROFILE...]
PROFILE is a, b, c, d or e (default: all five) or NAME=RATE,RTT_MS,LOSS_PCT
(e.g. x=50M,300,0.5). Built profiles:
  a: 100 Mbit/s, 10 ms RTT, no loss     b: 100 Mbit/s, 100 ms RTT, no loss
  c: 100 Mbit/s, 100 ms RTT, 1 % loss   d: 100 Mbit/s, 200 ms RTT, 3 % loss
  e: 1 Gbit/s, 20 ms RTT, 0.1 % loss
RTT is split evenly between the directions; loss is random, both ways; the
bottleneck queue is one BDP, drop-tail.
Options:
  --rcat-secs N     stop each rcat fetch after N s (default 20)
  --tcp-secs N      each iperf3 run lasts N s (default 12)
  --fair-secs N     the fairness and background runs last N s (default 20)
  --no-fairness     skip the fairness run (rcat beside cubic on profile b)
  --no-background   skip the background-policy run
  --bg-after S      in the background run, start rcat S seconds after cubic
                    (default 0.2; 1 puts it in cubic's slow-start overshoot)
  --no-profiles     only the fairness and background runs
  --link-check      first, iperf3 through the bare link (no delay, no loss) at
                    100 Mbit/s and 1 Gbit/s: what the emulator itself can carry
  --plot            draw goodput over time per profile (gnuplot, PNG)
  --results DIR     logs, samples, plots and summary.txt (default ./wan-results)
  --builddir DIR    where rcat/rcat, rcat/rcatd and bench/wan/linkemu are
                    (default $top_builddir, else .)
  --link-opts STR   extra linkemu options for every profile ("--jitter 1")
  --file-mib N      size of the random file served (default: enough for the
                    fastest profile to run --rcat-secs, at most 4096)
  -h, --help        this text
EOF
}

rcat_secs=20 tcp_secs=12 fair_secs=20 fairness=1 background=1 bg_after=0.2 plot=0 link_check=0
results=$PWD/wan-results builddir=${top_builddir:-.} link_opts="" file_mib=""
profiles=()
while [ $# -gt 0 ]; do
    case "$1" in
    --rcat-secs) rcat_secs=$2; shift ;;
    --tcp-secs) tcp_secs=$2; shift ;;
    --fair-secs) fair_secs=$2; shift ;;
    --no-fairness) fairness=0 ;;
    --no-background) background=0 ;;
    --bg-after) bg_after=$2; shift ;;
    --no-profiles) profiles=(none) ;;
    --link-check) link_check=1 ;;
    --plot) plot=1 ;;
    --results) results=$2; shift ;;
    --builddir) builddir=$2; shift ;;
    --link-opts) link_opts=$2; shift ;;
    --file-mib) file_mib=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "run_wan.sh: unknown option $1 (try --help)" >&2; exit 1 ;;
    *) profiles+=("$1") ;;
    esac
    shift
done
[ ${#profiles[@]} -gt 0 ] || profiles=(a b c d e)
[ "${profiles[0]}" = none ] && profiles=()
case "$bg_after" in '' | *[!0-9.]* | *.*.* | .) echo "run_wan.sh: '$bg_after' is not a number of seconds" >&2; exit 1 ;; esac
for n in "$rcat_secs" "$tcp_secs" "$fair_secs" ${file_mib:+"$file_mib"}; do
    case "$n" in '' | *[!0-9]* | 0) echo "run_wan.sh: '$n' is not a positive whole number" >&2; exit 1 ;; esac
done

die() {
    echo "run_wan.sh: $*" >&2
    exit 1
}

rcat=$builddir/rcat/rcat rcatd=$builddir/rcat/rcatd linkemu=$builddir/bench/wan/linkemu
for p in "$rcat" "$rcatd" "$linkemu"; do
    [ -x "$p" ] || die "$p not found: build first (make), or give --builddir"
done
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces and TUN devices)"
[ -c /dev/net/tun ] || die "no /dev/net/tun"
command -v ip >/dev/null || die "no ip (iproute2): sh scripts/install-deps.sh --bench"
command -v iperf3 >/dev/null || die "no iperf3: sh scripts/install-deps.sh --bench"
if [ $plot -eq 1 ]; then
    command -v gnuplot >/dev/null || die "no gnuplot for --plot: sh scripts/install-deps.sh --bench"
fi

# ---- profiles ------------------------------------------------------------------

# profile_spec NAME -> "RATE_BPS RTT_MS LOSS_PCT LABEL"
profile_spec() {
    case "$1" in
    a) echo "100000000 10 0 a:100M,10ms,0%" ;;
    b) echo "100000000 100 0 b:100M,100ms,0%" ;;
    c) echo "100000000 100 1 c:100M,100ms,1%" ;;
    d) echo "100000000 200 3 d:100M,200ms,3%" ;;
    e) echo "1000000000 20 0.1 e:1G,20ms,0.1%" ;;
    *=*,*,*)
        local name=${1%%=*} spec=${1#*=} rate rtt loss
        IFS=, read -r rate rtt loss <<<"$spec"
        rate=$(awk -v r="$rate" 'BEGIN {
            m = 1; u = substr(r, length(r)); if (u == "k" || u == "K") m = 1e3;
            if (u == "m" || u == "M") m = 1e6; if (u == "g" || u == "G") m = 1e9;
            if (m > 1) r = substr(r, 1, length(r) - 1);
            if (r !~ /^[0-9.]+$/ || r + 0 <= 0) exit 1; printf "%.0f", r * m }') ||
            die "bad rate in profile $1"
        awk -v t="$rtt" -v l="$loss" 'BEGIN { exit !(t ~ /^[0-9.]+$/ && l ~ /^[0-9.]+$/ && l < 100) }' ||
            die "bad RTT or loss in profile $1 (NAME=RATE,RTT_MS,LOSS_PCT)"
        echo "$rate $rtt $loss $name:$spec"
        ;;
    *) die "unknown profile '$1' (a-e or NAME=RATE,RTT_MS,LOSS_PCT)" ;;
    esac
}

for p in ${profiles[@]+"${profiles[@]}"}; do profile_spec "$p" >/dev/null; done

# ---- the namespaces, the link and the servers -------------------------------------

ns_srv=rwan$$srv ns_cli=rwan$$cli
srv_ip=10.77.0.1 cli_ip=10.77.0.2 rcat_port=7755
data=""
mkdir -p "$results"
results=$(cd "$results" && pwd)
emu_pid="" rcatd_pid="" iperf_pid=""

# stop PID: SIGTERM, wait up to 5 s, then SIGKILL. Only PIDs this script started.
stop() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop "$emu_pid"
    stop "$rcatd_pid"
    stop "$iperf_pid"
    ip netns del "$ns_srv" 2>/dev/null || true
    ip netns del "$ns_cli" 2>/dev/null || true
    [ -z "$data" ] || rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_cli() { ip netns exec "$ns_cli" "$@"; }

setup_namespaces() {
    local ns
    for ns in "$ns_srv" "$ns_cli"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$ns" tuntap add dev wan0 mode tun
        # The emulator holds the real queue; this one only absorbs its scheduling hiccups.
        ip -n "$ns" link set wan0 mtu 1500 txqueuelen 10000 up
        # TCP windows big enough for a BDP plus a full queue at 1 Gbit/s (these namespaces only).
        ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_rmem="4096 131072 67108864" \
            net.ipv4.tcp_wmem="4096 65536 67108864" net.ipv4.tcp_no_metrics_save=1
    done
    ip -n "$ns_srv" addr add "$srv_ip/24" dev wan0
    ip -n "$ns_cli" addr add "$cli_ip/24" dev wan0
}

# wait_line FILE REGEX PID: until FILE has a line matching REGEX (10 s), PID alive.
wait_line() {
    for _ in $(seq 1 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# start_link RATE RTT LOSS TAG [QUEUE]: linkemu with the profile's shape (the queue one BDP
# unless given), stats to $results/TAG.stats.
start_link() {
    local rate=$1 rtt=$2 loss=$3 tag=$4 queue=${5:-} delay
    delay=$(awk -v r="$rtt" 'BEGIN { printf "%g", r / 2 }')
    [ -n "$queue" ] || queue=$(awk -v b="$rate" -v r="$rtt" 'BEGIN {
        q = b * r / 8000; if (q < 16384) q = 16384; printf "%.0f", q }')
    rm -f "$results/$tag.stats"
    # shellcheck disable=SC2086
    "$linkemu" --ns-a "$ns_srv" --dev-a wan0 --ns-b "$ns_cli" --dev-b wan0 --rate "$rate" \
        --queue "$queue" --delay "$delay" --loss "$loss%" --seed $$ --stats "$results/$tag.stats" \
        $link_opts >"$results/$tag.linkemu.out" 2>"$results/$tag.linkemu.err" &
    emu_pid=$!
    wait_line "$results/$tag.linkemu.out" "linkemu ready" "$emu_pid" ||
        { cat "$results/$tag.linkemu.err" >&2; die "linkemu did not start"; }
}

stop_link() {
    stop "$emu_pid"
    emu_pid=""
}

# Started with ip netns exec directly, never through in_srv: a shell function sent to the
# background runs in a subshell, $! would be that subshell's PID, and stopping it would leave
# the server running (ip netns exec execs the program, so $! is the server itself).
start_servers() {
    ip netns exec "$ns_srv" "$rcatd" --listen "$srv_ip:$rcat_port" --root "$data" \
        --log "$results/rcatd.log" >"$results/rcatd.out" 2>&1 &
    rcatd_pid=$!
    wait_line "$results/rcatd.out" "rcatd listening on" "$rcatd_pid" ||
        { cat "$results/rcatd.out" "$results/rcatd.log" >&2; die "rcatd did not start"; }
    ip netns exec "$ns_srv" iperf3 -s -B "$srv_ip" >"$results/iperf3-server.log" 2>&1 &
    iperf_pid=$!
    sleep 0.3
    kill -0 "$iperf_pid" 2>/dev/null || { cat "$results/iperf3-server.log" >&2; die "iperf3 -s failed"; }
}

# ---- measuring --------------------------------------------------------------------

# snap STATSFILE: the emulator's counters now (SIGUSR1 makes it write a line at once).
snap() {
    local n
    n=$(grep -c ' end=1$' "$1" || true)
    kill -USR1 "$emu_pid"
    for _ in $(seq 1 100); do
        [ "$(grep -c ' end=1$' "$1" || true)" -gt "$n" ] && break
        sleep 0.01
    done
    grep ' end=1$' "$1" | tail -n 1
}

# field LINE KEY: one counter of a stats line.
field() {
    awk -v k="$2" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' <<<"$1"
}

# delta BEFORE AFTER KEY
delta() {
    echo $(($(field "$2" "$3") - $(field "$1" "$3")))
}

now() { date +%s.%N; }

# sched_of PID: "RUN_NS WAIT_NS" summed over its threads: time on a CPU, and time runnable
# but waiting for one (/proc/PID/task/*/schedstat). A process that waits about as long as
# it runs is starved by the machine, not limited by its own work.
sched_of() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ r += $1; w += $2 } END { printf "%d %d", r, w }'
}

# idle_of: the machine's idle and total jiffies (/proc/stat).
idle_of() {
    awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%d %d", $5 + $6, t; exit }' /proc/stat
}

# cpu_note SECS RCATD0 RCATD1 EMU0 EMU1 IDLE0 IDLE1: where the CPU went during a run.
cpu_note() {
    awk -v s="$1" -v a="$2" -v b="$3" -v c="$4" -v d="$5" -v e="$6" -v f="$7" 'BEGIN {
        split(a, a0, " "); split(b, a1, " "); split(c, c0, " "); split(d, c1, " ");
        split(e, e0, " "); split(f, e1, " ");
        t = e1[2] - e0[2];
        printf "rcatd ran %.0f%% of a CPU and waited for one %.0f%%, linkemu ran %.0f%%, the machine was idle %.0f%%",
            (a1[1] - a0[1]) / s / 1e7, (a1[2] - a0[2]) / s / 1e7, (c1[1] - c0[1]) / s / 1e7,
            (t > 0 ? (e1[1] - e0[1]) * 100 / t : 0) }'
}

# run_rcat TAG SECS [RCAT OPTIONS...]: fetch for SECS at most; sets rcat_bytes, rcat_mbps
# and rcat_dups (DATA packets the client received twice).
run_rcat() {
    local tag=$1 secs=$2 t0 t1 last
    shift 2
    t0=$(now)
    in_cli timeout -s TERM "$secs" "$rcat" --json --no-progress "$@" \
        "rcat://$srv_ip:$rcat_port/random.bin" >/dev/null 2>"$results/$tag.json" || true
    t1=$(now)
    # The last event with FileBytes (STOP when stopped, else the transfer's end).
    last=$(grep '"FileBytes"' "$results/$tag.json" | grep -v '"Type":"DONE"' | tail -n 1 || true)
    rcat_bytes=$(sed -n 's/.*"FileBytes":\([0-9]*\).*/\1/p' <<<"$last")
    rcat_dups=$(sed -n 's/.*"Duplicates":\([0-9]*\).*/\1/p' <<<"$last")
    : "${rcat_dups:=0}"
    local us
    us=$(sed -n 's/.*"Elapsedusec":\([0-9]*\).*/\1/p' <<<"$last")
    : "${rcat_bytes:=0}"
    if [ -z "$us" ] || [ "$us" -eq 0 ]; then
        us=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1e6 }')
    fi
    rcat_mbps=$(awk -v b="$rcat_bytes" -v u="$us" 'BEGIN { printf "%.1f", (u > 0 ? b * 8 / u : 0) }')
}

# json_sum FILE OBJECT KEY: KEY of the first "OBJECT": { ... } in iperf3's --json output.
json_sum() {
    awk -v o="\"$2\":" -v k="\"$3\":" '$1 == o { inside = 1 } inside && $1 == k {
        v = $2; sub(/,$/, "", v); print v; exit }' "$1"
}

# run_tcp TAG CC SECS: iperf3 from srv to cli (-R: the client in cli receives, so its
# intervals are goodput); sets tcp_mbps and tcp_retr (segments the sender resent).
run_tcp() {
    local tag=$1 cc=$2 secs=$3 got secs_got
    in_cli iperf3 -c "$srv_ip" -R -C "$cc" -t "$secs" -i 0.5 --json >"$results/$tag.iperf3.json" \
        2>&1 || true
    got=$(json_sum "$results/$tag.iperf3.json" sum_received bytes)
    secs_got=$(json_sum "$results/$tag.iperf3.json" sum_received seconds)
    tcp_retr=$(json_sum "$results/$tag.iperf3.json" sum_sent retransmits)
    tcp_mbps=$(awk -v b="${got:-0}" -v s="${secs_got:-0}" 'BEGIN { printf "%.1f", (s > 0 ? b * 8 / s / 1e6 : 0) }')
    : "${tcp_retr:=0}"
}

# tcp_eff BEFORE AFTER: TCP payload into the link / the part of it that was new data (the
# rest: tcp_retr resent segments of one MSS, 1448 bytes with timestamps at MTU 1500).
# iperf3's own byte counts cover different windows at each end, so they are not used.
tcp_eff() {
    local sent
    sent=$(delta "$1" "$2" ab_in_tcp)
    ratio "$sent" "$((sent - tcp_retr * 1448))"
}

# ratio A B: A/B with two decimals, "-" when B is 0 or missing.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "") printf "%.2f", a / b; else printf "-" }'
}

# ---- plots ---------------------------------------------------------------------------

# rcat's STATS events -> "seconds Mbit/s" per interval.
rcat_series() {
    sed -n 's/.*"Type":"STATS".*"FileBytes":\([0-9]*\).*"Elapsedusec":\([0-9]*\).*/\1 \2/p' "$1" |
        awk 'NR > 1 && $2 > pu { printf "%.3f %.2f\n", $2 / 1e6, ($1 - pb) * 8 / ($2 - pu) } { pb = $1; pu = $2 }'
}

# iperf3 --json intervals (receiver side: the sum of each) -> "seconds Mbit/s".
tcp_series() {
    awk '$1 == "\"sum\":" { inside = 1 } inside && $1 == "\"end\":" { e = $2; sub(/,$/, "", e) }
        inside && $1 == "\"bits_per_second\":" { b = $2; sub(/,$/, "", b) }
        inside && $1 ~ /^}/ { printf "%s %.2f\n", e, b / 1e6; inside = 0 }' "$1"
}

# draw TAG LABEL RATE: TAG.png from whichever of rcat, bbr and cubic ran under TAG.
draw() {
    local tag=$1 label=$2 mbps plots="" f
    mbps=$(awk -v r="$3" 'BEGIN { print r / 1e6 }')
    [ -f "$results/$tag.rcat.json" ] && rcat_series "$results/$tag.rcat.json" >"$results/$tag.rcat.dat"
    for cc in bbr cubic; do
        f=$results/$tag.$cc.iperf3.json
        [ -f "$f" ] && tcp_series "$f" >"$results/$tag.$cc.dat"
    done
    f=$results/$tag.rcat.dat
    [ -s "$f" ] && plots="$plots \"$f\" using 1:2 with lines lw 2 lc rgb \"dark-violet\" title \"rcat\","
    f=$results/$tag.bbr.dat
    [ -s "$f" ] && plots="$plots \"$f\" using 1:2 with lines lc rgb \"forest-green\" title \"TCP bbr\","
    f=$results/$tag.cubic.dat
    [ -s "$f" ] && plots="$plots \"$f\" using 1:2 with lines lc rgb \"dark-orange\" title \"TCP cubic\","
    gnuplot <<EOF || echo "run_wan.sh: gnuplot failed for $tag"
set terminal png size 1000,500
set output "$results/$tag.png"
set title "goodput over time: $label (link $mbps Mbit/s)"
set xlabel "seconds"
set ylabel "Mbit/s"
set yrange [0:*]
set key outside right
set grid
plot $plots $mbps with lines dt 2 lc rgb "gray" title "link rate"
EOF
}

# ---- the runs ------------------------------------------------------------------------

have_bbr=1
if ! grep -qw bbr /proc/sys/net/ipv4/tcp_available_congestion_control; then
    modprobe tcp_bbr 2>/dev/null || true
    grep -qw bbr /proc/sys/net/ipv4/tcp_available_congestion_control || have_bbr=0
fi
[ $have_bbr -eq 1 ] || echo "run_wan.sh: TCP bbr is unavailable (no tcp_bbr module): no bbr runs, no ratios to bbr"

if [ -z "$file_mib" ]; then
    max_rate=$(profile_spec b | cut -d' ' -f1) # the fairness and background runs
    for p in ${profiles[@]+"${profiles[@]}"}; do
        read -r r _ <<<"$(profile_spec "$p")"
        [ "$r" -gt "$max_rate" ] && max_rate=$r
    done
    file_mib=$(awk -v r="$max_rate" -v s="$rcat_secs" 'BEGIN {
        m = r * s / 8 / 1048576 * 1.2 + 16; if (m > 4096) m = 4096; printf "%d", m }')
fi
# In memory when there is room for it twice over: writing gigabytes to a busy disk takes
# longer than the profiles.
shm_mib=$(df -Pm /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')
if [ "${shm_mib:-0}" -gt $((2 * file_mib)) ]; then
    data=$(mktemp -d /dev/shm/run_wan.XXXXXX)
else
    data=$(mktemp -d /var/tmp/run_wan.XXXXXX)
fi
echo "run_wan.sh: making a ${file_mib} MiB random file in $data; results in $results"
# 64 MiB from /dev/urandom, repeated: as incompressible to rcat, and seconds instead of a
# minute of CPU on a loaded machine.
head -c $((64 * 1048576)) /dev/urandom >"$data/block"
for _ in $(seq 1 $(((file_mib + 63) / 64))); do cat "$data/block"; done |
    head -c "$((file_mib * 1048576))" >"$data/random.bin"
rm -f "$data/block"

setup_namespaces
start_servers
summary=$results/summary.txt
: >"$summary"
out() { echo "$*" | tee -a "$summary"; }

out "# run_wan.sh $(date -u +%FT%TZ) on $(uname -r), $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
out "# rcat ${rcat_secs} s per fetch, iperf3 ${tcp_secs} s per run; Mbit/s of goodput; eff = sent into the link / delivered new (rcat: packets; TCP: segments)"
if [ $link_check -eq 1 ]; then
    for rate in 100000000 1000000000; do
        # no delay: a queue of 10 ms at the rate, so TCP can fill the link
        start_link "$rate" 0 0 "check$((rate / 1000000))" "$((rate / 800))"
        line="link check, $((rate / 1000000)) Mbit/s, no delay, ${tcp_secs} s:"
        for cc in bbr cubic; do
            [ $cc = bbr ] && [ $have_bbr -eq 0 ] && continue
            run_tcp "check$((rate / 1000000)).$cc" "$cc" "$tcp_secs"
            line="$line $cc $tcp_mbps Mbit/s ($(ratio "$tcp_mbps" "$((rate / 1000000))") of the rate)"
        done
        stop_link
        out "$line; TCP's payload tops out at 0.965 at MTU 1500"
    done
fi
header=$(printf '%-18s %7s %7s %7s %9s %8s %8s %8s %8s' profile rcat bbr cubic rcat/link rcat/bbr "rcat eff" "bbr eff" "cub eff")
[ ${#profiles[@]} -gt 0 ] && out "$header"
details=()
for p in ${profiles[@]+"${profiles[@]}"}; do
    read -r rate rtt loss label <<<"$(profile_spec "$p")"
    tag=${label%%:*}
    start_link "$rate" "$rtt" "$loss" "$tag"
    st=$results/$tag.stats
    s0=$(snap "$st")
    c0=$(sched_of "$rcatd_pid") e0=$(sched_of "$emu_pid") i0=$(idle_of) t0=$(now)
    run_rcat "$tag.rcat" "$rcat_secs"
    c1=$(sched_of "$rcatd_pid") e1=$(sched_of "$emu_pid") i1=$(idle_of) t1=$(now)
    s1=$(snap "$st")
    cpu=$(cpu_note "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$c0" "$c1" "$e0" "$e1" "$i0" "$i1")
    rb=$rcat_bytes rm=$rcat_mbps
    # What entered the link from the server, less what was still inside it when rcat stopped.
    sent=$(($(delta "$s0" "$s1" ab_in_udp) - $(delta "$s0" "$s1" ab_held_udp)))
    qd=$(delta "$s0" "$s1" ab_queue_drops) lost=$(($(delta "$s0" "$s1" ab_lost) + $(delta "$s0" "$s1" ab_ge_lost)))
    # In packets, as TCP's is in segments: every packet that left the link or was dropped in
    # it, over the packets that reached the client new (all but its duplicates).
    out_pkts=$(delta "$s0" "$s1" ab_out_pkts)
    reff=$(ratio "$((out_pkts + qd + lost))" "$((out_pkts - rcat_dups))")
    bm="" beff="-"
    if [ $have_bbr -eq 1 ]; then
        sleep 1
        s2=$(snap "$st")
        run_tcp "$tag.bbr" bbr "$tcp_secs"
        s3=$(snap "$st")
        bm=$tcp_mbps beff=$(tcp_eff "$s2" "$s3")
    fi
    sleep 1
    s4=$(snap "$st")
    run_tcp "$tag.cubic" cubic "$tcp_secs"
    s5=$(snap "$st")
    cm=$tcp_mbps ceff=$(tcp_eff "$s4" "$s5")
    stop_link
    link_mbps=$(awk -v r="$rate" 'BEGIN { print r / 1e6 }')
    out "$(printf '%-18s %7s %7s %7s %9s %8s %8s %8s %8s' "$label" "$rm" "${bm:--}" "$cm" \
        "$(ratio "$rm" "$link_mbps")" "$(ratio "$rm" "$bm")" "$reff" "$beff" "$ceff")"
    details+=("$tag: rcat moved $rb bytes; the link took $sent UDP payload bytes from the server (headers included: $(ratio "$sent" "$rb") of the bytes moved), delivered $out_pkts packets of which the client had $rcat_dups already, dropped $qd at the queue and $lost at random; $cpu")
    [ $plot -eq 1 ] && draw "$tag" "profile $label" "$rate"
done
for d in ${details[@]+"${details[@]}"}; do out "#   $d"; done

# fair_run TAG AFTER RCAT-OPTIONS...: one iperf3 cubic flow through profile b, and rcat
# starting AFTER seconds later for --fair-secs; cubic runs as many whole seconds longer as
# AFTER rounds to, so that rcat does not finish alone.
fair_run() {
    local tag=$1 after=$2 tcp_pid tcp_for
    shift 2
    tcp_for=$(awk -v s="$fair_secs" -v a="$after" 'BEGIN { printf "%d", s + a + 0.5 }')
    run_tcp_bg() { run_tcp "$tag.cubic" cubic "$tcp_for"; echo "$tcp_mbps" >"$results/$tag.cubic.mbps"; }
    run_tcp_bg &
    tcp_pid=$!
    sleep "$after"
    run_rcat "$tag.rcat" "$fair_secs" "$@"
    wait "$tcp_pid" || true
    fair_rcat=$rcat_mbps fair_tcp=$(cat "$results/$tag.cubic.mbps")
}

read -r rate rtt loss _ <<<"$(profile_spec b)"
if [ $fairness -eq 1 ]; then
    start_link "$rate" "$rtt" "$loss" fair
    fair_run fair 0.2
    stop_link
    [ $plot -eq 1 ] && draw fair "rcat and cubic together, profile b" "$rate"
    total=$(awk -v a="$fair_rcat" -v b="$fair_tcp" 'BEGIN { print a + b }')
    out "fairness (profile b, ${fair_secs} s, together): rcat $fair_rcat Mbit/s (share $(ratio "$fair_rcat" "$total")), cubic $fair_tcp Mbit/s (share $(ratio "$fair_tcp" "$total")); rcat/cubic $(ratio "$fair_rcat" "$fair_tcp")"
fi
if [ $background -eq 1 ]; then
    if "$rcat" --help 2>&1 | grep -q -- --policy; then
        start_link "$rate" "$rtt" "$loss" background
        fair_run background "$bg_after" --policy background
        bg_with=$fair_rcat bg_tcp=$fair_tcp
        sleep 1
        run_rcat background.alone.rcat "$fair_secs" --policy background
        stop_link
        [ $plot -eq 1 ] && draw background "rcat --policy background beside cubic, profile b" "$rate"
        out "background (profile b, ${fair_secs} s, started ${bg_after} s after cubic): beside cubic rcat $bg_with Mbit/s ($(ratio "$bg_with" "$((rate / 1000000))") of the link), cubic $bg_tcp; alone rcat $rcat_mbps Mbit/s ($(ratio "$rcat_mbps" "$((rate / 1000000))") of the link)"
    else
        out "background: skipped (rcat has no --policy option yet)"
    fi
fi
out "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ $plot -eq 1 ] && echo "run_wan.sh: plots in $results/*.png"
exit 0
