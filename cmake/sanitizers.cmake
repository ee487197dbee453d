# Sanitizer and fuzzer builds (docs/reliability.md), from RINGTRAIN_SANITIZE = "" | address | thread and RINGTRAIN_FUZZ.
#   address: AddressSanitizer + UndefinedBehaviorSanitizer (every UB finding fatal), libstdc++'s assertions on.
#   thread:  ThreadSanitizer.
#   RINGTRAIN_FUZZ=ON (clang only): every object also gets -fsanitize=fuzzer-no-link so libFuzzer sees its edges; the
#            fuzz targets in tests/fuzz link libFuzzer's main. Usually with RINGTRAIN_SANITIZE=address.
# The flags apply to everything this project compiles (our rooms, protoc's code, the tests); the Debian libraries
# (Open MPI, oneDNN, yaml-cpp, protobuf, libgomp) stay uninstrumented, which is why launch/sanitizers.sh carries the
# suppressions in tests/sanitizers/.
set(RINGTRAIN_SANITIZE "" CACHE STRING "Sanitizer build: address (ASan+UBSan), thread (TSan), or empty for none")
set_property(CACHE RINGTRAIN_SANITIZE PROPERTY STRINGS "" address thread)
option(RINGTRAIN_FUZZ "Build the libFuzzer targets in tests/fuzz (clang)" OFF)

set(rt_sanitize_flags "")
if(RINGTRAIN_SANITIZE STREQUAL "address")
  list(APPEND rt_sanitize_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined)
  add_compile_definitions(_GLIBCXX_ASSERTIONS)
  # GCC warns of maybe-uninitialized values inside libstdc++ (std::regex, std::function) only when instrumenting:
  # known false positives of its sanitizer builds.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-Wno-maybe-uninitialized>)
  endif()
elseif(RINGTRAIN_SANITIZE STREQUAL "thread")
  list(APPEND rt_sanitize_flags -fsanitize=thread)
elseif(NOT RINGTRAIN_SANITIZE STREQUAL "")
  message(FATAL_ERROR "RINGTRAIN_SANITIZE is '${RINGTRAIN_SANITIZE}'; valid: address, thread, or empty")
endif()
if(RINGTRAIN_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "RINGTRAIN_FUZZ needs clang (libFuzzer); configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  list(APPEND rt_sanitize_flags -fsanitize=fuzzer-no-link)
endif()
if(rt_sanitize_flags)
  # clang cannot vectorize some `omp simd` loops once they are instrumented, and says so (-Wpass-failed), which
  # -Werror would make fatal; the plain build keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-Wno-pass-failed>)
  endif()
  # Frame pointers and line tables make every report's stack readable; the optimisation stays the build type's, so the
  # suites' real training runs stay fast enough to run whole.
  foreach(flag IN LISTS rt_sanitize_flags ITEMS -fno-omit-frame-pointer -g)
    add_compile_options($<$<COMPILE_LANGUAGE:CXX>:${flag}>)
  endforeach()
  add_link_options(${rt_sanitize_flags})
  set(RT_SANITIZED ON)
else()
  set(RT_SANITIZED OFF)
endif()
