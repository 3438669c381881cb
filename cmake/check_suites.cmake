# Run by ctest: fails if a test executable holds a top-level suite that shoal_add_test(SUITES ...)
# did not register, so no suite is silently left out of ctest.
# Inputs: -DEXE=path -DSUITES="a;b;c"
execute_process(COMMAND ${EXE} --list_content ERROR_VARIABLE listing OUTPUT_VARIABLE out
                RESULT_VARIABLE rc)
string(REPLACE "\n" ";" lines "${listing}${out}")
set(missing "")
foreach(line ${lines})
  if(line MATCHES "^([A-Za-z0-9_]+)\\*?$")
    list(FIND SUITES "${CMAKE_MATCH_1}" found)
    if(found EQUAL -1)
      list(APPEND missing "${CMAKE_MATCH_1}")
    endif()
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "suites not registered with ctest: ${missing}")
endif()
