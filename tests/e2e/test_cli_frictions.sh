#!/usr/bin/env bash
# End to end (issue 21 part 2): commands that read never create a
# database (exit 2 naming the path and the configuration looked at), and
# 'pvwatch check' judges mllp.listen, email.url and paths itself instead
# of leaving them to 'run'.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

section "reading commands never create a database"
write_config pv.lua
for cmd in "alerts list" "alerts show 1" "outbox list" "replay"; do
    # shellcheck disable=SC2086
    pv $cmd -c pv.lua
    assert_eq 2 "$RC" "'$cmd' without a database: exit 2"
    assert_match "no database at .*pv\.db" "$ERR" "'$cmd': names the path"
    assert_match "pv\.lua" "$ERR" "'$cmd': names the configuration"
    assert_no_file pv.db "'$cmd' created no database"
done
mkdir empty
(cd empty && "$PVWATCH" alerts list >../out 2>../err)
assert_eq 2 "$?" "no -c and no pvwatch.lua: exit 2"
assert_match "no pvwatch.lua in .*empty" "$(cat err)" "says which configuration was looked for"
assert_no_file empty/pvwatch.db "nothing created in the working directory"
pv alerts ack 1 -c pv.lua
assert_eq 2 "$RC" "'alerts ack' without a database: exit 2"
assert_no_file pv.db "'alerts ack' created no database"
printf 'patient_id,drug,start\nP1,baricitinib,2026-01-01\n' >m.csv
pv ingest -c pv.lua m.csv
assert_eq 0 "$RC" "ingest makes the database"
pv alerts list -c pv.lua
assert_eq 0 "$RC" "then 'alerts list' works"

section "check: mllp.listen, email.url and paths"
write_config bad-listen.lua
sed -i 's/^mllp = .*/mllp = { listen = "notaport" }/' bad-listen.lua
pv check -c bad-listen.lua
assert_eq 2 "$RC" "mllp.listen = notaport: check fails"
assert_match "bad-listen.lua:[0-9]+: mllp.listen 'notaport' is not HOST:PORT" "$ERR" "names file, line and value"
for bad in "127.0.0.1:99999" "127.0.0.1:" "example.org:2575" "[::1:2575"; do
    write_config l.lua
    sed -i "s/^mllp = .*/mllp = { listen = \"$bad\" }/" l.lua
    pv check -c l.lua
    assert_eq 2 "$RC" "mllp.listen '$bad' is an error at check"
done
for good in "127.0.0.1:0" "localhost:2575" "[::1]:2575" "0.0.0.0:2575"; do
    write_config l.lua
    sed -i "s/^mllp = .*/mllp = { listen = \"$good\" }/" l.lua
    pv check -c l.lua
    assert_eq 0 "$RC" "mllp.listen '$good' is fine"
done
for url in "http://mail.example.org" "smtp://" "smtp://:25" "smtp://mail.example.org:abc" "smtp://mail.example.org:0"; do
    write_config u.lua "email = { url = \"$url\", to = { \"a@example.org\" } }"
    pv check -c u.lua
    assert_eq 2 "$RC" "email.url '$url' is an error at check"
    assert_match "email.url" "$ERR" "'$url': names email.url"
done
write_config u.lua 'email = { url = "smtp://mail.example.org:2525", to = { "a@example.org" } }'
pv check -c u.lua
assert_eq 0 "$RC" "smtp://HOST:PORT is fine"
write_config p.lua
sed -i 's|^database = .*|database = "nosuchdir/pv.db"|; s|^alert_log = .*|alert_log = "nodir/alerts.jsonl"|' p.lua
pv check -c p.lua
assert_eq 2 "$RC" "missing directories: check fails"
assert_match "database .*nosuchdir/pv.db: its directory .*nosuchdir does not exist" "$ERR" "names the database's directory"
assert_match "alert_log .*nodir/alerts.jsonl: its directory" "$ERR" "names the alert log's directory"
assert_no_file nosuchdir "check created nothing"
touch notadir
write_config p.lua 'inbox = { path = "notadir" }'
pv check -c p.lua
assert_eq 2 "$RC" "inbox.path that is a file: check fails"
assert_match "inbox.path .*notadir: exists and is not a directory" "$ERR" "says so"
write_config p.lua 'email = { dir = "a/b/outbox" }'
pv check -c p.lua
assert_eq 2 "$RC" "email.dir whose parent is missing: check fails"
write_config ok.lua
pv check -c ok.lua
assert_eq 0 "$RC" "the standard test configuration passes"

section "rule specs: a failed detail_has shows the detail and the facts"
mkdir -p specs
cat >specs/fail.lua <<'SPEC'
local t = pv.test("detail check that fails")
t:exposure { patient_id = "S1", drug = "baricitinib", dose = 2, start = "2026-01-01" }
t:lab { patient_id = "S1", code = "751-8", value = 900, unit = "cells/mm3", at = "2026-02-01" }
t:expect_alert { rule = "baricitinib.neutropenia", detail_has = "no such words" }
SPEC
pv test -c pv.lua specs
assert_eq 1 "$RC" "the failing spec fails"
assert_match "detail: .*900" "$ERR" "the alert's detail is printed"
assert_match "facts seen:" "$ERR" "the facts are listed"
assert_match "exposure S1 baricitinib 2(\.0)? .*2026-01-01" "$ERR" "the exposure it saw"
assert_match "lab S1 751-8 900(\.0)? cells/mm3 2026-02-01" "$ERR" "the lab it saw"

finish
