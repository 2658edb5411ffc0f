#!/bin/bash
# test_hooks.sh - rcatd's post-store commands (rcatd --hooks, issue 15 item
# 2), with real rcatd and rcat processes on loopback:
#  - success: the command saw the file's path (absolute and relative), size,
#    checksum and the identity that stored it, and ran once;
#  - a file stored in ranges (--put --split): the command runs once, for the
#    final name, with the same arguments and variables, never for the
#    temporary; a split put that fails runs none; a failing command fails it;
#  - an exit code other than the expected one: rcat exits 3 and says the
#    server's command failed, and the file stays (it was delivered whole);
#  - the time limit: a command that sleeps is killed (its process group)
#    near its limit, and the call fails;
#  - a file name full of shell metacharacters (and a newline) reaches the
#    command untouched, and nothing runs what it says;
#  - the server is not blocked: with one worker and a slow command running,
#    another client's STAT, STORE and FETCH are answered;
#  - SIGHUP reloads the file; a hooks file others may write is refused.
set -u
umask 022
export TZ=UTC LC_ALL=C
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_hooks.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

root="$tmp/root"
mkdir -p "$root/in" "$root/fail" "$root/slow" "$root/wait" "$root/odd" "$tmp/bin"
(umask 077 && "$rcat" --genkey >"$tmp/alice.key") || fatal "rcat --genkey"
(umask 077 && echo "alice $(cat "$tmp/alice.key")" >"$tmp/server.keys")

# record: every argument, NUL-terminated, then the RCAT_ variables, to $tmp/seen.N
cat >"$tmp/bin/record" <<'SH'
#!/bin/sh
n=$(ls "$TMPDIR_HOOKS"/seen.* 2>/dev/null | wc -l)
f="$TMPDIR_HOOKS/seen.$n"
printf '%s\0' "$@" >"$f.args"
env | grep '^RCAT_' | sort >"$f.env"
echo "recorded $# arguments"
echo "a word to stderr" >&2
exit "${1#exit=}"
SH
cat >"$tmp/bin/sleepy" <<'SH'
#!/bin/sh
echo "sleepy $$ starts"
exec sleep "$1"
SH
# waits for the test to say "go" (a file), so what it proves holds at any load
cat >"$tmp/bin/gated" <<'SH'
#!/bin/sh
echo "gated $$ starts"
while [ ! -e "$1" ]; do sleep 0.1; done
SH
chmod +x "$tmp/bin/record" "$tmp/bin/sleepy" "$tmp/bin/gated"
export TMPDIR_HOOKS="$tmp"

hooks="$tmp/hooks"
cat >"$hooks" <<EOF
# PATTERN  IDENTITY  EXIT  TIME-LIMIT  COMMAND [ARG...]
in/?*      alice     0     30s         $tmp/bin/record exit=0 %p %r %s %c %i
fail/?*    *         0     30s         $tmp/bin/record exit=3
slow/?*    *         0     2s          $tmp/bin/sleepy 31.7
wait/?*    *         0     60s         $tmp/bin/gated $tmp/gate
odd/?*     *         0     30s         $tmp/bin/record exit=0 %r
EOF
chmod 644 "$hooks"
as_alice="--identity alice --key-file $tmp/alice.key --security auth"

start_server hooks "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable --workers 1 \
    --keys "$tmp/server.keys" --hooks "$hooks"
R="127.0.0.1"
P="-P $port"

# ---- success ---------------------------------------------------------------------
echo "success"
head -c 100000 /dev/urandom >"$tmp/data"
if run 0 "a store with a hook" "$rcat" $P $as_alice --checksum sha256 --put "$tmp/data" "$R:in/data.bin"; then
    same "$tmp/data" "$root/in/data.bin" "stored"
    [ -e "$tmp/seen.0.args" ] || fail "the command did not run"
    [ -e "$tmp/seen.1.args" ] && fail "the command ran more than once"
    sum=$(sha256sum "$tmp/data" | cut -d' ' -f1)
    printf '%s\0' exit=0 "$(realpath "$root")/in/data.bin" in/data.bin 100000 "sha256:$sum" alice \
        >"$tmp/want.args"
    cmp -s "$tmp/want.args" "$tmp/seen.0.args" ||
        fail "the command's arguments: $(tr '\0' ' ' <"$tmp/seen.0.args")"
    grep -qx "RCAT_IDENTITY=alice" "$tmp/seen.0.env" || fail "RCAT_IDENTITY: $(cat "$tmp/seen.0.env")"
    grep -qx "RCAT_SIZE=100000" "$tmp/seen.0.env" || fail "RCAT_SIZE"
    grep -qx "RCAT_RELPATH=in/data.bin" "$tmp/seen.0.env" || fail "RCAT_RELPATH"
    grep -qx "RCAT_SECURITY=auth" "$tmp/seen.0.env" || fail "RCAT_SECURITY"
    await_log "$tmp/hooks.log" "stdout: recorded 6 arguments" 10 || fail "its stdout was not logged"
    await_log "$tmp/hooks.log" "stderr: a word to stderr" 10 || fail "its stderr was not logged"
