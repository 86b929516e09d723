#!/usr/bin/env bash
# test_cli_users: 'pvwatch users' (issue 16), the review console's users:
# add / list / passwd / disable / enable / role on the configured database,
# the password from standard input (--password-stdin) or asked twice on a
# terminal without echo (driven through a pseudo-terminal), names, roles
# and passwords checked, never a hash or a password in the output, no
# database created, and the same commands beside a running engine.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

write_config pv.lua
PWD1='correct horse battery'
PWD2='another long password'
MEDS=$PV_SOURCE_DIR/examples/feeds/medications.csv

section "no database yet: exit 2, says who makes it, creates nothing"
pv users -c pv.lua add alice --role reviewer --password-stdin <<<"$PWD1"
assert_eq 2 "$RC" "add without a database"
assert_match "no database at .*pv.db" "$ERR" "names the database"
assert_match "pvwatch run" "$ERR" "says what makes the database"
assert_no_file pv.db "add created a database"
pv users -c pv.lua list
assert_eq 2 "$RC" "list without a database"
assert_no_file pv.db "list created a database"

section "help and usage errors"
pv users --help
assert_eq 0 "$RC" "--help"
assert_match "users \[-c CONFIG\] add NAME --role ROLE" "$OUT" "usage"
pv users -c pv.lua frobnicate
assert_eq 2 "$RC" "unknown action"
assert_match "unknown action 'frobnicate'" "$ERR" "names the action"
pv users -c pv.lua add
assert_eq 2 "$RC" "add without a name"
pv users -c pv.lua list --password-stdin
assert_eq 2 "$RC" "--password-stdin for list"
pv users -c pv.lua --bogus
assert_eq 2 "$RC" "unknown option"

pv ingest -c pv.lua "$MEDS"
assert_eq 0 "$RC" "ingest makes the database"

section "an empty list says how to add a user"
pv users -c pv.lua list
assert_eq 0 "$RC" "list with no users"
assert_match "no users yet" "$OUT" "says there are none"

section "add with --password-stdin: an argon2id hash, never the password"
pv users -c pv.lua add alice --role reviewer --password-stdin <<<"$PWD1"
assert_eq 0 "$RC" "add alice: $ERR"
assert_match "user alice added \(reviewer\)" "$OUT" "says so"
assert_eq "reviewer|0" "$(q "SELECT role, disabled FROM users WHERE name='alice'")" \
    "the row"
hash1=$(q "SELECT pwhash FROM users WHERE name='alice'")
assert_match "^[$]argon2id[$]v=19[$]m=65536,t=2,p=1[$]" "$hash1" \
    "argon2id at the interactive cost"
assert_no_match "$PWD1" "$hash1" "the password is not stored"
assert_match "^20[0-9-]{8}T[0-9:]{8}Z$" \
    "$(q "SELECT created_at FROM users WHERE name='alice'")" "created_at"
pv users -c pv.lua add bob --role viewer --password-stdin <<<"$PWD1"
assert_eq 0 "$RC" "add bob"
# Options before the action, and a CRLF line end from a Windows pipe.
pv users -c pv.lua --role admin --password-stdin add carol <<<"$PWD1"$'\r'
assert_eq 0 "$RC" "add carol, options first"

section "refused: existing name, bad names, roles and passwords"
pv users -c pv.lua add alice --role viewer --password-stdin <<<"$PWD1"
assert_eq 2 "$RC" "alice again"
assert_match "exists already" "$ERR" "says it exists"
assert_eq "reviewer" "$(q "SELECT role FROM users WHERE name='alice'")" \
    "alice unchanged"
pv users -c pv.lua add 'a b' --role viewer --password-stdin <<<"$PWD1"
assert_eq 2 "$RC" "a name with a space"
assert_match "spaces or control characters" "$ERR" "says why"
pv users -c pv.lua add $'ev\x1bil' --role viewer --password-stdin <<<"$PWD1"
assert_eq 2 "$RC" "a name with an escape character"
assert_no_match $'\x1b' "$ERR" "the escape is not echoed raw"
long=$(printf 'n%.0s' {1..64})
pv users -c pv.lua add "$long" --role viewer --password-stdin <<<"$PWD1"
assert_eq 2 "$RC" "a 64-byte name"
assert_match "at most 63 bytes" "$ERR" "says the limit"
pv users -c pv.lua add dave --role root --password-stdin <<<"$PWD1"
assert_eq 2 "$RC" "an unknown role"
assert_match "viewer, reviewer or admin" "$ERR" "lists the roles"
pv users -c pv.lua add dave --password-stdin <<<"$PWD1"
assert_eq 2 "$RC" "no --role"
assert_match "needs --role" "$ERR" "says --role is needed"
pv users -c pv.lua add dave --role viewer --password-stdin <<<"short"
assert_eq 2 "$RC" "a short password"
assert_match "at least 10 characters" "$ERR" "says the minimum"
pv users -c pv.lua add dave --role viewer --password-stdin </dev/null
assert_eq 2 "$RC" "no password on stdin"
assert_match "no password on standard input" "$ERR" "says so"
head -c 2000 /dev/zero | tr '\0' x >big.txt
pv users -c pv.lua add dave --role viewer --password-stdin <big.txt
assert_eq 2 "$RC" "a 2000-byte password"
assert_match "longer than 1024 bytes" "$ERR" "says the limit"
# Without --password-stdin and without a terminal: no prompt, a hint.
# (setsid: a new session has no controlling terminal to open)
if command -v setsid >/dev/null 2>&1; then
    setsid -w "$PVWATCH" users -c pv.lua add dave --role viewer \
        </dev/null >.out 2>.err
    RC=$?
    ERR=$(cat .err)
    assert_eq 2 "$RC" "no terminal"
    assert_match "no terminal .*--password-stdin" "$ERR" "says what to use"
