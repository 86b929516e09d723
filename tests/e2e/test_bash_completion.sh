#!/usr/bin/env bash
# test_bash_completion: packaging/bash-completion/pvwatch completes the
# commands, each command's options and actions, option values and file
# names (issue 21 part 3). Sourced and called as bash calls it, with and
# without the bash-completion package's helpers.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMPLETION=$PV_SOURCE_DIR/packaging/bash-completion/pvwatch

# complete_words WORD...: the completions of the last word (may be empty)
# of the command line WORD..., sorted, one line.
complete_words() {
    bash -c '
        [ -n "$2" ] && . "$2"
        . "$1"
        shift 2
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="${COMP_WORDS[*]}"
        COMP_POINT=${#COMP_LINE}
        _pvwatch pvwatch "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        [ "${#COMPREPLY[@]}" -gt 0 ] &&
            printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "
    ' complete "$COMPLETION" "$HELPERS" "$@"
}

mkdir comp && cd comp || exit 1
touch pv.lua other.lua notes.txt
mkdir -p feeds

run_cases() {
    section "commands ($1)"
    assert_match "^alerts check ingest outbox replay report rules run send serve status test users version " \
        "$(complete_words pvwatch '' | sed 's/--[a-z]* //g; s/help //')" \
        "every command"
    assert_eq "status " "$(complete_words pvwatch st)" "'st' -> status"
    assert_eq "replay report rules run " "$(complete_words pvwatch r)" "'r' -> replay rules run"

    section "options ($1)"
    assert_eq "--config --help --json " "$(complete_words pvwatch status --)" \
        "status options"
    assert_eq "--config --db --help " "$(complete_words pvwatch ingest --)" \
        "ingest options"
    assert_eq "--since " "$(complete_words pvwatch replay --si)" "replay --since"

    section "actions and values ($1)"
    assert_eq "ack assign close comment list show " "$(complete_words pvwatch alerts '')" \
        "alerts actions"
    assert_eq "" "$(complete_words pvwatch alerts list '')" \
        "no second action"
    assert_eq "list retry " "$(complete_words pvwatch outbox -c pv.lua '')" \
        "outbox actions after -c FILE"
    assert_eq "acknowledged " "$(complete_words pvwatch alerts --status ac)" \
        "alert status values"
    assert_eq "failed " "$(complete_words pvwatch outbox --status f)" \
        "outbox status values"
    assert_eq "reviewer " "$(complete_words pvwatch users add bob --role r)" \
        "users --role values"
    assert_eq "list stats " "$(complete_words pvwatch rules '')" \
        "rules actions"

    section "files ($1)"
    assert_eq "feeds/ other.lua pv.lua " \
        "$(complete_words pvwatch check -c '' | sed 's|feeds |feeds/ |')" \
        "-c: .lua files and directories"
    assert_match "notes.txt" "$(complete_words pvwatch ingest '')" \
        "ingest: any file"
}

HELPERS=""
section "every command of 'pvwatch --help' is completed"
all=$(complete_words pvwatch '')
for c in $("$PVWATCH" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p'); do
    assert_match "(^| )$c " "$all" "completes '$c'"
done
run_cases "plain bash"
if [ -f /usr/share/bash-completion/bash_completion ]; then
    HELPERS=/usr/share/bash-completion/bash_completion
    run_cases "with bash-completion"
fi

finish
