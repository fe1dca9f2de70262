# Helpers that give every module the same compile options, warnings and sanitizer flags
# without touching global CMAKE_CXX_FLAGS.

add_library(modulo_options INTERFACE)
target_compile_features(modulo_options INTERFACE cxx_std_23)
target_compile_options(modulo_options INTERFACE
  -Wall -Wextra -Wpedantic -Wno-missing-field-initializers
  $<$<CONFIG:Release,RelWithDebInfo>:-O2>)
target_compile_definitions(modulo_options INTERFACE
  BOOST_ASIO_NO_DEPRECATED BOOST_BEAST_USE_STD_STRING_VIEW)
if(MODULO_SANITIZE STREQUAL "address")
  target_compile_options(modulo_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(modulo_options INTERFACE -fsanitize=address,undefined)
elseif(MODULO_SANITIZE STREQUAL "thread")
  target_compile_options(modulo_options INTERFACE -fsanitize=thread)
  target_link_options(modulo_options INTERFACE -fsanitize=thread)
elseif(NOT MODULO_SANITIZE STREQUAL "")
  message(FATAL_ERROR "MODULO_SANITIZE must be '', 'address' or 'thread'")
endif()

# modulo_module(NAME SOURCES ... DEPS ...): one static library per module.
# Public headers live in src/modulo/<name>/*.h and are included as "modulo/<name>/x.h".
function(modulo_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(modulo_${name} STATIC ${M_SOURCES})
  add_library(modulo::${name} ALIAS modulo_${name})
  target_include_directories(modulo_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(modulo_${name} PUBLIC modulo_options ${M_DEPS})
endfunction()

# modulo_test(NAME SOURCES ... DEPS ... [LABELS ...]): a GoogleTest binary registered with ctest.
function(modulo_test name)
  if(NOT MODULO_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE modulo_options ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  include(GoogleTest)
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  gtest_discover_tests(${name} PROPERTIES LABELS "${T_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()

# modulo_benchmark(NAME SOURCES ... DEPS ...): a Google Benchmark binary (not a test).
function(modulo_benchmark name)
  if(NOT MODULO_BUILD_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(B "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${B_SOURCES})
  target_link_libraries(${name} PRIVATE modulo_options ${B_DEPS} benchmark::benchmark benchmark::benchmark_main)
endfunction()
