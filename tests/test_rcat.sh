#!/bin/bash
# test_rcat.sh - rcat and rcatd as real processes on loopback: files of many
# sizes fetched and stored, byte ranges, -p, --stat and --ls (with paging),
# every way out of the root refused (a symlink swapped in during requests
# too), read-only and --no-clobber refusals, stores from stalled pipes (the
# client killed, signalled, or its pipe pausing), 20 clients at once, --json
# events, one exit code per failure class, IPv6; secure connections (key
# files, auth and encrypt, every refusal, no secret in any output).
#
# Servers start on port 0 and say "rcatd listening on PORT"; they are stopped
# by their PID. Every wait is bounded and nothing asserts on time. Checks go
# on after a failure and the test fails at the end, listing what failed.
# RPC2_TEST_SMALL=1 shrinks the big files. The programs are found under
# ${top_builddir:-.}/rcat/ (make check sets top_builddir).
set -u
umask 022
export TZ=UTC LC_ALL=C

bin="${top_builddir:-.}/rcat"
rcat="$bin/rcat"
rcatd="$bin/rcatd"
[ -x "$rcat" ] && [ -x "$rcatd" ] || { echo "FAIL: $rcat or $rcatd not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_rcat.XXXXXX") || exit 1
mkdir "$tmp/bg"
# Background processes are started by spawn: their PID in $tmp/bg/NAME.pid,
# their exit status in $tmp/bg/NAME.rc once they end. A PID is signalled only
# while its .rc is missing (the process has not been reaped), so a PID the
# kernel reused for someone else's process is never hit; bash's own wait
# loses track of a child once it forks another with the same PID, and this
# test forks thousands.
cleanup() {
    local f
    for f in "$tmp"/bg/*.pid; do
        [ -e "$f" ] && [ ! -e "${f%.pid}.rc" ] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    wait
    chmod -R u+rwx "$tmp" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# spawn NAME CMD...: runs CMD in the background (redirections given to spawn apply).
spawn() {
    local name=$1
    shift
    rm -f "$tmp/bg/$name.pid" "$tmp/bg/$name.rc"
    (
        "$@" <&0 & # (without <&0, bash gives background commands /dev/null)
        echo $! >"$tmp/bg/$name.pid.new"
        mv "$tmp/bg/$name.pid.new" "$tmp/bg/$name.pid"
        wait $!
        echo $? >"$tmp/bg/$name.rc.new"
        mv "$tmp/bg/$name.rc.new" "$tmp/bg/$name.rc"
    ) <&0 &
    for _ in $(seq 1 200); do
        [ -e "$tmp/bg/$name.pid" ] && return 0
        sleep 0.05
    done
    fatal "$name did not start"
}
running() { [ ! -e "$tmp/bg/$1.rc" ]; }
status() { cat "$tmp/bg/$1.rc"; }
# signal SIG NAME: sends SIG to NAME if it still runs.
signal() { running "$2" && kill "-$1" "$(cat "$tmp/bg/$2.pid")" 2>/dev/null; }
# await NAME SECONDS: waits for NAME to end; fails when it still runs then.
await() {
    local start=$SECONDS
    while running "$1" && [ $((SECONDS - start)) -lt "$2" ]; do sleep 0.1; done
    running "$1" && return 1
    return 0
}

failures=0
failed=""
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
    failed="$failed
    $*"
}
fatal() {
    echo "FAIL: $*"
    exit 1
}
note() { echo "  $*"; }

if [ "${RPC2_TEST_SMALL:-0}" = 1 ]; then
    big=$((2 * 1024 * 1024)) race_runs=60 many=300
else
    big=$((20 * 1024 * 1024)) race_runs=200 many=300
fi

# ---- helpers ---------------------------------------------------------------

# start_server NAME ARGS...: rcatd in the background, logging to $tmp/NAME.log;
# sets port.
start_server() {
    local name=$1
    shift
    spawn "$name" "$rcatd" "$@" --log "$tmp/$name.log" >"$tmp/$name.out" 2>"$tmp/$name.err"
    port=""
    for _ in $(seq 1 200); do
        port=$(sed -n 's/^rcatd listening on \([0-9][0-9]*\)$/\1/p' "$tmp/$name.out")
        [ -n "$port" ] && return 0
        running "$name" || break
        sleep 0.05
    done
    cat "$tmp/$name.err" "$tmp/$name.log" 2>/dev/null
    fatal "rcatd $name did not start"
}

# stop_server NAME: the server must still be alive (no crash); SIGTERM must
# stop it with status 0 within 40 s (it lets running calls finish).
stop_server() {
    local name=$1
    if ! running "$name"; then
        sed 's/^/    /' "$tmp/$name.err"
        fail "rcatd $name died (status $(status "$name"))"
        return
    fi
    signal TERM "$name"
    if ! await "$name" 40; then
        fail "rcatd $name did not stop within 40 s of SIGTERM"
        signal KILL "$name"
        await "$name" 10
    fi
    [ "$(status "$name")" = 0 ] || { sed 's/^/    /' "$tmp/$name.err"; fail "rcatd $name stopped with status $(status "$name")"; }
    [ -s "$tmp/$name.err" ] && { sed 's/^/    /' "$tmp/$name.err"; fail "rcatd $name wrote to stderr"; }
}

# run WANT WHAT CMD...: CMD must exit with WANT (and not hang); its output
# goes to $tmp/out and $tmp/err. Returns 1 when it did not.
run() {
    local want=$1 what=$2 rc
    shift 2
    timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq 124 ]; then
        fail "$what: timed out after 60 s"
        return 1
    fi
    if [ "$rc" -ne "$want" ]; then
        sed 's/^/    /' "$tmp/err" | head -20
        fail "$what: exit status $rc, want $want"
        return 1
    fi
    return 0
}

# said WHAT TEXT: the last run's stderr must hold TEXT.
said() {
    grep -qF -- "$2" "$tmp/err" || { sed 's/^/    /' "$tmp/err" | head -10; fail "$1: stderr lacks '$2'"; }
}

# quiet WHAT: the last run wrote nothing to stderr.
quiet() {
    [ -s "$tmp/err" ] && { sed 's/^/    /' "$tmp/err" | head -10; fail "$1: unexpected stderr"; }
    return 0
}

same() { cmp -s "$1" "$2" || fail "$3: $1 and $2 differ"; }

# holds DIR NAMES...: DIR holds exactly NAMES (no temporary left over).
holds() {
    local dir=$1 got
    shift
    got=$(ls -A "$dir" | tr '\n' ' ')
    [ "$got" = "${*:+$* }" ] || fail "$dir holds '$got', want '$*'"
}

mtime() { stat -c '%.9Y' "$1"; }
mode() { stat -c '%a' "$1"; }

# ---- JSON, with shell tools only --------------------------------------------
# rcat's events are flat objects: string keys, string or integer values. A
# line is valid when it matches that grammar exactly (strings: no raw control
# characters, only JSON's escapes).
J_STR='"([^"\\[:cntrl:]]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
J_VAL="($J_STR|-?(0|[1-9][0-9]*))"
J_LINE="^\\{\"[A-Za-z]+\":$J_VAL(,\"[A-Za-z]+\":$J_VAL)*\\}\$"

# json_valid WHAT FILE: every line of FILE is one such object.
json_valid() {
    local bad
    [ -s "$2" ] || { fail "$1: no JSON at all"; return 1; }
    bad=$(grep -Evn -- "$J_LINE" "$2" | head -3)
    [ -z "$bad" ] || { fail "$1: not JSON: $bad"; return 1; }
}

# jget FILE LINE KEY: the value of KEY on line LINE (strings unquoted, escapes
# left as they are), or nothing.
jget() {
    awk -v n="$2" -v k="$3" 'NR == n {
        s = $0
        while (match(s, /"[A-Za-z]+":("([^"\\]|\\.)*"|-?[0-9]+)/)) {
            pair = substr(s, RSTART, RLENGTH)
            s = substr(s, RSTART + RLENGTH)
            key = pair
            sub(/":.*/, "", key)
            val = substr(pair, length(key) + 3)
            if (substr(key, 2) == k) {
                if (val ~ /^"/)
                    val = substr(val, 2, length(val) - 2)
                print val
                exit
            }
        }
    }' "$1"
}

