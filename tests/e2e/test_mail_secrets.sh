#!/usr/bin/env bash
# Issue 22 item 13: the SMTP password. 'pvwatch check' (and so run/ingest)
# refuses contradictory TLS settings and a password that would go out in
# cleartext (unless insecure = true), warns about a password file others
# can read; a running pvwatch has the password out of its environment
# (/proc/PID/environ) and core dumps off.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p plugins
cp "$PV_SOURCE_DIR/plugins/cytopenia.lua" plugins/
export CFG_PLUGINS=$T/plugins
SECRET='pw-Secrets-22-13-never-in-env'

# check_cfg NAME EMAIL-TABLE: 'pvwatch check' of a config with that email.
check_cfg() {
    write_config "$1.lua" "email = { from = \"pv@example.org\", to = { \"ops@example.org\" }, $2 }"
    pv check -c "$1.lua"
}

section "issue22_item13_tls_contradictions"
check_cfg implicit 'url = "smtp://127.0.0.1:25", tls = "implicit"'
assert_eq 2 "$RC" "tls = implicit with smtp:// is an error"
assert_match "implicit.*needs an smtps:// URL" "$ERR" "and says so"
check_cfg smtps_starttls 'url = "smtps://mail.example.org:465", tls = "starttls"'
assert_eq 2 "$RC" "tls = starttls with smtps:// is an error"
assert_match "contradicts the smtps:// URL" "$ERR" "and says so"
check_cfg smtps_none 'url = "smtps://mail.example.org:465", tls = "none"'
assert_eq 2 "$RC" "tls = none with smtps:// is an error"
check_cfg smtps 'url = "smtps://mail.example.org:465", username = "u", password_env = "X"'
assert_eq 0 "$RC" "smtps:// alone (implicit TLS) with a password is fine ($ERR)"
check_cfg scheme 'url = "http://mail.example.org"'
assert_eq 2 "$RC" "a URL that is not smtp(s):// is an error"

section "issue22_item13_password_without_tls"
check_cfg cleartext 'url = "smtp://mail.example.org:25", tls = "none", username = "u", password_env = "X"'
assert_eq 2 "$RC" "tls = none with a password is an error"
assert_match "password but no TLS" "$ERR" "and says so"
check_cfg cleartext_default 'url = "smtp://mail.example.org:25", username = "u", password_file = "pw.txt"'
assert_eq 2 "$RC" "no tls (smtp:// means none) with a password file is an error"
check_cfg insecure 'url = "smtp://127.0.0.1:25", username = "u", password_env = "X", insecure = true'
assert_eq 0 "$RC" "insecure = true allows it, for a test server ($ERR)"
check_cfg starttls 'url = "smtp://mail.example.org:587", tls = "starttls", username = "u", password_env = "X"'
assert_eq 0 "$RC" "starttls with a password is fine ($ERR)"

section "issue22_item13_password_file_mode"
printf '%s\n' "$SECRET" >pw.txt
chmod 644 pw.txt
check_cfg pwfile 'url = "smtp://mail.example.org:587", tls = "starttls", username = "u", password_file = "pw.txt"'
assert_eq 0 "$RC" "a readable password file is a warning, not an error"
assert_match "password_file .*pw.txt is mode 0644: others can read" "$ERR" "check warns about mode 0644"
chmod 600 pw.txt
check_cfg pwfile 'url = "smtp://mail.example.org:587", tls = "starttls", username = "u", password_file = "pw.txt"'
assert_eq "" "$(grep password_file <<<"$ERR")" "no warning at 0600"

section "issue22_item13_env_cleared_core_off"
write_config run.lua 'email = { url = "smtp://127.0.0.1:1", from = "pv@example.org", to = { "ops@example.org" }, username = "u", password_env = "PV_TEST_SMTP_PASSWORD", insecure = true, timeout = 1 }'
PV_TEST_SMTP_PASSWORD=$SECRET start_pv run run -c run.lua
expect_running run
assert_eq 0 "$(tr '\0' '\n' <"/proc/$PV_PID/environ" | grep -c -F -- "$SECRET")" \
    "the password is not in /proc/PID/environ"
assert_eq 0 "$(tr '\0' '\n' <"/proc/$PV_PID/environ" | grep -c '^PV_TEST_SMTP_PASSWORD=')" \
    "the variable is gone from the environment"
assert_match '^Max core file size +0 +0 ' "$(grep '^Max core file size' "/proc/$PV_PID/limits")" "core dumps are off (RLIMIT_CORE 0)"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "pvwatch run exits 0"
assert_eq 0 "$(grep -c -F -- "$SECRET" run.err)" "the password is not in the log"

finish