fi
# another identity's store under in/ matches no line: no command
rm -f "$tmp"/seen.*
run 0 "an anonymous store under in/" "$rcat" $P --put "$tmp/data" "$R:in/anon.bin"
[ -e "$tmp/seen.0.args" ] && fail "a command ran for a line of another identity"

# ---- a failing command ----------------------------------------------------------
echo "a failing command"
if run 3 "a store whose command exits 3" "$rcat" $P --put "$tmp/data" "$R:fail/f.bin"; then
    said "failing command" "fail/f.bin: the server's post-store command failed"
    same "$tmp/data" "$root/fail/f.bin" "the file a failed command saw stays"
fi
await_log "$tmp/hooks.log" "exit 3 \(expected 0\).*failed" 10 || fail "the exit code was not logged"
grep -q "STORE fail/f.bin .* RCAT_HOOK_FAILED" "$tmp/hooks.log" || fail "the call's line"
run 3 "--json: the failure's name" "$rcat" $P --json --put "$tmp/data" "$R:fail/g.bin"
cat "$tmp/out" "$tmp/err" | grep -q RCAT_HOOK_FAILED || fail "--json lacks RCAT_HOOK_FAILED"

# ---- a file stored in ranges (--put --split) ---------------------------------------
echo "--put --split"
head -c $((12 << 20)) /dev/urandom >"$tmp/big"
rm -f "$tmp"/seen.*
if run 0 "a store in ranges with a hook" "$rcat" $P $as_alice --checksum sha256 --split=3 \
    --put "$tmp/big" "$R:in/big.bin"; then
    same "$tmp/big" "$root/in/big.bin" "stored in ranges"
    grep -q " STORE_RANGE in/\.big\.bin\.rcat-split-" "$tmp/hooks.log" || fail "the put was not split"
    # once, for the name, after the whole file is there; never for the temporary
    [ -e "$tmp/seen.0.args" ] || fail "no command ran for a file stored in ranges"
    [ -e "$tmp/seen.1.args" ] && fail "the command ran more than once for a file stored in ranges"
    sum=$(sha256sum "$tmp/big" | cut -d' ' -f1)
    printf '%s\0' exit=0 "$(realpath "$root")/in/big.bin" in/big.bin $((12 << 20)) "sha256:$sum" \
        alice >"$tmp/want.args"
    cmp -s "$tmp/want.args" "$tmp/seen.0.args" ||
        fail "the split store's command got: $(tr '\0' ' ' <"$tmp/seen.0.args")"
    grep -qx "RCAT_IDENTITY=alice" "$tmp/seen.0.env" || fail "split: RCAT_IDENTITY"
    grep -qx "RCAT_RELPATH=in/big.bin" "$tmp/seen.0.env" || fail "split: RCAT_RELPATH"
    grep -qx "RCAT_SIZE=$((12 << 20))" "$tmp/seen.0.env" || fail "split: RCAT_SIZE"
    grep -qx "RCAT_SECURITY=auth" "$tmp/seen.0.env" || fail "split: RCAT_SECURITY"
    grep -q "SPLIT_END in/\.big\.bin\.rcat-split-[0-9a-f]* .* ok .*to=in/big.bin$" "$tmp/hooks.log" ||
        fail "no SPLIT_END line"
fi
# a split put that fails (-n onto a name) runs none, and leaves no temporary
rm -f "$tmp"/seen.*
run 3 "a store in ranges refused by -n" "$rcat" $P $as_alice --split=3 -n --put "$tmp/big" \
    "$R:in/big.bin"
[ -e "$tmp/seen.0.args" ] && fail "a failed store in ranges ran a command"
ls -A "$root/in" | grep -q rcat-split && fail "a failed store in ranges left its temporary"
# a failing command fails the split put too, and the file stays
if run 3 "a store in ranges whose command exits 3" "$rcat" $P --split=3 --put "$tmp/big" \
    "$R:fail/big.bin"; then
    said "split, failing command" "fail/big.bin: the server's post-store command failed"
    same "$tmp/big" "$root/fail/big.bin" "the file stored in ranges a failed command saw stays"
fi
grep -q "SPLIT_END fail/\.big\.bin\.rcat-split-.* RCAT_HOOK_FAILED .*to=fail/big.bin$" "$tmp/hooks.log" ||
    fail "the SPLIT_END line of a failed command"

