# Runs PROGRAM and compares its standard output with EXPECTED, line by line. A line of
# EXPECTED is literal, except one that starts with "~ ": the rest is a regular
# expression the whole output line must match (for timings and random values).
#
#   cmake -DPROGRAM=path [-DARGS="a;b"] -DEXPECTED=file -P check_output.cmake

execute_process(COMMAND ${PROGRAM} ${ARGS} OUTPUT_VARIABLE output ERROR_VARIABLE errors RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${status}\n${output}${errors}")
endif()
if(NOT errors STREQUAL "")
  message(FATAL_ERROR "${PROGRAM} wrote to stderr:\n${errors}")
endif()

file(STRINGS ${EXPECTED} expected_lines)
string(REGEX REPLACE "\n$" "" output "${output}")
string(REPLACE ";" "\\;" output "${output}")
string(REPLACE "\n" ";" actual_lines "${output}")

list(LENGTH expected_lines expected_count)
list(LENGTH actual_lines actual_count)
if(NOT expected_count EQUAL actual_count)
  message(FATAL_ERROR "expected ${expected_count} lines, got ${actual_count}:\n${output}")
endif()

math(EXPR last "${expected_count} - 1")
foreach(i RANGE ${last})
  list(GET expected_lines ${i} want)
  list(GET actual_lines ${i} got)
  if(want MATCHES "^~ (.*)$")
    if(NOT got MATCHES "^${CMAKE_MATCH_1}$")
      message(FATAL_ERROR "line ${i}: '${got}' does not match /${CMAKE_MATCH_1}/")
    endif()
  elseif(NOT got STREQUAL want)
    message(FATAL_ERROR "line ${i}: expected '${want}', got '${got}'")
  endif()
endforeach()
message(STATUS "${expected_count} lines as expected")
