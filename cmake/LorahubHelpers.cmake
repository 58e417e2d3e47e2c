set(LORAHUB_WARNINGS -Wall -Wextra -Wpedantic -Wshadow=local -Wno-unused-parameter)

# lorahub_module(<name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# One static library per module: lorahub_<name>, public headers in include/lorahub/<name>/.
function(lorahub_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(lorahub_${name} STATIC ${ARG_SOURCES})
  add_library(lorahub::${name} ALIAS lorahub_${name})
  target_include_directories(lorahub_${name}
    PUBLIC ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(lorahub_${name} PRIVATE ${LORAHUB_WARNINGS})
  target_link_libraries(lorahub_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# lorahub_test(<name> SOURCES ... DEPS ... [LABELS ...])
# A GoogleTest executable whose cases ctest discovers one by one.
function(lorahub_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(${name} PRIVATE ${LORAHUB_WARNINGS})
  target_compile_definitions(${name} PRIVATE
    LORAHUB_TEST_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures"
    LORAHUB_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()
include(GoogleTest)
