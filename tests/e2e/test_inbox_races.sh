#!/usr/bin/env bash
# End to end: what the inbox and the tailed files refuse (issue 22 item 7).
# The scan looked with lstat and the take opened the path later: a file
# swapped for a FIFO hung the engine, a symbolic link made pvwatch ingest a
# file the dropper could not read. Now an inbox file is opened with
# O_NOFOLLOW | O_NONBLOCK and taken only when the descriptor is a regular
# file with one link, owned by pvwatch's user, root or one of inbox.owners;
# anything else is moved to rejected/ with NAME.error saying why. A tailed
# path that is a FIFO or a device is refused with a clear error, never
# waited on. Each case must end within a deadline with pvwatch still up and
# still taking good files.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAB_HDR='patient_id,code,value,unit,observed_at'
write_config pv.lua
sed -i 's/settle = 0.3/settle = 1.0/' pv.lua
mkdir -p stage inbox
# The tailed file of the configuration is a FIFO with no writer: opening
# it blocking would hang the start.
mkfifo feed.csv
# A file the dropper could not read: outside the inbox, 0600.
printf '%s\nSECRET1,751-8,100,cells/mm3,2026-02-01\n' "$LAB_HDR" >secret.csv
chmod 600 secret.csv

rows_of() { q "SELECT count(*) FROM observations WHERE patient_id LIKE '$1%'"; }
alive() {
    if kill -0 "$PV_PID" 2>/dev/null; then pass; else
        fail "$1: pvwatch is no longer running"
        finish
    fi
}
# good NAME PATIENT: drops a good file and waits for it to be processed.
good() {
    printf '%s\n%s,718-7,13.5,g/dL,2026-02-01\n' "$LAB_HDR" "$2" >"stage/$1"
    mv "stage/$1" "inbox/$1"
    check_wait "[ -f inbox/processed/$1 ]" 10 "$1 (a good file dropped afterwards) is ingested"
    assert_eq 1 "$(rows_of "$2")" "$1's row is stored"
}
# refused NAME REASON-ERE: NAME is moved to rejected/ within the deadline,
# with NAME.error and a log line giving the reason.
refused() {
    check_wait "[ -e inbox/rejected/$1.error ] && { [ -e inbox/rejected/$1 ] || [ -L inbox/rejected/$1 ]; }" 10 \
        "$1 is moved to rejected/ with $1.error"
    assert_match "$1: refused: $2" "$(cat "inbox/rejected/$1.error" 2>/dev/null)" "$1.error says why"
    assert_match "$1: refused: $2" "$(cat run.err)" "the log says why $1 was refused"
    assert_no_file "inbox/$1" "$1 is no longer in the inbox"
}

# ---------------------------------------------------------------------------
section "issue22_item07_tail_fifo: a tailed path that is a FIFO"
start_pv run run -c pv.lua
if wait_for "grep -q 'running' run.err || ! kill -0 $PV_PID" 10 && grep -q running run.err; then
    pass
else
    fail "pvwatch did not start within 10 s with a FIFO as its tailed file"
    cat run.err
    finish
fi
assert_match 'feed\.csv: not followed: a FIFO' "$(cat run.err)" "the FIFO tail is refused with a clear error"
alive "with a FIFO as the tailed file"

# ---------------------------------------------------------------------------
section "issue22_item07_inbox_fifo: a FIFO dropped into the inbox"
mkfifo inbox/pipe.csv
refused pipe.csv 'a FIFO'
if [ -p inbox/rejected/pipe.csv ]; then pass; else fail "the FIFO itself is moved (not opened)"; fi
alive "after the FIFO"
good after-fifo.csv RACE1

