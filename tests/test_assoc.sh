#!/bin/bash
# test_assoc.sh - rcat's associations (issue 15 item 3) with a real rcatd
# that takes only encrypted binds from a known identity:
#  - a job that names only @archive stores and fetches (host, port,
#    directory, identity, key file, security level and option defaults all
#    from the association), through the user's file ($XDG_CONFIG_HOME) and
#    through $RCAT_ASSOCIATIONS;
#  - the command line overrides the association (-P, --security);
#  - a key file readable by others is refused, naming the fix;
#  - an associations file others may write is refused; one anyone may read
#    is fine (it holds no secret);
#  - an unknown @name is a usage error (exit 1) that says where rcat looked.
set -u
umask 022
export TZ=UTC LC_ALL=C
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_assoc.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

root="$tmp/root"
cfg="$tmp/config/rcat"
mkdir -p "$root/incoming" "$cfg"
(umask 077 && "$rcat" --genkey >"$cfg/ops.key") || fatal "rcat --genkey"
(umask 077 && echo "ops $(cat "$cfg/ops.key")" >"$tmp/server.keys")
start_server assoc "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable \
    --keys "$tmp/server.keys" --min-security encrypt

cat >"$cfg/associations" <<EOF
# where reports go
[archive]
host = 127.0.0.1
port = $port
directory = incoming
identity = ops
key-file = ops.key
security = encrypt
retries = 2
retry-interval = 0.1
mkdirs = yes
EOF
chmod 644 "$cfg/associations"
export XDG_CONFIG_HOME="$tmp/config"
unset RCAT_ASSOCIATIONS
cd "$tmp" || fatal "cd"
echo "a,b,c" >report.csv

echo "a job that names only @archive"
run 0 "--put report.csv @archive:" "$rcat" --put report.csv @archive:
same report.csv "$root/incoming/report.csv" "stored beneath the association's directory"
grep -q "ops encrypt STORE incoming/report.csv .* ok" "$tmp/assoc.log" ||
    fail "the store was not made as ops, encrypted"
run 0 "@archive:report.csv -o x" "$rcat" @archive:report.csv -o fetched.csv
same report.csv fetched.csv "fetched through the association"
run 0 "mkdirs from the association" "$rcat" --put report.csv @archive:deep/er/r.csv
same report.csv "$root/incoming/deep/er/r.csv" "stored with the association's mkdirs"
export RCAT_ASSOCIATIONS="$cfg/associations"
XDG_CONFIG_HOME=/nonexistent run 0 "through \$RCAT_ASSOCIATIONS" "$rcat" @archive:report.csv -o again.csv
same report.csv again.csv "fetched through \$RCAT_ASSOCIATIONS"
unset RCAT_ASSOCIATIONS

echo "the command line overrides"
run 3 "--security none overrides the association's" "$rcat" --security none @archive:report.csv -o x
said "--security none" "security level refused"
run 2 "-P overrides the association's port" "$rcat" -P 1 @archive:report.csv -o x
said "-P 1" "port 1"
said "-P 1: retries from the association" "attempt 3 of 3"

echo "refusals"
chmod 644 "$cfg/ops.key"
run 4 "a key file readable by others" "$rcat" @archive:report.csv -o x
said "readable key" "chmod 600 $cfg/ops.key"
chmod 600 "$cfg/ops.key"
chmod 664 "$cfg/associations"
run 1 "an associations file others may write" "$rcat" @archive:report.csv -o x
said "group-writable associations" "writable by group or others"
chmod 644 "$cfg/associations"
run 1 "an unknown @name" "$rcat" @nowhere:report.csv -o x
said "unknown @name" "@nowhere: no association [nowhere] in $cfg/associations or /etc/rcat/associations"
run 1 "two associations in one run" "$rcat" @archive:a @other:b -o d/
said "two associations" "one run takes one association"
run 1 "a malformed @ operand" "$rcat" @archive -o x
said "malformed" "an association is named @NAME:PATH"
echo "[archive]" >>"$cfg/associations"
run 1 "a second section of the same name" "$rcat" @archive:report.csv -o x
said "second section" "line 12: a second section of the same name"

stop_server assoc
finish assoc
