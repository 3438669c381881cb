# Build settings shared by every shoal target, and the helper that registers tests.

# The "Sanitize" build type: AddressSanitizer + UndefinedBehaviorSanitizer, optimised enough to
# run the property tests in reasonable time, and stopping at the first report.
set(CMAKE_CXX_FLAGS_SANITIZE
    "-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    CACHE STRING "Flags for the Sanitize build type" FORCE)
set(CMAKE_EXE_LINKER_FLAGS_SANITIZE "-fsanitize=address,undefined"
    CACHE STRING "Linker flags for the Sanitize build type" FORCE)
set(CMAKE_SHARED_LINKER_FLAGS_SANITIZE "-fsanitize=address,undefined"
    CACHE STRING "Linker flags for the Sanitize build type" FORCE)
mark_as_advanced(CMAKE_CXX_FLAGS_SANITIZE CMAKE_EXE_LINKER_FLAGS_SANITIZE
                 CMAKE_SHARED_LINKER_FLAGS_SANITIZE)

# shoal_warnings(target): the warning set every shoal target compiles with.
function(shoal_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wcast-align -Wunused -Woverloaded-virtual
                                           -Wnull-dereference -Wimplicit-fallthrough)
  # g++ 12 reports -Wrestrict false positives inside libstdc++ for `"literal" + std::string`
  # (GCC bug 105329); the warning stays on for other compilers.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(SHOAL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# shoal_library(name SOURCES ... DEPS ...): a layer's library. Includes resolve from the repo root
# ("crdt/hlc.h"), so every include names its layer.
function(shoal_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  shoal_warnings(${name})
endfunction()

# shoal_add_test(name SOURCES ... DEPS ... LABELS ... [SUITES ...] [LARGE_SUITES ...] [TIMEOUT s]):
# one Boost.Test executable. With SUITES, each top-level suite is its own ctest test (name.suite),
# so ctest -j runs them in parallel and a failure names its suite; without, the whole executable is
# one test. LARGE_SUITES are registered the same way with the extra label "large" (too slow for
# the sanitizer build, which skips them).
function(shoal_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS;SUITES;LARGE_SUITES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} shoal_test_main)
  shoal_warnings(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(ARG_SUITES)
    foreach(suite ${ARG_SUITES})
      add_test(NAME ${name}.${suite} COMMAND ${name} --run_test=${suite} --report_level=short)
      set_tests_properties(${name}.${suite} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
    endforeach()
    foreach(suite ${ARG_LARGE_SUITES})
      add_test(NAME ${name}.${suite} COMMAND ${name} --run_test=${suite} --report_level=short)
      set_tests_properties(${name}.${suite} PROPERTIES LABELS "${ARG_LABELS};large"
                                                       TIMEOUT ${ARG_TIMEOUT})
    endforeach()
    set(all_suites ${ARG_SUITES} ${ARG_LARGE_SUITES})
    add_test(NAME ${name}.suites_registered
             COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:${name}> "-DSUITES=${all_suites}"
                     -P ${PROJECT_SOURCE_DIR}/cmake/check_suites.cmake)
    set_tests_properties(${name}.suites_registered PROPERTIES LABELS "${ARG_LABELS}")
  else()
    add_test(NAME ${name} COMMAND ${name} --report_level=short)
    set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
  endif()
endfunction()
