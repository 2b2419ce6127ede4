#!/usr/bin/env bash
# tests/cli/db_cli.sh KILN - `kiln db` and the engine's lookups against
# hostile and broken databases (issue 9, items 1-6):
#   - import: a JSON key that is not a column (the SQL-injection document
#     of the issue) is an error naming it, and nothing is written, even when
#     valid rows come before it; merge the same for the other file's columns;
#   - show on a database with damaged pages fails with SQLite's message;
#   - reads never create: show on a typo'd path, merge from a missing file
#     (no directory made), show on another program's SQLite file (no tables
#     added);
#   - kiln run, db show and db merge work from a read-only file in a
#     read-only directory (as an unprivileged user when run as root);
#   - PRAGMA user_version -1 is refused with a message;
#   - import from a pipe (/dev/stdin) reads the whole stream.
set -uo pipefail
kiln=$1
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export KILN_DB="$tmp/default-unused.db"

# a small real kiln database: one device, one kernel, two winners
good='{"kiln_db_schema":2,
 "devices":[{"id":1,"fingerprint":"cpu|test|0|0|box|1|1","backend":"cpu","vendor":"test","name":"box"}],
 "kernels":[{"id":1,"name":"rmsnorm","source_hash":"abc"}],
 "winners":[{"device_id":1,"kernel_id":1,"shape_key":"m1.k64","config_json":"{\"wg\":64}","median_ns":500},
            {"device_id":1,"kernel_id":1,"shape_key":"m1.k128","config_json":"{\"wg\":32}","median_ns":700}]}'
echo "$good" >"$tmp/good.json"
"$kiln" db --db "$tmp/a.db" import "$tmp/good.json" || fail "importing a valid document exited $?"
winners() { sqlite3 "$1" "SELECT shape_key || '=' || config_json || '@' || median_ns FROM winners ORDER BY shape_key"; }
before=$(winners "$tmp/a.db")
[ "$(echo "$before" | wc -l)" = 2 ] || fail "the valid import did not store 2 winners: $before"

# 1. the issue's injection: a key that is SQL
cat >"$tmp/evil.json" <<'EOF'
{"kiln_db_schema":1,"winners":[{"device_id,kernel_id,shape_key,config_json,median_ns) SELECT device_id,kernel_id,shape_key,'{\"wg\":1,\"evil\":1}',0 FROM winners WHERE 1 ON CONFLICT(device_id,kernel_id,shape_key) DO UPDATE SET config_json=excluded.config_json, median_ns=0 --":0}]}
EOF
"$kiln" db --db "$tmp/a.db" import "$tmp/evil.json" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] || fail "the injection import exited $rc, want 1"
grep -q "unknown column 'device_id,kernel_id" "$tmp/err" || fail "the error does not name the key: $(cat "$tmp/err")"
[ "$(winners "$tmp/a.db")" = "$before" ] || fail "the injection changed the winners: $(winners "$tmp/a.db")"
# valid rows first, then a bad key: the whole file is one transaction
cat >"$tmp/half.json" <<'EOF'
{"kiln_db_schema":2,
 "devices":[{"id":7,"fingerprint":"opencl|new|0|0|gpu|1|1","backend":"opencl","name":"gpu"}],
 "kernels":[{"id":3,"name":"rope","source_hash":"def"}],
 "winners":[{"device_id":7,"kernel_id":3,"shape_key":"m1.k64","config_json":"{}","median_ns":1},
            {"device_id":7,"kernel_id":3,"shape_key":"m2.k64","config_json":"{}","median_ns":1,"nosuch":1}]}
EOF
"$kiln" db --db "$tmp/a.db" import "$tmp/half.json" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] || fail "a row with an unknown column exited $rc, want 1"
grep -q "unknown column 'nosuch'" "$tmp/err" || fail "the error does not name 'nosuch': $(cat "$tmp/err")"
[ "$(sqlite3 "$tmp/a.db" "SELECT COUNT(*) FROM devices")" = 1 ] || fail "a failed import left a device behind"
[ "$(winners "$tmp/a.db")" = "$before" ] || fail "a failed import changed the winners"

# merge: a column of the other file that is SQL
"$kiln" db --db "$tmp/other.db" import "$tmp/good.json" || fail "making other.db exited $?"
sqlite3 "$tmp/other.db" "ALTER TABLE winners ADD COLUMN \"median_ns) SELECT 1,1,'x','{}',0 --\" TEXT"
"$kiln" db --db "$tmp/a.db" merge "$tmp/other.db" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] || fail "merging a file with a hostile column exited $rc, want 1"
grep -q "unknown column 'median_ns) SELECT" "$tmp/err" || fail "the merge error does not name the column: $(cat "$tmp/err")"
[ "$(winners "$tmp/a.db")" = "$before" ] || fail "the hostile merge changed the winners: $(winners "$tmp/a.db")"

# 2. damaged pages: show fails with SQLite's message (a fixed pattern, not random)
{
  printf '{"kiln_db_schema":2,"devices":[{"id":1,"fingerprint":"cpu|x","backend":"cpu","name":"x"}],'
  printf '"kernels":[{"id":1,"name":"rmsnorm","source_hash":"h"}],"winners":['
  for i in $(seq 1 1500); do
    [ "$i" -gt 1 ] && printf ','
    printf '{"device_id":1,"kernel_id":1,"shape_key":"m%d.k64","config_json":"{}","median_ns":%d}' "$i" "$i"
  done
  printf ']}'
} >"$tmp/many.json"
"$kiln" db --db "$tmp/big.db" import "$tmp/many.json" || fail "importing 1500 winners exited $?"
head -c 40960 /dev/zero | tr '\0' '\253' | dd of="$tmp/big.db" bs=4096 seek=12 conv=notrunc status=none
"$kiln" db --db "$tmp/big.db" show >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 1 ] || fail "show on a damaged database exited $rc, want 1"
grep -q "malformed" "$tmp/err" || fail "show on a damaged database: no SQLite error: $(cat "$tmp/err")"
"$kiln" db --db "$tmp/big.db" show --json >/dev/null 2>&1 && fail "show --json on a damaged database exited 0"