# jline FILE TYPE [NTH]: the line number of the NTH (default 1) event TYPE.
jline() {
    grep -n "^{\"Type\":\"$2\"" "$1" | sed -n "${3:-1}s/:.*//p"
}

# jorder FILE: the events as letters: I(NIT) S(ESSION) N(OTIFICATION) T (STATS)
# P (STOP) E(RROR) L(OG) D(ONE). The run's INIT comes first; each transfer
# the library began has its own INIT SESSION [NOTIFICATION STATS*] [ERROR] STOP.
jorder() {
    sed -n 's/^{"Type":"\([A-Z]*\)".*/\1/p' "$1" |
        sed 's/^INIT$/I/;s/^SESSION$/S/;s/^NOTIFICATION$/N/;s/^STATS$/T/;s/^STOP$/P/;s/^ERROR$/E/;s/^LOG$/L/;s/^DONE$/D/' |
        tr -d '\n'
}

# jis WHAT FILE LINE KEY VALUE: the field must be VALUE.
jis() {
    local got
    got=$(jget "$2" "$3" "$4")
    [ "$got" = "$5" ] || fail "$1: line $3 $4 is '$got', want '$5'"
}

# jnum WHAT FILE LINE KEY...: the fields must be present and integers.
jnum() {
    local what=$1 f=$2 n=$3 k v
    shift 3
    for k in "$@"; do
        v=$(jget "$f" "$n" "$k")
        case "$v" in
        "" | *[!0-9]*) fail "$what: line $n $k is '$v', want a count" ;;
        esac
    done
}

# ---- the files ---------------------------------------------------------------
root="$tmp/root"      # served read-only
store="$tmp/store"    # served writable
outside="$tmp/outside"
local="$tmp/local"
mkdir "$root" "$store" "$outside" "$local" "$tmp/kill" "$tmp/dl"
marker="OUTSIDE-MARKER-$$-must-never-be-served"
echo "$marker" >"$outside/file"
echo "$marker" >"$outside/OUTSIDE-ONLY-ENTRY"
echo "$marker" >"$tmp/secret"

sizes="0 1 1000 65535 65536 65537 1048576 $big"
for n in $sizes; do
    head -c "$n" /dev/urandom >"$root/s$n"
done

# the escapes, beneath the read-only root
ln -s "$outside/file" "$root/evil_abs"
ln -s ../outside/file "$root/evil_rel"
ln -s ../outside "$root/evil_dir"
ln -s "$outside" "$root/evil_dir_abs"
ln -s ../secret "$root/evil_up"
mkdir "$root/a"
echo inside >"$root/a/x"
# ... and beneath the writable one
ln -s ../outside "$store/out"
ln -s "$outside/file" "$store/link_at_name"

start_server ro --listen 127.0.0.1:0 --root "$root"
ro_port=$port
start_server rw --listen 127.0.0.1:0 --root "$store" --writable
rw_port=$port
R="rcat://127.0.0.1:$ro_port"
W="rcat://127.0.0.1:$rw_port"
note "read-only rcatd on port $ro_port, writable on port $rw_port"

# ---- stores from stalled pipes (started now, judged at the end) -----------------
# Each client stores from a FIFO whose writer sends a file, then stays open
# and silent. (1) The client is killed with SIGKILL: the server must give the
# transfer up by itself and leave neither the file nor its temporary. (2) The
# client gets SIGTERM: it must cancel and die by it (rcat(1), EXIT STATUS)
# although its pipe stays silent. (3) The pipe pauses 15 s, then goes on: the
# store must succeed (the man page's pg_dump | gzip | rcat --put - example).
# A silent pipe must not stall the loop: the SFTP machines wait on it with
# the loop (sftp/streamio.c) and answer the server's probes meanwhile.
echo "stores from stalled pipes: started"
start_server kill --listen 127.0.0.1:0 --root "$tmp/kill" --writable
kill_port=$port
K="rcat://127.0.0.1:$kill_port"

# stalled_store NAME FILE OPTIONS...: rcat --put - $K/NAME (background job
# NAME) from a FIFO fed FILE then held open (job NAME.writer); returns once
# the server's temporary .NAME.* holds data.
stalled_store() {
    local name=$1 file=$2 t
    shift 2
    mkfifo "$tmp/fifo.$name"
    spawn "$name.writer" sh -c 'exec >"$1"; cat "$2"; exec sleep 120' sh "$tmp/fifo.$name" "$file"
    spawn "$name" "$rcat" "$@" --put - "$K/$name" <"$tmp/fifo.$name" >"$tmp/$name.out" 2>"$tmp/$name.err"
    for _ in $(seq 1 300); do
        t=$(ls -A "$tmp/kill" | grep "^\.$name\." | head -1)
        [ -n "$t" ] && [ -s "$tmp/kill/$t" ] && return 0
        running "$name" || break
        sleep 0.1
    done
    fail "stalled store $name: no temporary .$name.* with data appeared"
}
stalled_store victim.bin "$root/s$big" -q
signal KILL victim.bin
head -c 4194304 /dev/urandom >"$tmp/4m" # more than the first window: data flows before the stall
stalled_store term.bin "$tmp/4m" --json
signal TERM term.bin
term_sent=$SECONDS
[ -e "$tmp/kill/victim.bin" ] && fail "killed store: victim.bin exists right after the kill"
cat "$tmp/4m" "$root/s1000" >"$tmp/pause.want"
spawn pause timeout 60 sh -c '{ cat "$1"; sleep 15; cat "$2"; } | "$3" --put - "$4"' \
    sh "$tmp/4m" "$root/s1000" "$rcat" "$K/pause.bin" >"$tmp/pause.out" 2>"$tmp/pause.err"
# (4) A fetch into a pipe whose reader pauses 30 s (rcat big | less, and a
# coffee break): the fetch must complete.
spawn stalled_reader timeout 90 sh -c '{ "$1" "$2" 2>"$3.err"; echo $? >"$3.rc"; } | { sleep 30; cat >"$3"; }' \
    sh "$rcat" "$R/s1048576" "$tmp/stalled"

# ---- sizes: fetch to stdout, into a pipe, with -o; store ---------------------
echo "sizes: $sizes"
for n in $sizes; do
    run 0 "fetch s$n to stdout" "$rcat" "$R/s$n" && same "$tmp/out" "$root/s$n" "fetch s$n to stdout"
    quiet "fetch s$n to stdout"
    { timeout 60 "$rcat" "$R/s$n"; echo $? >"$tmp/piped.rc"; } | cat >"$tmp/piped"
    [ "$(cat "$tmp/piped.rc")" = 0 ] || fail "fetch s$n into a pipe: exit $(cat "$tmp/piped.rc")"
    same "$tmp/piped" "$root/s$n" "fetch s$n into a pipe"
    run 0 "fetch s$n -o" "$rcat" -o "$local/s$n" "$R/s$n" && same "$local/s$n" "$root/s$n" "fetch s$n -o"
    [ -s "$tmp/out" ] && fail "fetch s$n -o wrote to stdout"
    run 0 "store s$n" "$rcat" --put "$root/s$n" "$W/s$n" && same "$store/s$n" "$root/s$n" "store s$n"
done
run 0 "store from a pipe" sh -c 'cat "$1" | "$2" --put - "$3"' sh "$root/s$big" "$rcat" "$W/piped" &&
    same "$store/piped" "$root/s$big" "store from a pipe"
run 0 "store to a directory name" "$rcat" --put "$root/s1000" "$W/" && same "$store/s1000" "$root/s1000" "store DIR/"
run 0 "fetch several into a directory" "$rcat" -o "$tmp/dl/" "$R/s1" "$R/s65537" "$R/a/x" &&
    same "$tmp/dl/s65537" "$root/s65537" "-o DIR/" && same "$tmp/dl/x" "$root/a/x" "-o DIR/"
holds "$local" $(for n in $sizes; do echo "s$n"; done | sort)
printf 'spaced' >"$root/my file%.txt"
run 0 "a name with a space and %, URL form" "$rcat" "$R/my%20file%25.txt" && [ "$(cat "$tmp/out")" = spaced ] ||
    fail "my%20file%25.txt: '$(cat "$tmp/out")'"
run 0 "a name with a space and %, scp form" "$rcat" -P "$ro_port" "127.0.0.1:my file%.txt" &&
    [ "$(cat "$tmp/out")" = spaced ] || fail "127.0.0.1:my file%.txt: '$(cat "$tmp/out")'"