# ---------------------------------------------------------------------------
section "issue22_item07_swap_fifo: a file swapped for a FIFO before it is taken"
# The scan saw a regular file; the name is a FIFO when it is taken (settle
# is 1 s; a known name is not looked at again until then), so it is the
# open with O_NONBLOCK and the fstat that refuse it.
printf '%s\nSWAP1,718-7,13.5,g/dL,2026-02-01\n' "$LAB_HDR" >stage/swap.csv
mv stage/swap.csv inbox/swap.csv
sleep 0.3 # the scan 20 ms after the event has seen a regular file by now
rm inbox/swap.csv && mkfifo inbox/swap.csv
refused swap.csv 'a FIFO'
assert_eq 0 "$(rows_of SWAP)" "nothing stored from the swapped name"
alive "after the swap"

# ---------------------------------------------------------------------------
section "issue22_item07_symlink: links are never followed"
ln -s "$T/secret.csv" inbox/link.csv
refused link.csv 'a symbolic link'
if [ -L inbox/rejected/link.csv ]; then pass; else fail "the link itself is moved to rejected/"; fi
assert_eq 0 "$(rows_of SECRET)" "the file the link points to is not ingested"
assert_file secret.csv "the linked file is left where it was"
ln -s /dev/zero inbox/zero.csv
refused zero.csv 'a symbolic link'
alive "after the links"

# ---------------------------------------------------------------------------
section "issue22_item07_device: a device node"
if mknod inbox/null.csv c 1 3 2>/dev/null; then
    refused null.csv 'a device node'
else
    echo "   SKIP mknod: not permitted here"
fi

# ---------------------------------------------------------------------------
section "issue22_item07_hardlink: a hard link to a file elsewhere"
if ln "$T/secret.csv" inbox/hard.csv 2>/dev/null; then
    refused hard.csv 'it has 2 hard links'
    assert_eq 0 "$(rows_of SECRET)" "the hard-linked file is not ingested"
else
    echo "   SKIP ln: hard links not permitted here"
fi

# ---------------------------------------------------------------------------
section "issue22_item07_owner: a file owned by another user"
if [ "$(id -u)" = 0 ]; then
    printf '%s\nOWN1,718-7,13.5,g/dL,2026-02-01\n' "$LAB_HDR" >stage/own.csv
    chown 4242 stage/own.csv
    mv stage/own.csv inbox/own.csv
    refused own.csv 'owned by uid 4242'
    assert_eq 0 "$(rows_of OWN)" "nothing stored from it"
else
    echo "   SKIP: not root, cannot make a file owned by another user"
fi
good after-all.csv RACE2
alive "at the end"
stop_pv "$PV_PID" 15
assert_eq 0 "$STOP_RC" "pvwatch stops with status 0"

# ---------------------------------------------------------------------------
section "issue22_item07_owners_config: inbox.owners accepts a named owner"
pv check -c pv.lua
assert_eq 0 "$RC" "the configuration checks ($ERR)"
rm feed.csv
if [ "$(id -u)" = 0 ]; then
    sed -i 's/settle = 1.0/settle = 0.3, owners = { 4242 }/' pv.lua
    start_pv run2 run -c pv.lua
    expect_running run2
    printf '%s\nOWN2,718-7,13.5,g/dL,2026-02-01\n' "$LAB_HDR" >stage/own2.csv
    chown 4242 stage/own2.csv
    mv stage/own2.csv inbox/own2.csv
    check_wait "[ -f inbox/processed/own2.csv ]" 10 "a file owned by a uid of inbox.owners is taken"
    assert_eq 1 "$(rows_of OWN2)" "its row is stored"
    stop_pv "$PV_PID" 15
fi
cat >bad.lua <<'EOF2'
inbox = { owners = { "no-such-user-pv22" } }
EOF2
pv check -c bad.lua
assert_eq 2 "$RC" "an unknown owner is a configuration error"
assert_match "bad\.lua:1: inbox\.owners\[1\]: no user named 'no-such-user-pv22'" "$ERR" "the error names the key and the user"
cat >bad2.lua <<'EOF2'
inbox = { allow_any_owner = "yes" }
EOF2
pv check -c bad2.lua
assert_match "inbox\.allow_any_owner must be true or false" "$ERR" "allow_any_owner must be a boolean"

finish