# ---- the time limit --------------------------------------------------------------
echo "the time limit"
t0=$SECONDS
if run 3 "a command past its time limit" "$rcat" $P --put "$tmp/data" "$R:slow/s.bin"; then
    said "time limit" "post-store command failed"
fi
took=$((SECONDS - t0))
# 2 s limit: generous bound 3x (SIGTERM ends sleep at once; SIGKILL follows 2 s later)
[ "$took" -le 6 ] || fail "the call took $took s for a 2 s limit"
await_log "$tmp/hooks.log" "killed at its time limit" 10 || fail "the kill was not logged"
pgrep -f "sleep 31.7" >/dev/null && fail "the command still runs after its time limit"

# ---- shell metacharacters ---------------------------------------------------------
echo "shell metacharacters"
odd='$(touch pwned); `touch pwned2` a  b | & > x "q" '"'s'"' *'
nl=$'line\nbreak'
for name in "$odd" "$nl"; do
    rm -f "$tmp"/seen.*
    if run 0 "a name with metacharacters" "$rcat" $P --put "$tmp/data" "$R:odd/$name"; then
        printf '%s\0' exit=0 "odd/$name" >"$tmp/want.args"
        cmp -s "$tmp/want.args" "$tmp/seen.0.args" ||
            fail "the name did not arrive untouched: $(tr '\0' '|' <"$tmp/seen.0.args")"
    fi
done
found=$(find "$tmp" "$root" / -maxdepth 1 -name 'pwned*' 2>/dev/null)
[ -z "$found" ] || fail "something ran the name: $found"

# ---- the server is not blocked -------------------------------------------------------
echo "the server is not blocked"
spawn slowput "$rcat" $P --put "$tmp/data" "$R:wait/w.bin" </dev/null >"$tmp/slowput.out" 2>&1
await_log "$tmp/hooks.log" "for wait/w.bin: .*gated started" 20 || fail "the slow command did not start"
# one worker, and the slow command holds none: all of these are answered meanwhile
run 0 "STAT while a command runs" "$rcat" $P --stat "$R:in/data.bin"
run 0 "STORE while a command runs" "$rcat" $P --put "$tmp/data" "$R:other.bin"
run 0 "FETCH while a command runs" "$rcat" $P "$R:other.bin" -o "$tmp/back"
same "$tmp/data" "$tmp/back" "fetched while a command runs"
running slowput || fail "the slow store ended before its command was let go"
touch "$tmp/gate"
await slowput 60 || fail "the slow store did not end"
[ "$(status slowput)" = 0 ] || fail "the slow store failed: $(cat "$tmp/slowput.out")"

# ---- reload ----------------------------------------------------------------------
echo "reload"
echo "* * 0 30s $tmp/bin/record exit=0 reloaded" >"$hooks.new" && mv "$hooks.new" "$hooks"
signal HUP hooks
await_log "$tmp/hooks.log" "hooks reloaded from" 10 || fail "no reload logged"
rm -f "$tmp"/seen.*
run 0 "a store after the reload" "$rcat" $P --put "$tmp/data" "$R:fail/again.bin"
grep -q reloaded "$tmp/seen.0.args" 2>/dev/null || fail "the reloaded rule did not run"
chmod 666 "$hooks"
signal HUP hooks
await_log "$tmp/hooks.log" "hooks not reloaded, the old ones stay: .*writable by group or others" 10 ||
    fail "a hooks file others may write was taken"
stop_server hooks

# ---- a stop while a command runs -------------------------------------------------------
echo "a stop while a command runs"
chmod 644 "$hooks"
echo "* * 0 120s $tmp/bin/sleepy 61.3" >"$hooks"
start_server drain "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable --hooks "$hooks" \
    --drain-time 1
spawn drainput "$rcat" -P "$port" --put "$tmp/data" "$R:d.bin" </dev/null >"$tmp/drainput.out" 2>&1
await_log "$tmp/drain.log" "for d.bin: .*sleepy started" 20 || fail "the command did not start"
stop_server drain # within 40 s, status 0: the command is killed when the drain time is over
await drainput 30 || fail "the client of a killed command did not end"
[ "$(status drainput)" = 0 ] && fail "a store whose command was killed succeeded"
await_log "$tmp/drain.log" "for d.bin: killed after .* rcatd is stopping: failed" 5 || fail "the kill was not logged"
pgrep -f "sleep 61.3" >/dev/null && fail "the command outlived rcatd"
chmod 666 "$hooks"

"$rcatd" --root "$root" --hooks "$hooks" --listen 127.0.0.1:0 >"$tmp/out" 2>"$tmp/err" &&
    fail "rcatd started with a hooks file others may write"
grep -q "writable by group or others" "$tmp/err" || fail "no reason given: $(cat "$tmp/err")"

finish hooks