echo keep >"$local/target"
ln -s target "$local/link"
run 0 "-o onto a symlink" "$rcat" -o "$local/link" "$R/s1000"
# written through, as cp and shell redirections do: the link stays a link
[ -L "$local/link" ] || fail "-o onto a symlink: the link was replaced"
same "$local/target" "$root/s1000" "-o onto a symlink: the file it leads to"
rm -f "$local/link" "$local/target"
holds "$tmp/dl" s1 s65537 x

# ---- stdout concatenates, in order ----------------------------------------------
echo "stdout: several files in order"
run 0 "cat of four" "$rcat" "$R/s1000" "$R/s0" "$R/s$big" "$R/s1" &&
    cat "$root/s1000" "$root/s0" "$root/s$big" "$root/s1" | cmp -s - "$tmp/out" ||
    fail "rcat URL1 URL2 URL3 URL4 is not cat of the four"

# ---- byte ranges -------------------------------------------------------------------
echo "byte ranges"
m="$root/s1048576"
# range WHAT OFFSET LENGTH OPTIONS...: the fetch must equal that slice of s1048576
range() {
    local what=$1 off=$2 len=$3
    shift 3
    run 0 "range $what" "$rcat" "$@" "$R/s1048576" || return
    tail -c +$((off + 1)) "$m" | head -c "$len" | cmp -s - "$tmp/out" || fail "range $what: wrong bytes"
}
range "100+200" 100 200 --offset 100 --length 200
range "4K+1K" 4096 1024 --offset 4K --length 1K
range "length beyond the end" 1048000 99999 --offset 1048000 --length 5000
range "offset at the end" 1048576 0 --offset 1M
range "offset beyond the end" 2097152 0 --offset 2M --length 10
range "length only" 0 70000 --length 70000
range "length 0" 0 0 --length 0
range "offset only" 65537 9999999 --offset 65537
run 0 "range into -o" "$rcat" --offset 5 --length 65536 -o "$local/range" "$R/s1048576" &&
    { tail -c +6 "$m" | head -c 65536 | cmp -s - "$local/range" || fail "range into -o: wrong bytes"; }
run 0 "range of the big file" "$rcat" --offset 1000001 --length 1M "$R/s$big" &&
    { tail -c +1000002 "$root/s$big" | head -c 1048576 | cmp -s - "$tmp/out" || fail "range of the big file: wrong bytes"; }
run 0 "store a range" "$rcat" --offset 1000 --length 3000 --put "$m" "$W/range" &&
    { tail -c +1001 "$m" | head -c 3000 | cmp -s - "$store/range" || fail "store a range: wrong bytes"; }

# ---- -p: mode and mtime -------------------------------------------------------------
echo "-p keeps mode and mtime"
echo hello >"$root/p.txt"
chmod 0640 "$root/p.txt"
touch -d '2020-01-02 03:04:05.123456789' "$root/p.txt"
run 0 "fetch -p" "$rcat" -p -o "$local/p.txt" "$R/p.txt"
[ "$(mode "$local/p.txt")" = 640 ] || fail "fetch -p: mode $(mode "$local/p.txt"), want 640"
[ "$(mtime "$local/p.txt")" = "$(mtime "$root/p.txt")" ] ||
    fail "fetch -p: mtime $(mtime "$local/p.txt"), want $(mtime "$root/p.txt")"
run 0 "fetch without -p" "$rcat" -o "$local/np.txt" "$R/p.txt"
# as cp: the source's mode (0640) under the umask (022)
[ "$(mode "$local/np.txt")" = 640 ] || fail "fetch without -p: mode $(mode "$local/np.txt"), want 640"
[ "$(mtime "$local/np.txt")" = "$(mtime "$root/p.txt")" ] && fail "fetch without -p kept the mtime"
echo old >"$local/keep.txt"
chmod 0600 "$local/keep.txt"
run 0 "fetch over an existing file" "$rcat" -o "$local/keep.txt" "$R/p.txt" && same "$local/keep.txt" "$root/p.txt" "replace"
[ "$(mode "$local/keep.txt")" = 600 ] || fail "a replaced file lost its mode: $(mode "$local/keep.txt")"
echo world >"$local/q.txt"
chmod 0604 "$local/q.txt"
touch -d '2019-05-06 07:08:09.5' "$local/q.txt"
run 0 "store -p" "$rcat" -p --put "$local/q.txt" "$W/q.txt"
[ "$(mode "$store/q.txt")" = 604 ] || fail "store -p: mode $(mode "$store/q.txt"), want 604"
[ "$(mtime "$store/q.txt")" = "$(mtime "$local/q.txt")" ] ||
    fail "store -p: mtime $(mtime "$store/q.txt"), want $(mtime "$local/q.txt")"
run 0 "store without -p" "$rcat" --put "$local/q.txt" "$W/q2.txt"
[ "$(mode "$store/q2.txt")" = 604 ] || fail "store without -p: mode $(mode "$store/q2.txt"), want 604 (always sent)"
[ "$(mtime "$store/q2.txt")" = "$(mtime "$local/q.txt")" ] && fail "store without -p kept the mtime"

# ---- --stat and --ls ------------------------------------------------------------------
echo "--stat and --ls"
mkdir "$root/lsdir"
printf 'hello\n' >"$root/lsdir/a.txt"
chmod 0640 "$root/lsdir/a.txt"
touch -d '2020-01-02 03:04:05' "$root/lsdir/a.txt"
mkdir "$root/lsdir/sub"
chmod 0750 "$root/lsdir/sub"
touch -d '2021-02-03 04:05:06' "$root/lsdir/sub"
ln -s a.txt "$root/lsdir/ln"
touch -h -d '2022-03-04 05:06:07' "$root/lsdir/ln"
run 0 "--stat a file" "$rcat" --stat "$R/lsdir/a.txt"
want="lsdir/a.txt: regular file, 6 bytes, mode 0640 (-rw-r-----), modified 2020-01-02 03:04:05.000000000 +0000"
[ "$(cat "$tmp/out")" = "$want" ] || fail "--stat said '$(cat "$tmp/out")', want '$want'"
run 0 "--stat several" "$rcat" --stat "$R/lsdir/sub" "$R/lsdir/ln" "$R/"
grep -q '^lsdir/sub: directory, [0-9]* bytes, mode 0750 (drwxr-x---), modified 2021-02-03 04:05:06\.000000000 +0000$' "$tmp/out" ||
    fail "--stat of a directory: $(sed -n 1p "$tmp/out")"
grep -q '^lsdir/ln: symbolic link, 5 bytes, mode 0777 (lrwxrwxrwx), modified 2022-03-04 05:06:07\.000000000 +0000$' "$tmp/out" ||
    fail "--stat of a link (not followed): $(sed -n 2p "$tmp/out")"
