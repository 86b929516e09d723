#!/usr/bin/env bash
# 'pvwatch rules' (core/cli_rules.c; issue 14): the listing of the rule
# pack in text, JSON and Markdown; the table of docs/rules.md is the
# command's --markdown output (between the marker comments) and must not
# drift; usage errors and a broken plugin directory exit 2; and the config
# key exposure.rituximab_days (validated by 'check', and changing what
# baricitinib.combination finds).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$T" || exit 1
PACK=$PV_SOURCE_DIR/plugins
cat >pack.lua <<EOF2
plugins = { "$PACK" }
scripts = { "$PV_SOURCE_DIR/scripts" }
EOF2

section "text table lists every rule 'check' loads"
pv check -c pack.lua
assert_eq 0 "$RC" "check of the pack"
want=$(sed -n 's/^  rule \([^ ]*\) .*/\1/p' <<<"$OUT" | sort)
pv rules -c pack.lua
assert_eq 0 "$RC" "rules exit status"
assert_match '^NAME +SIGNAL +SEVERITIES +TRIGGER +FILE$' "$(head -1 <<<"$OUT")" "header"
got=$(grep -E '^baricitinib\.' <<<"$OUT" | awk '{print $1}' | sort)
assert_eq "$want" "$got" "rules lists the rules check loads"
assert_match '^baricitinib\.combination +interaction +high +exposure: baricitinib' "$OUT" "combination row"
assert_match '^    label: +.*not recommended' "$OUT" "a label line"
pv rules list -c pack.lua
assert_eq 0 "$RC" "'rules list' is the listing"
assert_match '^baricitinib\.neutropenia ' "$OUT" "'rules list' rows"

section "--json parses and has every field"
pv rules -c pack.lua --json
assert_eq 0 "$RC" "--json exit status"
printf '%s\n' "$OUT" >rules.json
py=$(python3 - rules.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
keys = {"name", "signal", "trigger", "severities", "description", "label", "file"}
bad = [r.get("name") for r in d if set(r) != keys]
print(len(d), "bad:", bad)
c = [r for r in d if r["name"] == "baricitinib.combination"][0]
print(c["signal"], c["severities"], c["file"].endswith("plugins/combination.lua"))
print("missing:", [r["name"] for r in d if not r["description"] or not r["label"]])
PY
)
n=$(wc -l <<<"$want")
assert_eq "$n bad: []
interaction ['high'] True
missing: []" "$py" "JSON: every rule, every field, description and label filled"

