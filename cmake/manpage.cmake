# Writes the man page pvwatch(1) from the binary's own help texts, so that
# the page says what 'pvwatch --help' and 'pvwatch COMMAND --help' say.
# cmake -DPVWATCH=path/to/pvwatch -DOUT=pvwatch.1 -DVERSION=x.y.z
#       -P cmake/manpage.cmake
foreach(v PVWATCH OUT VERSION)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "manpage.cmake: -D${v}= is required")
  endif()
endforeach()

# roff: backslashes escaped, a leading '.' or ''' made literal, '-' a real
# minus so that options can be searched and copied.
function(pv_roff text outvar)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${outvar} "${text}" PARENT_SCOPE)
endfunction()

function(pv_help outvar)
  execute_process(COMMAND ${PVWATCH} ${ARGN} --help
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc
                  ERROR_QUIET)
  if(NOT rc EQUAL 0 OR out STREQUAL "")
    message(FATAL_ERROR "manpage.cmake: '${PVWATCH} ${ARGN} --help' failed")
  endif()
  set(${outvar} "${out}" PARENT_SCOPE)
endfunction()

pv_help(main)
# The commands are the words under "commands:" in the main help.
string(REGEX MATCH "commands:\n(.*)\n\n" block "${main}")
string(REGEX MATCHALL "\n  [a-z]+ " words "\n${CMAKE_MATCH_1}")
set(commands "")
foreach(w ${words})
  string(STRIP "${w}" w)
  if(NOT w STREQUAL "version")
    list(APPEND commands ${w})
  endif()
endforeach()
list(REMOVE_DUPLICATES commands)

# string(TIMESTAMP) takes SOURCE_DATE_EPOCH when set (reproducible builds).
string(TIMESTAMP today "%Y-%m-%d" UTC)
pv_roff("${main}" m)
set(page ".TH PVWATCH 1 \"${today}\" \"pvwatch ${VERSION}\" \"User Commands\"
.SH NAME
pvwatch \\- pharmacovigilance engine: watches patients on baricitinib for the label's safety signals
.SH SYNOPSIS
.B pvwatch
.I COMMAND
[\\fIOPTIONS\\fR]
.SH DESCRIPTION
.nf
${m}.fi
.SH COMMANDS
")
foreach(c ${commands})
  pv_help(h ${c})
  pv_roff("${h}" r)
  string(APPEND page ".SS ${c}\n.nf\n${r}.fi\n")
endforeach()
string(APPEND page ".SH FILES
.TP
.I /etc/pvwatch/pvwatch.lua
The configuration the systemd unit runs with (\\fB\\-c\\fR); without \\fB\\-c\\fR,
\\fI./pvwatch.lua\\fR when present, else built\\-in defaults.
.TP
.I /usr/share/pvwatch/plugins, /usr/share/pvwatch/scripts
The installed rule pack, used when the configuration names no other and
\\fI./plugins\\fR and \\fI./scripts\\fR do not exist.
.TP
.I DATABASE.lock
Held by a running pvwatch; holds its pid and what it listens on
(\\fBpvwatch status\\fR).
.SH SEE ALSO
\\fBsystemctl\\fR(1), /usr/share/doc/pvwatch/operations.md,
/usr/share/doc/pvwatch/rules.md
")
file(WRITE ${OUT} "${page}")