fi
assert_eq 0 "$(q "SELECT count(*) FROM users WHERE name='dave'")" \
    "dave was never added"

section "list: name, role, created, status; never a hash"
pv users -c pv.lua list
assert_eq 0 "$RC" "list"
assert_match "^NAME +ROLE +CREATED +STATUS" "$OUT" "a header"
assert_match "^alice +reviewer +20[0-9-]+T[0-9:]+Z +enabled$" \
    "$(grep '^alice' <<<"$OUT")" "alice's line"
assert_match "^bob +viewer " "$(grep '^bob' <<<"$OUT")" "bob's line"
assert_match "^carol +admin " "$(grep '^carol' <<<"$OUT")" "carol's line"
assert_no_match 'argon2|\$' "$OUT" "no hash in the list"
pv users -c pv.lua
assert_eq 0 "$RC" "list is the default"
assert_match "^alice" "$OUT" "default lists"

section "passwd, disable, enable, role; each ends the user's sessions"
q "INSERT INTO sessions VALUES ('h1', 'alice', 'c', '2026-01-01T00:00:00Z',
   '2999-01-01T00:00:00Z', '2026-01-01T00:00:00Z')" >/dev/null
pv users -c pv.lua passwd alice --password-stdin <<<"$PWD2"
assert_eq 0 "$RC" "passwd"
assert_ne "$hash1" "$(q "SELECT pwhash FROM users WHERE name='alice'")" \
    "the hash changed"
assert_eq 0 "$(q "SELECT count(*) FROM sessions WHERE user='alice'")" \
    "passwd ended the sessions"
pv users -c pv.lua passwd nobody --password-stdin <<<"$PWD2"
assert_eq 2 "$RC" "passwd of nobody"
assert_match "no user nobody" "$ERR" "says so"
pv users -c pv.lua passwd alice --password-stdin <<<"short"
assert_eq 2 "$RC" "passwd too short"
q "INSERT INTO sessions VALUES ('h2', 'bob', 'c', '2026-01-01T00:00:00Z',
   '2999-01-01T00:00:00Z', '2026-01-01T00:00:00Z')" >/dev/null
pv users -c pv.lua disable bob
assert_eq 0 "$RC" "disable"
assert_eq 1 "$(q "SELECT disabled FROM users WHERE name='bob'")" "disabled"
assert_eq 0 "$(q "SELECT count(*) FROM sessions WHERE user='bob'")" \
    "disable ended the sessions"
pv users -c pv.lua list
assert_match "^bob +viewer .* disabled$" "$(grep '^bob' <<<"$OUT")" \
    "list shows it"
pv users -c pv.lua enable bob
assert_eq 0 "$RC" "enable"
assert_eq 0 "$(q "SELECT disabled FROM users WHERE name='bob'")" "enabled"
pv users -c pv.lua disable nobody
assert_eq 2 "$RC" "disable nobody"
pv users -c pv.lua role bob reviewer
assert_eq 0 "$RC" "role"
assert_eq reviewer "$(q "SELECT role FROM users WHERE name='bob'")" "new role"
pv users -c pv.lua role bob superuser
assert_eq 2 "$RC" "an unknown role"
assert_eq reviewer "$(q "SELECT role FROM users WHERE name='bob'")" \
    "role unchanged"
pv users -c pv.lua role bob
assert_eq 2 "$RC" "role without ROLE"

section "the password asked twice on a terminal, without echo"
# A pseudo-terminal: each answer is written only once its prompt shows
# (echo is off by then), with a deadline; the transcript must not
# contain the password.
tty_add() { # NAME FIRST SECOND -> prints the transcript, exit status last
    "$PYTHON" - "$PVWATCH" "$@" <<'EOF'
import os, pty, select, sys, time
exe, name, first, second = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execv(exe, [exe, "users", "-c", "pv.lua", "add", name,
                   "--role", "viewer"])
out = b""
deadline = time.time() + 60
answers = [(b"New password: ", first), (b"The same again: ", second)]
while True:
    if answers and answers[0][0] in out:
        os.write(fd, answers[0][1].encode() + b"\n")
        answers.pop(0)
    r, _, _ = select.select([fd], [], [], max(0, deadline - time.time()))
    if not r:
        print("TIMEOUT")
        os.kill(pid, 9)
        break
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
print("EXIT %d" % os.waitstatus_to_exitcode(st))
EOF
}
tr_out=$(tty_add erin "$PWD1" "$PWD1")
assert_match "EXIT 0" "$tr_out" "added through the terminal"
assert_match "New password: " "$tr_out" "the first prompt"
assert_match "The same again: " "$tr_out" "the second prompt"
assert_no_match "$PWD1" "$tr_out" "the password was not echoed"
assert_match "^[$]argon2id[$]" "$(q "SELECT pwhash FROM users WHERE name='erin'")" \
    "erin's hash"
tr_out=$(tty_add fred "$PWD1" "$PWD2")
assert_match "EXIT 2" "$tr_out" "two different passwords"
assert_match "the two passwords differ" "$tr_out" "says so"
assert_eq 0 "$(q "SELECT count(*) FROM users WHERE name='fred'")" \
    "fred was not added"

section "beside a running engine"
start_pv run run -c pv.lua
expect_running run
pv users -c pv.lua add gina --role reviewer --password-stdin <<<"$PWD1"
assert_eq 0 "$RC" "add while the engine runs: $ERR"
pv users -c pv.lua disable gina
assert_eq 0 "$RC" "disable while the engine runs"
pv users -c pv.lua list
assert_match "^gina +reviewer .* disabled$" "$(grep '^gina' <<<"$OUT")" \
    "listed while the engine runs"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "the engine stopped cleanly"

finish