section "JSON escapes what a plugin writes"
mkdir -p odd
cat >odd/odd.lua <<'EOF2'
return pv.rule {
  name = "odd.quotes", signal = "x\"y",
  description = "a \"quoted\" \\ back\nslash\tand \1 control",
  label = "label | pipe", severities = { "low", "critical" },
  on = { event = "R99" },
  when = function() end,
}
EOF2
printf 'plugins = { "odd" }\nscripts = { "%s/scripts" }\n' "$PV_SOURCE_DIR" >odd.lua
pv rules -c odd.lua --json
assert_eq 0 "$RC" "odd plugin lists"
py=$(python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(repr(r["signal"]), repr(r["description"]), r["severities"], r["trigger"])' <<<"$OUT")
assert_eq "'x\"y' 'a \"quoted\" \\\\ back\\nslash\\tand \\x01 control' ['low', 'critical'] event: R99" "$py" "JSON round trip"
pv rules -c odd.lua
assert_match 'description: a "quoted" \\ back\\nslash\\tand \\x01 control' "$OUT" "text escapes control characters"
pv rules -c odd.lua --markdown
assert_match '\| label \\\| pipe \|' "$OUT" "markdown escapes |"

section "usage errors exit 2"
pv rules frobnicate
assert_eq 2 "$RC" "unknown subcommand"
assert_match "unknown subcommand 'frobnicate' \(list, stats\)" "$ERR" "names the subcommand"
pv rules list extra
assert_eq 2 "$RC" "extra argument"
pv rules --bogus
assert_eq 2 "$RC" "unknown option"
pv rules --json --markdown
assert_eq 2 "$RC" "two formats"
pv rules --help
assert_eq 0 "$RC" "--help"
assert_match '^usage: pvwatch rules' "$OUT" "--help prints usage"

section "a broken plugin directory exits 2 with a clear message"
mkdir -p broken
printf 'return pv.rule { name = "b", signal = "s", on = { event = "R99" }, when = 1 }\n' >broken/bad.lua
printf 'plugins = { "broken" }\n' >broken.lua
pv rules -c broken.lua
assert_eq 2 "$RC" "broken plugin"
assert_match "bad\\.lua: rule b: 'when' must be a function" "$ERR" "names the file and the reason"
printf 'return pv.rule {\n  name = "c",\n  signal = \n' >broken/syntax.lua
pv rules -c broken.lua
assert_eq 2 "$RC" "a syntax error"
assert_match 'syntax\.lua:[0-9]+: unexpected symbol' "$ERR" "a syntax error names FILE:LINE"
assert_match 'did not load' "$ERR" "says nothing was listed"
assert_eq "" "$OUT" "nothing on stdout"
printf 'plugins = { "no-such-dir" }\n' >nodir.lua
pv rules -c nodir.lua
assert_eq 2 "$RC" "missing plugin directory"
assert_match 'no-such-dir' "$ERR" "names the directory"
printf 'plugins = { "odd", "odd" }\n' >dup.lua
pv rules -c dup.lua
assert_eq 2 "$RC" "a rule name used twice"

section "docs/rules.md's table is what 'pvwatch rules --markdown' prints"
DOC=$PV_SOURCE_DIR/docs/rules.md
doc=$(sed -n '/^<!-- BEGIN pvwatch rules --markdown -->$/,/^<!-- END pvwatch rules --markdown -->$/p' "$DOC" | sed '1d;$d')
pv rules -c pack.lua --markdown
assert_eq 0 "$RC" "--markdown exit status"
if [ "$doc" = "$OUT" ]; then
    pass
else
    fail "docs/rules.md's rule table differs from 'pvwatch rules --markdown' (regenerate: scripts in docs/rules.md): $(diff <(printf '%s\n' "$doc") <(printf '%s\n' "$OUT") | head -5)"
fi

section "exposure.rituximab_days: validated, and it moves the window"
for bad in 0 -1 1.5 '"183"'; do
    printf 'exposure = { rituximab_days = %s }\n' "$bad" >bad.lua
    pv check -c bad.lua
    assert_eq 2 "$RC" "rituximab_days = $bad rejected"
    assert_match 'exposure\.rituximab_days' "$ERR" "names the key ($bad)"
done
# rspec DAYS|none: a spec for rituximab last given 2026-01-10 and
# baricitinib from 2026-02-15 (36 days later) that expects an alert naming
# DAYS, or none.
rspec() {
    cat <<EOF2
local t = pv.test "rituximab window $1"
t:exposure { patient_id = "R1", drug = "rituximab", start = "2026-01-10",
  ["end"] = "2026-01-10" }
t:exposure { patient_id = "R1", drug = "baricitinib", dose = 2,
  start = "2026-02-15" }
EOF2
    if [ "$1" = none ]; then
        echo 't:expect_no_alert { rule = "baricitinib.combination" }'
    else
        echo 't:expect_alert { rule = "baricitinib.combination", patient_id = "R1",'
        echo '  key = "combination:rituximab", detail_has = "counts for '"$1"' days" }'
    fi
}
window() { # DAYS: a config with exposure.rituximab_days = DAYS
    printf 'plugins = { "%s" }\nscripts = { "%s/scripts" }\nexposure = { rituximab_days = %s }\n' \
        "$PACK" "$PV_SOURCE_DIR" "$1" >"w$1.lua"
}
rspec none >none.lua
rspec 183 >yes183.lua
rspec 36 >yes36.lua
window 30
pv test -c w30.lua none.lua
assert_eq 0 "$RC" "30 days: no overlap ($OUT $ERR)"
pv test -c pack.lua none.lua
assert_eq 1 "$RC" "default: the no-alert spec fails ($OUT)"
pv test -c pack.lua yes183.lua
assert_eq 0 "$RC" "default 183 days: overlap alert ($OUT $ERR)"
window 36
pv test -c w36.lua yes36.lua
assert_eq 0 "$RC" "36 days: the last counted day overlaps ($OUT $ERR)"
window 35
pv test -c w35.lua none.lua
assert_eq 0 "$RC" "35 days: ends the day before, no overlap ($OUT $ERR)"

finish