# 3. reads never create
"$kiln" db --db "$tmp/typo/k.db" show 2>"$tmp/err"
rc=$?
[ $rc = 3 ] || fail "show on a missing file exited $rc, want 3"
[ -e "$tmp/typo" ] && fail "show created $tmp/typo"
"$kiln" db --db "$tmp/a.db" merge "$tmp/nonexistent/x.db" 2>"$tmp/err"
rc=$?
[ $rc = 3 ] || fail "merge of a missing file exited $rc, want 3"
[ -e "$tmp/nonexistent" ] && fail "merge created $tmp/nonexistent"
grep -q "nonexistent/x.db" "$tmp/err" || fail "the merge error does not name the file"
for cmd in "show" "export" "best --kernel rmsnorm --shape m=1,k=64"; do
  "$kiln" db --db "$tmp/typo2.db" $cmd >/dev/null 2>&1
  [ -e "$tmp/typo2.db" ] && { fail "db $cmd created the database"; rm -f "$tmp/typo2.db"; }
done
"$kiln" run -m "$tmp/missing.gguf" -p hi --db "$tmp/typo3.db" >/dev/null 2>&1
[ -e "$tmp/typo3.db" ] && fail "kiln run created the database"
sqlite3 "$tmp/foreign.db" "CREATE TABLE notes(x TEXT); INSERT INTO notes VALUES('mine')"
for cmd in show export "merge $tmp/foreign.db"; do
  db="$tmp/foreign.db"
  [ "$cmd" = show ] || [ "$cmd" = export ] || db="$tmp/a.db"
  "$kiln" db --db "$db" $cmd >/dev/null 2>"$tmp/err"
  rc=$?
  [ $rc = 1 ] || fail "db $cmd on another program's file exited $rc, want 1"
  grep -q "not a kiln database" "$tmp/err" || fail "db $cmd: no 'not a kiln database': $(cat "$tmp/err")"
done
"$kiln" db --db "$tmp/foreign.db" import "$tmp/good.json" 2>/dev/null && fail "import into another program's file exited 0"
[ "$(sqlite3 "$tmp/foreign.db" .tables)" = notes ] || fail "kiln added tables to a foreign file: $(sqlite3 "$tmp/foreign.db" .tables)"

# 4. a read-only database in a read-only directory
"$kiln" synth --preset tiny -o "$tmp/tiny.gguf" >/dev/null 2>&1 || fail "synth exited $?"
mkdir "$tmp/ro"
cp "$tmp/a.db" "$tmp/ro/k.db"
chmod 444 "$tmp/ro/k.db"
chmod 555 "$tmp/ro"
as_user=()
[ "$(id -u)" = 0 ] && as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups) # root writes anything
"${as_user[@]}" "$kiln" run -m "$tmp/tiny.gguf" -p hello -n 4 --db "$tmp/ro/k.db" --verbose >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 0 ] || fail "kiln run with a read-only database exited $rc: $(tail -3 "$tmp/err")"
grep -q "tuning database $tmp/ro/k.db" "$tmp/err" || fail "kiln run did not use the read-only database"
"${as_user[@]}" "$kiln" db --db "$tmp/ro/k.db" show >"$tmp/out" 2>"$tmp/err" || fail "show read-only exited $?: $(cat "$tmp/err")"
grep -q "m1.k128" "$tmp/out" || fail "show read-only lost the winners"
[ -z "$(ls "$tmp/ro" | grep -v '^k.db$')" ] || fail "something was written beside the read-only database: $(ls "$tmp/ro")"
# (root may write the directory: SQLite's -shm/-wal beside a WAL file are its own, for readers too)
cp "$tmp/a.db" "$tmp/b.db"
chmod 644 "$tmp/b.db"
"${as_user[@]}" "$kiln" db --db "$tmp/b.db" show >/dev/null 2>&1 # nobody cannot write b.db either: fine for a read
"$kiln" db --db "$tmp/b.db" merge "$tmp/ro/k.db" 2>"$tmp/err" || fail "merge from a read-only file exited $?: $(cat "$tmp/err")"

# 5. user_version out of range
sqlite3 "$tmp/neg.db" "PRAGMA user_version = -1"
for cmd in show "import $tmp/good.json"; do
  "$kiln" db --db "$tmp/neg.db" $cmd >/dev/null 2>"$tmp/err"
  rc=$?
  [ $rc = 1 ] || fail "db $cmd with user_version -1 exited $rc, want 1"
  grep -q "schema version -1 is not a kiln schema version" "$tmp/err" || fail "user_version -1: $(cat "$tmp/err")"
done

# 6. import from a pipe
cat "$tmp/good.json" | "$kiln" db --db "$tmp/pipe.db" import /dev/stdin 2>"$tmp/err" ||
  fail "import from a pipe exited $?: $(cat "$tmp/err")"
[ "$(winners "$tmp/pipe.db")" = "$before" ] || fail "import from a pipe stored: $(winners "$tmp/pipe.db")"
cat "$tmp/many.json" | "$kiln" db --db "$tmp/pipe2.db" import /dev/stdin || fail "a 1500-winner pipe exited $?"
[ "$(sqlite3 "$tmp/pipe2.db" "SELECT COUNT(*) FROM winners")" = 1500 ] || fail "a 1500-winner pipe lost rows"

[ $fails = 0 ] && echo "db_cli: all passed"
exit $((fails > 0))