grep -q '^/: directory, ' "$tmp/out" || fail "--stat of the root: $(sed -n 3p "$tmp/out")"
[ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "--stat of three printed $(wc -l <"$tmp/out") lines"
run 0 "--stat --json" "$rcat" --stat --json "$R/lsdir/a.txt"
want='{"Path":"lsdir/a.txt","Type":"file","Size":6,"Mode":"0640","MtimeSec":1577934245,"MtimeNsec":0}'
[ "$(cat "$tmp/out")" = "$want" ] || fail "--stat --json said '$(cat "$tmp/out")', want '$want'"
run 0 "--ls" "$rcat" --ls "$R/lsdir"
{
    printf '%s %12s %s %s\n' "lrwxrwxrwx" 5 "2022-03-04 05:06" ln
    printf '%s %12s %s %s\n' "-rw-r-----" 6 "2020-01-02 03:04" a.txt
    printf '%s %12s %s %s\n' "drwxr-x---" "$(stat -c %s "$root/lsdir/sub")" "2021-02-03 04:05" sub
} | sort -k5 >"$tmp/want"
cmp -s "$tmp/want" "$tmp/out" || { diff "$tmp/want" "$tmp/out"; fail "--ls lines"; }
run 0 "--ls --json" "$rcat" --ls --json "$R/lsdir"
json_valid "--ls --json" "$tmp/out"
[ "$(sed -n 1p "$tmp/out")" = '{"Name":"a.txt","Type":"file","Size":6,"Mode":"0640","MtimeSec":1577934245,"MtimeNsec":0}' ] ||
    fail "--ls --json first line: $(sed -n 1p "$tmp/out")"
[ "$(jget "$tmp/out" 2 Type) $(jget "$tmp/out" 3 Type)" = "link directory" ] || fail "--ls --json types"

# paging: 128 entries fill one reply; 129 and $many need more
for count in 128 129 $many; do
    d="$root/many$count"
    mkdir "$d"
    (cd "$d" && seq -f "f%g" 1 $((count - 1)) | xargs touch && mkdir "zdir")
    run 0 "--ls of $count entries" "$rcat" --ls "$R/many$count" || continue
    awk '{print $NF}' "$tmp/out" >"$tmp/names"
    ls -A "$d" | sort >"$tmp/want"
    cmp -s "$tmp/want" "$tmp/names" || fail "--ls of $count entries: $(wc -l <"$tmp/names") names, not all of them once, in order"
    tail -1 "$tmp/out" | grep -q '^d' || fail "--ls of $count entries: the directory is not shown as one"
done
run 0 "--ls --json of $many" "$rcat" --ls --json "$R/many$many" &&
    { [ "$(grep -c '^{"Name":"f[0-9]*","Type":"file","Size":0,' "$tmp/out")" -eq $((many - 1)) ] ||
        fail "--ls --json of $many: $(wc -l <"$tmp/out") lines"; }

# ---- escapes: every one refused with 3 ---------------------------------------------
echo "escapes from the root"
# refused_escape WHAT PATH-IN-URL [OPTIONS...]: exit 3, "outside the server's
# root", nothing from outside on stdout or stderr
refused_escape() {
    local what=$1 path=$2
    shift 2
    run 3 "escape $what" "$rcat" "$@" "$R/$path"
    grep -q "$marker" "$tmp/out" "$tmp/err" && fail "escape $what: the outside content came out"
    grep -q "^rcat: .*: outside the server's root\$" "$tmp/err" || fail "escape $what: stderr '$(head -1 "$tmp/err")'"
}
refused_escape '..' '..'
refused_escape '../secret' '../secret'
refused_escape 'a/../../x' 'a/../../x'
refused_escape 'a/../x (stays inside, still refused)' 'a/../a/x'
refused_escape '%2Fetc%2Fpasswd' '%2Fetc%2Fpasswd'
refused_escape '//etc/passwd' '/etc/passwd'
refused_escape 'link with an absolute target' 'evil_abs'
refused_escape 'link with a relative target out' 'evil_rel'
refused_escape 'link to a file out, two levels' 'evil_up'
refused_escape 'file below a link to a directory out' 'evil_dir/file'
refused_escape 'file below an absolute link to a directory out' 'evil_dir_abs/file'
refused_escape '-o file below a link out' 'evil_dir/file' -o "$local/escaped"
[ -e "$local/escaped" ] && fail "escape -o: a file was created"
refused_escape '--stat below a link out' 'evil_dir/file' --stat
refused_escape '--ls of a link out' 'evil_dir' --ls
refused_escape '--ls of ..' '..' --ls
for what in "../x" "out/stored" "out/"; do
    run 3 "store escape $what" "$rcat" --put "$root/s1" "$W/$what" && said "store escape $what" "outside the server's root"
done
holds "$outside" OUTSIDE-ONLY-ENTRY file
[ "$(cat "$outside/file")" = "$marker" ] || fail "a store changed a file outside the root"
run 0 "store onto a link at the name" "$rcat" --put "$root/p.txt" "$W/link_at_name"
[ -L "$store/link_at_name" ] && fail "store onto a link: the link is still there"
same "$store/link_at_name" "$root/p.txt" "store onto a link"
[ "$(cat "$outside/file")" = "$marker" ] || fail "store onto a link wrote through it, outside the root"

# a symlink swapped in while requests run: sub flips between a directory
# inside and links out (absolute and relative), with gaps between.
echo "escapes: a link swapped in during $race_runs fetches"
mkdir -p "$root/race/d" "$store/race/d"
echo "INSIDE CONTENT" >"$root/race/d/file"
echo "INSIDE CONTENT" >"$root/race/d/inside-only"
flip() { # DIR RELATIVE-LINK-TARGET
    local dir=$1 rel=$2
    while [ ! -e "$tmp/stop_flip" ]; do
        mv -T "$dir/d" "$dir/sub" 2>/dev/null
        mv -T "$dir/sub" "$dir/d" 2>/dev/null
        ln -s "$outside" "$dir/sub" 2>/dev/null
        rm -f "$dir/sub"
        mv -T "$dir/d" "$dir/sub" 2>/dev/null
        mv -T "$dir/sub" "$dir/d" 2>/dev/null
        ln -s "$rel" "$dir/sub" 2>/dev/null
        rm -f "$dir/sub"
        ln -s / "$dir/sub" 2>/dev/null
        rm -f "$dir/sub"
        echo x >>"$tmp/flips"
    done
}
spawn flip1 flip "$root/race" ../../outside
spawn flip2 flip "$store/race" ../../outside
ok=0 no=0 bad=0
for i in $(seq 1 "$race_runs"); do
    timeout 60 "$rcat" "$R/race/sub/file" >"$tmp/race.out" 2>"$tmp/race.err"
    rc=$?
    if grep -q "$marker" "$tmp/race.out" "$tmp/race.err"; then
        bad=$((bad + 1))
        fail "race run $i: OUTSIDE CONTENT SERVED (exit $rc)"
    elif [ "$rc" -eq 0 ] && [ "$(cat "$tmp/race.out")" = "INSIDE CONTENT" ]; then
        ok=$((ok + 1))
    elif [ "$rc" -eq 3 ] && [ ! -s "$tmp/race.out" ]; then
        no=$((no + 1))
    else
        bad=$((bad + 1))
        fail "race run $i: exit $rc, stdout '$(head -c 100 "$tmp/race.out")', stderr '$(cat "$tmp/race.err")'"
    fi
    if [ $((i % 4)) -eq 0 ]; then
        timeout 60 "$rcat" --ls "$R/race/sub" >"$tmp/race.out" 2>"$tmp/race.err"
        rc=$?
        grep -q OUTSIDE-ONLY-ENTRY "$tmp/race.out" && fail "race --ls $i: an outside directory was listed"
        [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || fail "race --ls $i: exit $rc: $(cat "$tmp/race.err")"
        timeout 60 "$rcat" --put "$root/s1" "$W/race/sub/stored$i" >/dev/null 2>"$tmp/race.err"
        rc=$?
        [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || fail "race --put $i: exit $rc: $(cat "$tmp/race.err")"
    fi
done
touch "$tmp/stop_flip"
await flip1 30 || fail "the flipper did not stop"
await flip2 30 || fail "the flipper did not stop"
flips=$(wc -l <"$tmp/flips")
note "fetches: $ok inside, $no refused, $bad wrong; $flips flips"
# The race was run, not merely started: the link was swapped many times
# while the fetches ran, and the server met the swapped states (refusals).
[ "$flips" -gt 0 ] || fail "race: the flipper never swapped the link"
[ "$no" -gt 0 ] || fail "race: no fetch met a swapped-in link in $race_runs runs"
[ $((ok + no + bad)) -eq "$race_runs" ] || fail "race: $((ok + no + bad)) outcomes for $race_runs fetches"
holds "$outside" OUTSIDE-ONLY-ENTRY file
[ "$(cat "$outside/file")" = "$marker" ] || fail "race: a store wrote outside the root"
ls -A / | grep -q '^stored' && fail "race: a store wrote into /"

# ---- read-only, --writable, --no-clobber --------------------------------------------
echo "read-only, --writable, --no-clobber"
run 3 "store on a read-only server" "$rcat" --put "$root/s1000" "$R/new.bin" && said "read-only" "rcat: new.bin: the server is read-only"
[ -e "$root/new.bin" ] && fail "a read-only server stored a file"
run 0 "store on a writable server" "$rcat" --put "$root/s1000" "$W/new.bin" && same "$store/new.bin" "$root/s1000" "--writable"
run 3 "store --no-clobber onto an existing name" "$rcat" --no-clobber --put "$root/s1" "$W/new.bin" &&
    said "store --no-clobber" "new.bin: already exists on server"
same "$store/new.bin" "$root/s1000" "store --no-clobber kept the old file"
run 0 "store --no-clobber to a new name" "$rcat" -n --put "$root/s1" "$W/new2.bin" && same "$store/new2.bin" "$root/s1" "store -n"
echo old >"$local/existing"
run 4 "fetch -o --no-clobber onto an existing file" "$rcat" --no-clobber -o "$local/existing" "$R/s1000" &&
    said "fetch --no-clobber" "rcat: $local/existing: file exists"
[ "$(cat "$local/existing")" = old ] || fail "fetch --no-clobber replaced the file"
run 0 "fetch -n to a new name" "$rcat" -n -o "$local/fresh" "$R/s1000" && same "$local/fresh" "$root/s1000" "fetch -n"

# ---- 20 clients at once -----------------------------------------------------------------
echo "20 clients at once"
mkdir "$root/conc" "$tmp/conc"
for i in $(seq 1 20); do
    head -c $((i * big / 40 + i)) /dev/urandom >"$root/conc/c$i"
done
for i in $(seq 1 20); do
    spawn "conc$i" timeout 60 "$rcat" -q -o "$tmp/conc/c$i" "$R/conc/c$i" 2>"$tmp/conc.err$i"
done
for i in $(seq 1 20); do
    await "conc$i" 70
    rc=$(status "conc$i")
    [ "$rc" = 0 ] || fail "client $i of 20: exit $rc: $(cat "$tmp/conc.err$i")"
    cmp -s "$root/conc/c$i" "$tmp/conc/c$i" || fail "client $i of 20: the copy differs"
done

# ---- --json events ---------------------------------------------------------------------------
echo "--json events"
j="$tmp/json"
run 4 "--json into a missing directory" "$rcat" --json -o "$tmp/jdl/" "$R/s1000"
mkdir "$tmp/jdl"
# rcat's own PID, for INIT's Pid: the shell's PID, which exec hands to rcat
run 0 "--json fetch of two" sh -c 'echo $$ >"$1"; exec "$2" --json -o "$3" "$4" "$5"' \
    sh "$tmp/json.pid" "$rcat" "$tmp/jdl/" "$R/s1000" "$R/s$big"
cp "$tmp/err" "$j"
json_valid "--json fetch" "$j"
[ -s "$tmp/out" ] && fail "--json fetch -o wrote to stdout"
order=$(jorder "$j")
[[ "$order" =~ ^IIS(NT*)?PISNT*PD$ ]] || fail "--json fetch: events in order $order, want INIT, (INIT SESSION [NOTIFICATION STATS*] STOP) twice, DONE"
same "$tmp/jdl/s$big" "$root/s$big" "--json fetch"
n=$(jline "$j" INIT)
jis "INIT" "$j" "$n" Version "rcat $("$rcat" --version | awk '{print $3}')"
jis "INIT" "$j" "$n" Operation Fetch
jis "INIT" "$j" "$n" Operands 2
jis "INIT" "$j" "$n" Destination "$tmp/jdl/"
jis "INIT" "$j" "$n" Pid "$(cat "$tmp/json.pid")"
n=$(jline "$j" SESSION)
session=$(jget "$j" "$n" SessionId)
echo "$session" | grep -Eqx '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}' ||
    fail "SESSION: SessionId '$session' is not a UUID"
jis "SESSION" "$j" "$n" Host 127.0.0.1
jis "SESSION" "$j" "$n" Port "$ro_port"
# stop_fields LINE INDEX FILE DEST SIZE: a successful fetch's STOP
for k in 1 2; do
    n=$(jline "$j" STOP "$k")
    f=$([ "$k" = 1 ] && echo s1000 || echo "s$big")
    size=$(stat -c %s "$root/$f")
    jis "STOP $k" "$j" "$n" SessionId "$session"
    jis "STOP $k" "$j" "$n" Direction Receive
    jis "STOP $k" "$j" "$n" File "$f"
    jis "STOP $k" "$j" "$n" Destination "$tmp/jdl/$f"
    jis "STOP $k" "$j" "$n" ArgIndex "$k"
    jis "STOP $k" "$j" "$n" Size "$size"
    jis "STOP $k" "$j" "$n" FileBytes "$size"
    jis "STOP $k" "$j" "$n" Code 0
    jis "STOP $k" "$j" "$n" Result OK
    jis "STOP $k" "$j" "$n" Checksum "$(xxhsum -H2 "$root/$f" | cut -d' ' -f1)"
    jnum "STOP $k" "$j" "$n" Elapsedusec BytesPerSec Retransmissions Duplicates
    e=$(jget "$j" "$n" Elapsedusec) r=$(jget "$j" "$n" BytesPerSec)
    [ "$e" -gt 0 ] 2>/dev/null && { awk -v b="$size" -v e="$e" -v r="$r" 'BEGIN { x = b * 1e6 / e; exit !(r >= x - 1 && r <= x + 1) }' ||
        fail "STOP $k: BytesPerSec $r is not FileBytes/Elapsedusec ($size/$e)"; }
done
n=$(jline "$j" DONE)
jis "DONE" "$j" "$n" TransfersAttempted 2
jis "DONE" "$j" "$n" TransfersPassed 2
jis "DONE" "$j" "$n" TransfersFailed 0
jis "DONE" "$j" "$n" FileBytes $((1000 + big))
jis "DONE" "$j" "$n" ExitCode 0
jnum "DONE" "$j" "$n" Elapsedusec

# a failure among successes: ERROR before its STOP, DONE with the first code
run 3 "--json with a missing file" "$rcat" --json "$R/missing" "$R/s1000"
cp "$tmp/err" "$j"
json_valid "--json failure" "$j"
same "$tmp/out" "$root/s1000" "--json: the good file after the missing one"
order=$(jorder "$j")
[[ "$order" =~ ^IEPIS(NT*)?PD$ ]] || fail "--json failure: events $order, want INIT ERROR STOP (INIT SESSION [NOTIFICATION] STOP) DONE"
n=$(jline "$j" ERROR)
jis "ERROR" "$j" "$n" Code 3
jis "ERROR" "$j" "$n" Error RCAT_NOT_FOUND
jis "ERROR" "$j" "$n" File missing
jis "ERROR" "$j" "$n" ArgIndex 1
jis "ERROR" "$j" "$n" Description "not found on server"
n=$(jline "$j" STOP 1)
jis "STOP (failed)" "$j" "$n" Code 3
jis "STOP (failed)" "$j" "$n" Result RCAT_NOT_FOUND
jis "STOP (failed)" "$j" "$n" Destination -
jis "STOP (failed)" "$j" "$n" FileBytes 0
n=$(jline "$j" STOP 2)
jis "STOP (after)" "$j" "$n" ArgIndex 2
jis "STOP (after)" "$j" "$n" Result OK
n=$(jline "$j" DONE)
jis "DONE (failure)" "$j" "$n" TransfersAttempted 2
jis "DONE (failure)" "$j" "$n" TransfersPassed 1
jis "DONE (failure)" "$j" "$n" TransfersFailed 1
jis "DONE (failure)" "$j" "$n" ExitCode 3

# a store from a slow pipe: STATS while it runs, counts that only grow
(for i in 1 2 3 4 5 6 7 8 9 10; do
    head -c 100000 "$root/s1048576"
    sleep 0.15
done) >"$tmp/slow.want" # the same bytes, for comparing
run 0 "--json slow store" sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do head -c 100000 "$1"; sleep 0.15; done |
    "$2" --json --put - "$3"' sh "$root/s1048576" "$rcat" "$W/slow.bin"
cp "$tmp/err" "$j"
json_valid "--json store" "$j"
same "$store/slow.bin" "$tmp/slow.want" "--json slow store"
order=$(jorder "$j")
[[ "$order" =~ ^IISNT+PD$ ]] || fail "--json store: events $order, want INIT INIT SESSION NOTIFICATION STATS+ STOP DONE"
jis "INIT (store)" "$j" 1 Operation Store
jis "INIT (store)" "$j" 1 Destination "$W/slow.bin"
last=0
for k in $(seq 1 "$(grep -c '"Type":"STATS"' "$j")"); do
    n=$(jline "$j" STATS "$k")
    jis "STATS $k" "$j" "$n" SessionId "$(jget "$j" 2 SessionId)"
    jis "STATS $k" "$j" "$n" Direction Send
    jis "STATS $k" "$j" "$n" File -
    jis "STATS $k" "$j" "$n" Destination slow.bin
    jis "STATS $k" "$j" "$n" ArgIndex 1
    jnum "STATS $k" "$j" "$n" FileBytes Elapsedusec BytesPerSec Retransmissions
    b=$(jget "$j" "$n" FileBytes)
    [ "${b:-0}" -ge "$last" ] 2>/dev/null && [ "${b:-0}" -le 1000000 ] || fail "STATS $k: FileBytes $b after $last"
    last=${b:-0}
done
n=$(jline "$j" STOP)
jis "STOP (store)" "$j" "$n" FileBytes 1000000
jis "STOP (store)" "$j" "$n" Result OK
jnum "STOP (store)" "$j" "$n" Retransmissions Duplicates

# cannot reach: no SESSION
start_server gone --listen 127.0.0.1:0 --root "$root"
gone_port=$port
stop_server gone
run 2 "--json unreachable" "$rcat" --json --timeout 1 "rcat://127.0.0.1:$gone_port/s1"
cp "$tmp/err" "$j"
json_valid "--json unreachable" "$j"
[ "$(jorder "$j")" = IEPD ] || fail "--json unreachable: events $(jorder "$j"), want INIT ERROR STOP DONE"
jis "ERROR (unreachable)" "$j" 2 Error RPC2_ECONNREFUSED # the kernel says so: no 1 s wait
jis "ERROR (unreachable)" "$j" 2 Code 2
jis "ERROR (unreachable)" "$j" 2 File s1
jis "DONE (unreachable)" "$j" 4 ExitCode 2

# usage: nothing attempted
run 1 "--json usage" "$rcat" --json --bogus "$R/s1"
cp "$tmp/err" "$j"
json_valid "--json usage" "$j"
[ "$(jorder "$j")" = IED ] || fail "--json usage: events $(jorder "$j"), want INIT ERROR DONE"
jis "ERROR (usage)" "$j" 2 Error USAGE
jis "ERROR (usage)" "$j" 2 Code 1
jis "DONE (usage)" "$j" 3 TransfersAttempted 0
jis "DONE (usage)" "$j" 3 ExitCode 1

# names that JSON must escape: a quote, a backslash, a control character, a
# byte that is not UTF-8
run 3 "--json escapes" "$rcat" --json "$R/q%22b%5Cc%01d%FFe"
cp "$tmp/err" "$j"
json_valid "--json escapes" "$j"
jis "ERROR (escapes)" "$j" "$(jline "$j" ERROR)" File 'q\"b\\c\u0001d\ufffde'
jis "STOP (escapes)" "$j" "$(jline "$j" STOP)" File 'q\"b\\c\u0001d\ufffde'

# a local failure: ERROR (code 4, the local name) before its STOP
run 4 "--json local failure" "$rcat" --json -o "$local/nodir/x" "$R/s1000"
cp "$tmp/err" "$j"
json_valid "--json local failure" "$j"
# (the library refused the descriptor: no transfer began, rcat's own ERROR and STOP)
[ "$(jorder "$j")" = IEPD ] || fail "--json local failure: events $(jorder "$j"), want INIT ERROR STOP DONE"
jis "ERROR (local)" "$j" 2 Code 4
jis "ERROR (local)" "$j" 2 File "$local/nodir/x"
jis "STOP (local)" "$j" 3 Code 4
jis "ERROR (local)" "$j" 2 Error RPC2_ENOENT
jis "STOP (local)" "$j" 3 Result RPC2_ENOENT
jis "DONE (local)" "$j" 4 ExitCode 4

# two servers in one run: a session each
run 0 "--json from two servers" "$rcat" --json "$R/s1" "$W/s1" "$R/s1000"
cp "$tmp/err" "$j"
json_valid "--json two servers" "$j"
[[ "$(jorder "$j")" =~ ^I(ISN?P){3}D$ ]] || fail "--json two servers: events $(jorder "$j"), want INIT (INIT SESSION [NOTIFICATION] STOP) x3 DONE"
s1=$(jget "$j" "$(jline "$j" SESSION 1)" SessionId) s2=$(jget "$j" "$(jline "$j" SESSION 2)" SessionId)
[ -n "$s1" ] && [ "$s1" != "$s2" ] || fail "--json two servers: one SessionId for both"
jis "SESSION 1" "$j" "$(jline "$j" SESSION 1)" Port "$ro_port"
jis "SESSION 2" "$j" "$(jline "$j" SESSION 2)" Port "$rw_port"
jis "SESSION 3 (back to the first server)" "$j" "$(jline "$j" SESSION 3)" SessionId "$s1"
jis "STOP 1" "$j" "$(jline "$j" STOP 1)" SessionId "$s1"
jis "STOP 2" "$j" "$(jline "$j" STOP 2)" SessionId "$s2"
jis "STOP 3 (back to the first server)" "$j" "$(jline "$j" STOP 3)" SessionId "$s1"
cat "$root/s1" "$store/s1" "$root/s1000" | cmp -s - "$tmp/out" || fail "--json two servers: stdout"

# to stdout: the file on stdout, only events on stderr
run 0 "--json to stdout" "$rcat" --json "$R/s65537" && same "$tmp/out" "$root/s65537" "--json to stdout"
json_valid "--json to stdout" "$tmp/err"

# ---- exit codes, each with a message naming the file ------------------------------------
echo "exit codes"
# 1: usage; nothing attempted
run 1 "bad option" "$rcat" --bogus "$R/s1" && said "bad option" "--bogus"
run 1 "bad URL (port)" "$rcat" -o "$local/u1" "$R/s1" "rcat://127.0.0.1:99999/x" &&
    said "bad URL" "rcat://127.0.0.1:99999/x"
[ -e "$local/u1" ] && fail "usage error: the good operand was fetched anyway"
run 1 "bad URL (escape)" "$rcat" "$R/bad%zzescape" && said "bad escape" "bad%zzescape"
run 1 "bad URL (escaped NUL)" "$rcat" "$R/nul%00" && said "escaped NUL" "nul%00"
run 1 "no operand" "$rcat"
run 1 "-q with -v" "$rcat" -q -v "$R/s1"
run 1 "--stat with -o" "$rcat" --stat -o x "$R/s1"
run 1 "--put with two remotes" "$rcat" --put "$root/s1" "$W/a" "$W/b"
run 1 "bad --timeout" "$rcat" --timeout 0 "$R/s1"
run 1 "bad --offset" "$rcat" --offset 12Q "$R/s1" && said "bad --offset" "12Q"
run 1 "local operand" "$rcat" ./local/file && said "local operand" "./local/file"
# 2: cannot reach
run 2 "nothing listening" "$rcat" --timeout 1 "rcat://127.0.0.1:$gone_port/some/file" &&
    said "nothing listening" "rcat: some/file: connection refused by 127.0.0.1 port $gone_port"
run 2 "nothing listening, the next operand fails at once" "$rcat" --timeout 1 "rcat://127.0.0.1:$gone_port/a" "rcat://127.0.0.1:$gone_port/b" &&
    said "server lost" "rcat: b: "
run 2 "--put to nothing" "$rcat" --timeout 1 --put "$root/s1" "rcat://127.0.0.1:$gone_port/up" && said "--put to nothing" "rcat: up: "
run 2 "--ls of nothing" "$rcat" --timeout 1 --ls "rcat://127.0.0.1:$gone_port/d" && said "--ls to nothing" "rcat: d: "
start_server frozen --listen 127.0.0.1:0 --root "$root"
frozen_port=$port
signal STOP frozen # bound, but silent
run 2 "a silent server" "$rcat" --timeout 1 "rcat://127.0.0.1:$frozen_port/s1" &&
    said "a silent server" "rcat: s1: no answer from 127.0.0.1 port $frozen_port (silent for 1 s)"
signal CONT frozen
stop_server frozen
# 3: refused
run 3 "not found" "$rcat" "$R/no/such/file" && said "not found" "rcat: no/such/file: not found on server"
run 3 "not found, -o" "$rcat" -o "$local/nf" "$R/nf" && said "not found -o" "rcat: nf: not found on server"
[ -e "$local/nf" ] && fail "not found: -o created the file"
echo old >"$local/old"
run 3 "not found, -o onto a file" "$rcat" -o "$local/old" "$R/nf"
[ "$(cat "$local/old")" = old ] || fail "a failed fetch changed the -o file"
run 3 "store onto a directory" "$rcat" --put "$root/s1" "$W/race" && said "store onto a directory" "rcat: race: is a directory on server"
run 3 "store into a missing directory" "$rcat" --put "$root/s1" "$W/nodir/x" && said "store into a missing directory" "rcat: nodir/x: not found on server"
run 3 "a bad component" "$rcat" "$R/$(printf 'x%.0s' $(seq 1 256))" && said "a bad component" "bad path"
run 3 "outside the root" "$rcat" "$R/../x" && said "outside" "rcat: ../x: outside the server's root"
run 3 "read-only" "$rcat" --put "$root/s1" "$R/ro" && said "read-only" "rcat: ro: the server is read-only"
run 3 "a directory" "$rcat" "$R/lsdir" && said "a directory" "rcat: lsdir: is a directory on server"
run 3 "--ls of a file" "$rcat" --ls "$R/s1" && said "--ls of a file" "rcat: s1: "
run 3 "--stat of nothing" "$rcat" --stat "$R/nothing" && said "--stat of nothing" "rcat: nothing: not found on server"
mkfifo "$root/fifo"
run 3 "a FIFO on the server (refused, not waited on)" "$rcat" "$R/fifo" && said "a FIFO" "rcat: fifo: permission denied on server"
run 3 "first failure's code" "$rcat" "$R/missing" "$R/s1" "$R/../x"
# 4: local
run 4 "stdout is /dev/full" sh -c '"$1" "$2" >/dev/full' sh "$rcat" "$R/s1000" && said "/dev/full" "rcat: standard output: no space left on device"
run 4 "big to stdout /dev/full" sh -c '"$1" "$2" >/dev/full' sh "$rcat" "$R/s$big" && said "/dev/full" "standard output"
run 4 "-o /dev/full" "$rcat" -o /dev/full "$R/s65537" && said "-o /dev/full" "rcat: /dev/full: no space left on device"
run 4 "-o in a missing directory" "$rcat" -o "$local/nodir/x" "$R/s1" && said "-o missing dir" "rcat: $local/nodir/x: "
run 4 "-o below a file" "$rcat" -o "$local/s1/x" "$R/s1" && said "-o below a file" "rcat: $local/s1/x: "
run 4 "-o DIR/ missing" "$rcat" -o "$local/nodir/" "$R/s1" "$R/s0" && said "-o DIR/ missing" "rcat: $local/nodir/: "
run 4 "--put of a missing file" "$rcat" --put "$local/none" "$W/none" && said "--put missing" "rcat: $local/none: "
run 4 "--put of a directory" "$rcat" --put "$local" "$W/dir" && said "--put a directory" "rcat: $local: is a directory"
if [ "$(id -u)" != 0 ]; then
    mkdir "$tmp/ro"
    chmod 0555 "$tmp/ro"
    run 4 "-o in an unwritable directory" "$rcat" -o "$tmp/ro/x" "$R/s1" && said "unwritable" "rcat: $tmp/ro/x: permission denied"
    holds "$tmp/ro"
else
    note "running as root: an unwritable directory is tested as a missing one and one below a file"
fi
ls -A "$local" | grep '^\.' && fail "a failed -o left a temporary in $local"

# ---- IPv6 ------------------------------------------------------------------------------
echo "IPv6"
if grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null; then
    start_server v6 --listen '[::1]:0' --root "$root"
    v6_port=$port
    run 0 "fetch over IPv6" "$rcat" "rcat://[::1]:$v6_port/s65537" && same "$tmp/out" "$root/s65537" "IPv6 fetch"
    run 0 "fetch over IPv6, scp form" "$rcat" -P "$v6_port" -o "$local/v6" "[::1]:s1048576" &&
        same "$local/v6" "$root/s1048576" "IPv6 scp form"
    run 0 "--json over IPv6" "$rcat" --json --stat "rcat://[::1]:$v6_port/s1"
    grep -q "\"Host\":\"::1\",\"Port\":$v6_port" "$tmp/err" || fail "IPv6 SESSION: $(grep SESSION "$tmp/err")"
    run 3 "escape over IPv6" "$rcat" "rcat://[::1]:$v6_port/evil_dir/file"
    stop_server v6
else
    echo "RPC2-SKIP: test_rcat.sh IPv6: no ::1 on this machine"
    if [ -n "${RPC2_TEST_STRICT:-}" ] && ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then
        fail "IPv6 cases skipped on a machine with ::1"
    fi
fi

# ---- secure connections (issue 6) ----------------------------------------------
# Key files made by rcat --genkey; an rcatd that wants auth at least. Fetches
# and stores at auth and encrypt are byte-identical; a wrong secret, an
# unknown identity and a level below the minimum are refused with exit 3 and
# a message that says which; key files others may read are refused at both
# ends; no secret ever reaches a log, a message or an event.
echo "secure connections"
keys="$tmp/keys"
secroot="$tmp/secroot"
mkdir -m 700 "$keys"
mkdir "$secroot"
cp "$root/s$big" "$root/s65537" "$secroot/"
: >"$tmp/sec.stderr" # every secure run's stderr, searched for secrets at the end
# secure_run WANT WHAT CMD...: run, keeping its stderr for the secret search.
secure_run() {
    run "$@"
    local rc=$?
    cat "$tmp/err" >>"$tmp/sec.stderr"
    return $rc
}

run 0 "--genkey" "$rcat" --genkey && quiet "--genkey"
alice=$(cat "$tmp/out")
[[ "$alice" =~ ^[A-Za-z0-9+/]{43}=$ ]] || fail "--genkey printed '$alice', want 44 base64 characters"
[ "$(wc -l <"$tmp/out")" = 1 ] && [ "$(wc -c <"$tmp/out")" = 45 ] ||
    fail "--genkey printed more than the secret and a newline"
(umask 077 && cp "$tmp/out" "$keys/alice.key")
run 0 "--genkey again" "$rcat" --genkey
wrong=$(cat "$tmp/out")
[ "$wrong" != "$alice" ] || fail "--genkey printed the same secret twice"
(umask 077 && cp "$tmp/out" "$keys/wrong.key")
(umask 077 && printf '# test identities\nalice %s\n\nbob   %s\n' "$alice" "$wrong" >"$keys/server.keys")
cp "$keys/alice.key" "$keys/open.key"
cp "$keys/server.keys" "$keys/open.keys"
chmod 0644 "$keys/open.key" "$keys/open.keys"

# usage: above none, both --identity and --key-file; no secret on the command line
run 1 "--security auth alone" "$rcat" --security auth "$R/s1" && said "--security alone" "--identity"
run 1 "--key-file without --identity" "$rcat" --key-file "$keys/alice.key" "$R/s1"
run 1 "--identity without --key-file" "$rcat" --identity alice --security encrypt "$R/s1"
run 1 "a bad level" "$rcat" --security strong "$R/s1" && said "a bad level" "strong"
run 1 "--genkey with an operand" "$rcat" --genkey "$R/s1"
run 1 "rcatd --min-security without --keys" "$rcatd" --listen 127.0.0.1:0 --root "$root" --min-security auth &&
    said "rcatd --min-security without --keys" "--keys"

# key files others may read: refused at both ends, the file named
secure_run 4 "rcat with a 0644 key file" "$rcat" --identity alice --key-file "$keys/open.key" "$R/s1" &&
    said "rcat 0644 key file" "rcat: $keys/open.key: " && said "rcat 0644 key file" "group or others"
[ -s "$tmp/out" ] && fail "rcat with a 0644 key file wrote to stdout"
secure_run 4 "rcat --json with a 0644 key file" "$rcat" --json --identity alice --key-file "$keys/open.key" "$R/s1"
json_valid "--json 0644 key file" "$tmp/err" && {
    n=$(jline "$tmp/err" ERROR)
    jis "ERROR (key file)" "$tmp/err" "$n" Code 4
    jis "ERROR (key file)" "$tmp/err" "$n" Error RPC2_EACCES
    jis "ERROR (key file)" "$tmp/err" "$n" File "$keys/open.key"
}
secure_run 4 "rcat with a missing key file" "$rcat" --identity alice --key-file "$keys/none.key" "$R/s1" &&
    said "missing key file" "$keys/none.key"
secure_run 1 "rcatd with a 0644 key file" "$rcatd" --listen 127.0.0.1:0 --root "$root" --keys "$keys/open.keys" &&
    said "rcatd 0644 key file" "$keys/open.keys" && said "rcatd 0644 key file" "group or others"
grep -q listening "$tmp/out" && fail "rcatd with a 0644 key file started"

start_server sec --listen 127.0.0.1:0 --root "$secroot" --writable --keys "$keys/server.keys" --min-security auth
S="rcat://127.0.0.1:$port"
as_alice=(--identity alice --key-file "$keys/alice.key")
for level in auth encrypt; do
    secure_run 0 "fetch at $level" "$rcat" "${as_alice[@]}" --security $level "$S/s$big" &&
        same "$tmp/out" "$root/s$big" "fetch at $level"
    secure_run 0 "fetch -o at $level" "$rcat" "${as_alice[@]}" --security $level -o "$local/sec.$level" "$S/s65537" &&
        same "$local/sec.$level" "$root/s65537" "fetch -o at $level"
    secure_run 0 "store at $level" "$rcat" "${as_alice[@]}" --security $level --put "$root/s$big" "$S/stored.$level" &&
        same "$secroot/stored.$level" "$root/s$big" "store at $level"
    secure_run 0 "--stat at $level" "$rcat" "${as_alice[@]}" --security $level --stat "$S/s65537"
done
secure_run 0 "the level follows --key-file (encrypt)" "$rcat" -v "${as_alice[@]}" "$S/s65537" &&
    same "$tmp/out" "$root/s65537" "fetch at the default level"
for level in auth encrypt; do
    grep -q " alice $level FETCH s$big [0-9]* B .* ok\$" "$tmp/sec.log" ||
        fail "rcatd's call line lacks the identity and level $level: $(grep " FETCH s$big " "$tmp/sec.log" | head -1)"
done

# refusals: which one, exit 3; the same message for a wrong secret and an unknown identity
secure_run 3 "a wrong secret" "$rcat" --identity alice --key-file "$keys/wrong.key" "$S/s1" &&
    said "a wrong secret" "authentication failed: unknown identity or wrong secret"
secure_run 3 "an unknown identity" "$rcat" --identity mallory --key-file "$keys/alice.key" "$S/s65537" &&
    said "an unknown identity" "authentication failed: unknown identity or wrong secret"
secure_run 3 "--security none against min-security auth" "$rcat" --security none "$S/s65537" &&
    said "level below the minimum" "security level refused by the server"
secure_run 3 "--security none with a key" "$rcat" "${as_alice[@]}" --security none --put "$root/s1" "$S/none" &&
    said "level none with a key" "security level refused by the server"
[ -e "$secroot/none" ] && fail "a store refused for its level created the file"
secure_run 3 "--json, a wrong secret" "$rcat" --json --identity alice --key-file "$keys/wrong.key" "$S/s1"
json_valid "--json wrong secret" "$tmp/err" && {
    n=$(jline "$tmp/err" ERROR)
    jis "ERROR (auth)" "$tmp/err" "$n" Code 3
    jis "ERROR (auth)" "$tmp/err" "$n" Error RPC2_EAUTH
    jis "STOP (auth)" "$tmp/err" "$(jline "$tmp/err" STOP)" Result RPC2_EAUTH
}
secure_run 3 "--json, a level refused" "$rcat" --json --security none "$S/s1"
json_valid "--json level refused" "$tmp/err" &&
    jis "ERROR (level)" "$tmp/err" "$(jline "$tmp/err" ERROR)" Error RPC2_ESECURITY

# SIGHUP reloads the keys: bob's line removed, bob is refused, alice is not
(umask 077 && printf 'alice %s\n' "$alice" >"$keys/server.keys.new") && mv "$keys/server.keys.new" "$keys/server.keys"
secure_run 0 "bob before the reload" "$rcat" --identity bob --key-file "$keys/wrong.key" "$S/s65537"
signal HUP sec
for _ in $(seq 1 100); do
    grep -q "keys reloaded" "$tmp/sec.log" && break
    sleep 0.1
done
grep -q "keys reloaded" "$tmp/sec.log" || fail "SIGHUP: rcatd did not say it reloaded its keys"
secure_run 3 "bob after the reload" "$rcat" --identity bob --key-file "$keys/wrong.key" "$S/s65537" &&
    said "bob revoked" "authentication failed"
secure_run 0 "alice after the reload" "$rcat" "${as_alice[@]}" "$S/s65537"
stop_server sec

# the counters, and no secret anywhere
grep -q "stats (exit) .* rejected_auth=[0-9]* rejected_replay=[0-9]* binds_refused_auth=[0-9]*" "$tmp/sec.log" ||
    fail "rcatd's stats line lacks rejected_auth, rejected_replay or binds_refused_auth"
refused=$(sed -n 's/.*stats (exit) .* binds_refused_auth=\([0-9]*\).*/\1/p' "$tmp/sec.log")
[ "${refused:-0}" -ge 6 ] || fail "binds_refused_auth=$refused, want at least the 6 refusals made"
for secret in "$alice" "$wrong"; do
    grep -qF -- "$secret" "$tmp/sec.log" "$tmp/sec.err" && fail "a secret is in rcatd's log"
    grep -qF -- "$secret" "$tmp/sec.stderr" && fail "a secret is in rcat's standard error"
done
grep -qF -- "$alice" "$tmp/sec.out" && fail "a secret is on rcatd's standard output"

# ---- the stalled stores, judged -------------------------------------------------
# The server gives a silent client up after its retries (some seconds); its
# log line for each STORE says when it is over.
echo "stores from stalled pipes: judged"
if ! await term.bin $((20 - (SECONDS - term_sent))); then
    fail "SIGTERM during a store from a silent pipe: rcat still running 20 s later"
    signal KILL term.bin
else
    rc=$(status term.bin)
    [ "$rc" = 143 ] || fail "SIGTERM during a store: exit status $rc, want 143"
    json_valid "SIGTERM during a store" "$tmp/term.bin.err" &&
        { grep -q '"Type":"STOP",.*"Result":"INTERRUPTED"}$' "$tmp/term.bin.err" ||
            fail "SIGTERM during a store: no STOP INTERRUPTED"; } &&
        { grep -q '"Type":"DONE",.*"ExitCode":143}$' "$tmp/term.bin.err" ||
            fail "SIGTERM during a store: no DONE with ExitCode 143"; }
fi
await pause 60
pause_rc=$(status pause)
if [ "$pause_rc" != 0 ]; then
    sed 's/^/    /' "$tmp/pause.err"
    fail "a store from a pipe that pauses 15 s: exit status $pause_rc, want 0"
else
    same "$tmp/kill/pause.bin" "$tmp/pause.want" "a store from a pipe that pauses"
fi
await stalled_reader 90
rc=$(cat "$tmp/stalled.rc" 2>/dev/null)
if [ "$rc" != 0 ]; then
    sed 's/^/    /' "$tmp/stalled.err"
    fail "a fetch into a pipe whose reader pauses 30 s: exit status $rc, want 0"
else
    same "$tmp/stalled" "$root/s1048576" "a fetch into a pipe whose reader pauses"
fi
signal TERM victim.bin.writer # their pipes close
signal TERM term.bin.writer
for name in victim.bin term.bin; do
    for _ in $(seq 1 600); do
        grep -q " STORE $name " "$tmp/kill.log" && break
        [ -e "$tmp/kill/$name" ] && break
        sleep 0.1
    done
    grep " STORE $name " "$tmp/kill.log" | sed 's/^/  rcatd: /'
    grep -q " STORE $name .* ok\$" "$tmp/kill.log" && fail "stalled store $name: the server says it succeeded"
    grep -q " STORE $name " "$tmp/kill.log" || fail "stalled store $name: the server did not give the transfer up within 60 s"
done
for _ in $(seq 1 50); do
    [ -z "$(ls -A "$tmp/kill" | grep -v '^pause\.bin$')" ] && break
    sleep 0.1
done
if [ "$pause_rc" = 0 ]; then holds "$tmp/kill" pause.bin; else holds "$tmp/kill"; fi
stop_server kill

# ---- the end ------------------------------------------------------------------------------
stop_server ro
stop_server rw
if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed:$failed"
    exit 1
fi
echo "all rcat checks passed"
