#!/usr/bin/env bash
# The examples of docs/rules.md run as tests (STYLE.md item 10).
#
# Every fenced block whose info string starts with `lua spec` or
# `lua plugin` is extracted into its own file, padded with blank lines so
# that a FILE:LINE in a message is the line in docs/rules.md, then:
#   ```lua plugin NAME       must load alone: `pvwatch check -c CFG` with a
#                            plugins directory holding only NAME.lua and the
#                            repository's scripts/
#   ```lua spec uses=A,B     `pvwatch test -c CFG FILE` with only plugins A, B
#                            (uses=none: an empty plugins directory)
#   ```lua spec              `pvwatch test FILE`: the repository's plugins/
# Specs run from the repository root ($PV_SOURCE_DIR). When luacheck is
# installed, every extracted block is also linted (std lua54, global pv).
# Prints 'N passed, N failed' (one per block, plus the lint) and fails if
# any failed.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOC=${PV_DOC:-$PV_SOURCE_DIR/docs/rules.md}
SCRIPTS=$PV_SOURCE_DIR/scripts
REL=${DOC#"$PV_SOURCE_DIR"/}

mkdir -p "$T/blocks" || exit 1

# extract: writes $T/blocks/L<line>.lua for each block (the fence's line)
# and prints one index line per block: LINE KIND ARG (ARG = the plugin's
# name, or the uses= list, '-' for a spec without uses).
extract() {
    awk -v dir="$T/blocks" '
        # Every fence (``` or ~~~) is tracked, so that a fence quoted
        # inside another block is not taken for an example.
        !inf && /^(```|~~~)/ {
            inf = substr($0, 1, 3)
            kind = ""
            if (inf == "```" && $0 ~ /^```lua[[:space:]]+(spec|plugin)([[:space:]]|$)/) {
                n = split($0, w, /[[:space:]]+/)
                kind = w[2]
                arg = "-"
                if (kind == "plugin") {
                    arg = (n >= 3 && w[3] != "") ? w[3] : "block" NR
                } else {
                    for (i = 3; i <= n; i++)
                        if (w[i] ~ /^uses=/) arg = substr(w[i], 6)
                    if (arg == "") arg = "none"
                }
                file = dir "/L" NR ".lua"
                # Pad so that line k of the block is line NR + k of the doc.
                for (i = 1; i <= NR; i++) print "" > file
                print NR, kind, arg
            }
            next
        }
        inf && substr($0, 1, 3) == inf && $0 ~ /^(```|~~~)[[:space:]]*$/ {
            if (kind != "") close(file)
            inf = ""
            next
        }
        inf && kind != "" { print > file }
        END { if (inf) { print "unclosed fence" > "/dev/stderr"; exit 1 } }
    ' "$DOC"
}

if [ ! -f "$DOC" ]; then
    echo "$DOC: not found" >&2
    exit 1
fi
INDEX=$(extract) || {
    fail "$REL: cannot extract the examples"
    finish
}

# Plugin blocks by name, so that specs can use them.
declare -A PLUGIN_LINE=()
while read -r line kind arg; do
    [ "$kind" = plugin ] || continue
    if [ -n "${PLUGIN_LINE[$arg]:-}" ]; then
        fail "$REL:$line: plugin name '$arg' is used twice (also line ${PLUGIN_LINE[$arg]})"
        continue
    fi
    PLUGIN_LINE[$arg]=$line
done <<<"$INDEX"

# config DIR: a configuration with DIR/plugins as the only plugin
# directory and the repository's scripts; prints its path.
config() {
    mkdir -p "$1/plugins"
    cat >"$1/pv.lua" <<EOF
plugins = { "$1/plugins" }
scripts = { "$SCRIPTS" }
EOF
    printf '%s/pv.lua' "$1"
}

# report OK LINE WHAT: records the block's result, showing pvwatch's output
# for a failure.
report() {
    if [ "$1" = 0 ]; then
        pass
    else
        fail "$REL${2:+:$2}: $3"
        sed 's/^/    /' "$T/.out" "$T/.err"
    fi
}

nblocks=0
section "examples of $REL"
while read -r line kind arg; do
    [ -n "$line" ] || continue
    nblocks=$((nblocks + 1))
    file="$T/blocks/L$line.lua"
    case "$kind" in
    plugin)
        [ "${PLUGIN_LINE[$arg]:-}" = "$line" ] || continue
        dir="$T/check/$arg"
        cfg=$(config "$dir")
        cp "$file" "$dir/plugins/$arg.lua"
        (cd "$PV_SOURCE_DIR" && "$PVWATCH" check -c "$cfg") >"$T/.out" 2>"$T/.err"
        rc=$?
        if [ $rc = 0 ] && ! grep -q '^1 rule loaded$\|^[0-9]* rules loaded$' "$T/.out"; then
            rc=1
        fi
        report $rc "$line" "plugin '$arg' does not load"
        ;;
    spec)
        if [ "$arg" = - ]; then
            (cd "$PV_SOURCE_DIR" && "$PVWATCH" test "$file") >"$T/.out" 2>"$T/.err"
            report $? "$line" "spec failed (against $PV_SOURCE_DIR/plugins)"
            continue
        fi
        dir="$T/spec/L$line"
        cfg=$(config "$dir")
        missing=""
        if [ "$arg" != none ]; then
            IFS=, read -r -a used <<<"$arg"
            for name in "${used[@]}"; do
                if [ -z "${PLUGIN_LINE[$name]:-}" ]; then
                    missing="$missing $name"
                else
                    cp "$T/blocks/L${PLUGIN_LINE[$name]}.lua" "$dir/plugins/$name.lua"
                fi
            done
        fi
        if [ -n "$missing" ]; then
            fail "$REL:$line: spec uses unknown plugin block(s):$missing"
            continue
        fi
        (cd "$PV_SOURCE_DIR" && "$PVWATCH" test -c "$cfg" "$file") >"$T/.out" 2>"$T/.err"
        report $? "$line" "spec failed (uses=$arg)"
        ;;
    esac
done <<<"$INDEX"

if [ "$nblocks" = 0 ]; then
    fail "$REL: no \`\`\`lua spec or \`\`\`lua plugin blocks found"
fi

if command -v luacheck >/dev/null 2>&1; then
    section "luacheck of the examples"
    cat >"$T/blocks/.luacheckrc" <<'EOF'
std = "lua54"
max_line_length = 100
read_globals = { "pv" }
EOF
    (cd "$T/blocks" && luacheck --config .luacheckrc --no-color \
        --formatter plain ./*.lua) >"$T/.out" 2>"$T/.err"
    rc=$?
    # Name the doc instead of the extracted file: the lines already match.
    sed -i "s#^\(\./\)\{0,1\}L[0-9]*\.lua:#$REL:#" "$T/.out"
    report $rc "" "luacheck warnings in the examples"
else
    echo "(luacheck not installed: examples not linted)"
fi

finish
