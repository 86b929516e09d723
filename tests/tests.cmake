# Every test is registered here from the files that exist, so adding a test
# is adding a file: tests/unit/test_NAME.c, tests/lua/test_NAME.lua,
# tests/fuzz/fuzz_NAME.c (+ tests/fuzz/corpus/NAME/), tests/e2e/NAME.sh.

set(PV_TEST_ENV
  "PVWATCH=$<TARGET_FILE:pvwatch>"
  "PV_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "PV_SHARED_DIR=${CMAKE_SOURCE_DIR}/../shared"
  "PV_BUILD_DIR=${CMAKE_BINARY_DIR}")

# C unit tests, one executable each, linked against the core library.
file(GLOB PV_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${PV_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(${name} PRIVATE pvcore)
  add_test(NAME unit.${name} COMMAND ${name}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/unit)
  set_tests_properties(unit.${name} PROPERTIES ENVIRONMENT "${PV_TEST_ENV}"
                       TIMEOUT 120)
endforeach()

# Pure Lua tests of the modules in scripts/, run by a small host that only
# sets package.path to scripts/.
add_executable(pvlua ${CMAKE_SOURCE_DIR}/tests/lua/runner.c)
target_link_libraries(pvlua PRIVATE PkgConfig::LUA m)
file(GLOB PV_LUA_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/lua/test_*.lua)
foreach(src ${PV_LUA_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME lua.${name}
           COMMAND pvlua ${CMAKE_SOURCE_DIR}/scripts ${src})
endforeach()

# Fuzz targets: each is replayed over its committed corpus by a plain driver,
# so gcc builds exercise them too; with PV_FUZZ a libFuzzer binary is built.
file(GLOB PV_FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${PV_FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" short ${name})
  add_executable(replay_${short} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay.c)
  target_link_libraries(replay_${short} PRIVATE pvcore)
  add_test(NAME fuzz.${short}
           COMMAND replay_${short} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${short})
  set_tests_properties(fuzz.${short} PROPERTIES TIMEOUT 300)
  if(PV_FUZZ)
    add_executable(${name} ${src})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE pvcore)
  endif()
endforeach()

# End-to-end tests: the real binary in a temporary directory.
file(GLOB PV_E2E_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/test_*.sh)
foreach(src ${PV_E2E_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME e2e.${name} COMMAND bash ${src})
  set_tests_properties(e2e.${name} PROPERTIES ENVIRONMENT "${PV_TEST_ENV}"
                       TIMEOUT 300)
endforeach()

# Rule specs, run by the real binary's 'pvwatch test' against plugins/.
add_test(NAME rules.specs
         COMMAND pvwatch test ${CMAKE_SOURCE_DIR}/tests/rules
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})

# Rule specs under the other labels: tests/rules-label/NAME.conf selects the
# label (COVID-19, EU) for the specs in tests/rules-label/NAME/.
file(GLOB PV_LABEL_CONFS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/rules-label/*.conf)
foreach(conf ${PV_LABEL_CONFS})
  get_filename_component(name ${conf} NAME_WE)
  add_test(NAME rules.specs.${name}
           COMMAND pvwatch test -c ${conf} ${CMAKE_SOURCE_DIR}/tests/rules-label/${name}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()

# Crash consistency (issue 6): 'pvwatch run' killed with SIGKILL at random
# moments under MLLP senders, a growing tailed file, inbox files and a real
# SMTP server. The short setting here; the long one by hand:
# tests/crash/run.sh --kills 60 (tests/crash/README.md).
add_test(NAME crash.short
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/crash/run.sh --kills 8)
set_tests_properties(crash.short PROPERTIES ENVIRONMENT "${PV_TEST_ENV}"
                     TIMEOUT 300)

# Power loss: the same run, but each kill is also a power cut. The
# LD_PRELOAD library iolog records pvwatch's writes and syncs to the files
# of the work directory; after each SIGKILL crash.py undoes the writes no
# sync covered (tests/crash/README.md, "Power loss"). Not in sanitizer
# builds: the ASan runtime in the executable intercepts write() and pwrite()
# before a preloaded library can.
add_library(pv_iolog MODULE ${CMAKE_SOURCE_DIR}/tests/crash/iolog.c)
set_target_properties(pv_iolog PROPERTIES PREFIX "")
find_package(Threads REQUIRED)
target_link_libraries(pv_iolog PRIVATE ${CMAKE_DL_LIBS} Threads::Threads)
if(NOT PV_SANITIZE)
  add_test(NAME crash.powerloss
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/crash/run.sh --kills 8
                   --power-loss $<TARGET_FILE:pv_iolog>)
  set_tests_properties(crash.powerloss PROPERTIES ENVIRONMENT "${PV_TEST_ENV}"
                       TIMEOUT 300)
endif()

# Fault injection (issue 20 part 2; docs/reliability.md "Fault injection"):
# the pipeline over a small HL7 + CSV feed with the full pack, failing the
# Nth allocation of pvwatch's malloc family (linked through --wrap), of the
# rules' Lua allocator and of SQLite's, one run per N.
add_executable(faultsim ${CMAKE_SOURCE_DIR}/tests/fault/faultsim.c)
target_link_libraries(faultsim PRIVATE pvcore)
target_link_options(faultsim PRIVATE
  -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup)
add_test(NAME fault.faultsim COMMAND faultsim)
set_tests_properties(fault.faultsim PROPERTIES ENVIRONMENT "${PV_TEST_ENV}"
                     TIMEOUT 300)
