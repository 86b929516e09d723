#!/usr/bin/env bash
# End to end: 'pvwatch report disproportionality' (issue 18) over CSV
# spontaneous reports built to give baricitinib.md section 6 case 27's
# table, a,b,c,d = 10,90,100,9800: PRR 9.90, Yates chi-square 65.51, ROR
# 10.89 (5.50-21.54), E 1.10, IC 2.714, IC025 1.684; and, with the prior of
# case 31 (0.2, 0.1, 2, 4, 1/3), EBGM 8.083 and EB05 4.639. Then what a
# user gets wrong: a repeated row, a short row, a case split in two, bad
# options.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$T/reports.csv
# 10 X+E, 90 X+F, 100 Y+E, 9800 Y+F. Case 1 names Baricitinib twice and
# in lower case: a report counts once and names compare without case.
awk 'BEGIN {
    print "case_id,drug,event"
    print "1,Baricitinib,Herpes zoster"
    for (i = 1; i <= 10; i++) print i ",BARICITINIB,HERPES ZOSTER"
    for (i = 11; i <= 100; i++) print i ",BARICITINIB,NAUSEA"
    for (i = 101; i <= 200; i++) print i ",OTHER,HERPES ZOSTER"
    for (i = 201; i <= 10000; i++) print i ",OTHER,NAUSEA"
}' >"$R"

section "case 27 and case 31"
out=$("$PVWATCH" report disproportionality "$R" --format json \
    --prior 0.2,0.1,2,4,0.3333333333333333 --drug baricitinib 2>"$T/err")
assert_eq 0 $? "exit status"
assert_eq 10000 "$(json "$out" 'J["reports"]')" "reports counted once each"
assert_eq "HERPES ZOSTER NAUSEA" "$(json "$out" '" ".join(r["event"] for r in J["rows"])')" \
    "--drug keeps baricitinib's two pairs, sorted by EB05"
r='J["rows"][0]'
assert_eq "BARICITINIB HERPES ZOSTER 10 90 100 9800" \
    "$(json "$out" "' '.join(str(x) for x in [${r}['drug'], ${r}['event'], ${r}['a'], ${r}['b'], ${r}['c'], ${r}['d']])")" \
    "the 2x2 cells"
assert_eq "9.90 65.51 10.89 5.50 21.54 1.10" \
    "$(json "$out" "' '.join('%.2f' % ${r}[k] for k in 'prr chi2 ror ror_lo ror_hi expected'.split())")" \
    "PRR, chi2, ROR and its CI, E"
assert_eq "2.714 1.684 8.083 4.639" \
    "$(json "$out" "' '.join('%.3f' % ${r}[k] for k in 'ic ic025 ebgm eb05'.split())")" \
    "IC, IC025, EBGM, EB05"
assert_eq "True True True True" \
    "$(json "$out" "' '.join(str(${r}[k]) for k in 'evans ror_signal ic_signal eb05_signal'.split())")" \
    "signal flags"
assert_eq "" "$(cat "$T/err")" "nothing on stderr"

section "the fitted prior and the other formats"
out=$("$PVWATCH" report disproportionality "$R" --format json --min-count 1)
assert_eq 0 $? "exit status with a fitted prior"
assert_eq 4 "$(json "$out" 'len(J["rows"])')" "all four pairs at --min-count 1"
assert_eq "True" "$(json "$out" 'all(J["prior"][k] > 0 for k in J["prior"]) and J["prior"]["p"] < 1')" \
    "a fitted prior"
assert_eq "BARICITINIB/HERPES ZOSTER" \
    "$(json "$out" 'J["rows"][0]["drug"] + "/" + J["rows"][0]["event"]')" \
    "sorted by EB05: the disproportionate pair first"
csv=$("$PVWATCH" report disproportionality "$R" --format csv --min-count 1)
assert_eq 5 "$(wc -l <<<"$csv")" "CSV: a header and four rows"
assert_match '^drug,event,a,b,c,d,prr,' "$(head -1 <<<"$csv")" "CSV header"
txt=$("$PVWATCH" report disproportionality "$R")
assert_match 'BARICITINIB +HERPES ZOSTER +10 +90 +100 +9800 +9\.90' "$txt" \
    "text table"
assert_match 'Evans ROR IC' "$txt" "text flags"

section "bad rows are skipped and named; the rest is counted"
{
    cat "$R"
    echo "10001,BARICITINIB"
    echo "10002,,NAUSEA"
    echo "10003,BARICITINIB,NAUSEA"
} >"$T/bad.csv"
out=$("$PVWATCH" report disproportionality "$T/bad.csv" --format json \
    --drug baricitinib 2>"$T/err")
assert_eq 0 $? "exit status with bad rows"
assert_match "bad.csv:10003: 2 fields, expected 3" "$(cat "$T/err")" \
    "short row named by file and line"
assert_match "bad.csv:10004: field drug is empty" "$(cat "$T/err")" \
    "empty field named"
assert_eq 10001 "$(json "$out" 'J["reports"]')" "the good row after them counted"
assert_match "2 of 10004 rows skipped" "$(cat "$T/err")" "the count of skipped rows"

section "a case split in two is refused, not counted twice"
{
    cat "$R"
    echo "5,BARICITINIB,HERPES ZOSTER"
} >"$T/split.csv"
"$PVWATCH" report disproportionality "$T/split.csv" >/dev/null 2>"$T/err"
assert_eq 1 $? "exit 1"
assert_match "split.csv:10003: case_id 5 comes back after other cases \(its rows began at line 7\)" \
    "$(cat "$T/err")" "both lines named"

section "usage"
"$PVWATCH" report disproportionality >/dev/null 2>&1
assert_eq 2 $? "no files: usage"
"$PVWATCH" report disproportionality "$R" --prior 1,2,3 >/dev/null 2>"$T/err"
assert_eq 2 $? "a short --prior"
assert_match "five positive numbers" "$(cat "$T/err")" "says what a prior is"
"$PVWATCH" report disproportionality "$R" --min-count 0 >/dev/null 2>&1
assert_eq 2 $? "--min-count 0"
"$PVWATCH" report disproportionality "$T/missing.csv" >/dev/null 2>"$T/err"
assert_eq 1 $? "a missing file"
assert_match "missing.csv: No such file" "$(cat "$T/err")" "names the file"
"$PVWATCH" report disproportionality --help | grep -q "a = drug and event"
assert_eq 0 $? "--help states the cell convention"
"$PVWATCH" report nonsense >/dev/null 2>&1
assert_eq 2 $? "an unknown report"

finish
