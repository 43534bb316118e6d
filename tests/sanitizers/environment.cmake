# Runtime options of the sanitizer trees (CMake's CAIRN_SANITIZE): ctest
# includes this file while it reads the tests, and the tests inherit its
# environment, so `ctest --test-dir build-asan` by hand runs as tools/run-tests
# does. A variable already set in the caller's environment wins.
#
# ASan: LeakSanitizer on (gcc's default on x86-64), stop at the first error.
# UBSan: a stack for each report (the build passes -fno-sanitize-recover, so a
# report fails the test). TSan: reports go on after the first race so one run
# shows them all, then the process exits 66 and ctest fails the test. The
# suppression files name uninstrumented third-party code only.
set(cairn_sanitizer_dir "${CMAKE_CURRENT_LIST_DIR}")
function(cairn_sanitizer_default variable value)
  if(NOT DEFINED ENV{${variable}})
    set(ENV{${variable}} "${value}")
  endif()
endfunction()
cairn_sanitizer_default(ASAN_OPTIONS
  "detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1")
cairn_sanitizer_default(LSAN_OPTIONS "suppressions=${cairn_sanitizer_dir}/lsan.supp:print_suppressions=0")
cairn_sanitizer_default(UBSAN_OPTIONS "print_stacktrace=1:halt_on_error=1")
cairn_sanitizer_default(TSAN_OPTIONS
  "suppressions=${cairn_sanitizer_dir}/tsan.supp:second_deadlock_stack=1:history_size=4")
