# Slurm on the local cluster (label slurm), included by tests/cluster/CMakeLists.txt: a fixture starts a 2-node cluster
# of its own (rtslurm) with munged, slurmctld and a slurmd per node, and removes it last, also when a test fails or
# times out; without root or Debian's slurm-wlm it says so and everything skips.
set(RT_SLURM_CLUSTER rtslurm)
set(RT_SLURM_FIXTURE ${CMAKE_CURRENT_LIST_DIR}/slurm_fixture.sh)
add_test(NAME slurm_up COMMAND ${RT_SLURM_FIXTURE} up)
add_test(NAME slurm_down COMMAND ${RT_SLURM_FIXTURE} down)
set_tests_properties(slurm_up slurm_down PROPERTIES ENVIRONMENT RINGTRAIN_CLUSTER=${RT_SLURM_CLUSTER} LABELS slurm
                                                    TIMEOUT 90 RUN_SERIAL TRUE)
set_tests_properties(slurm_up slurm_down PROPERTIES SKIP_RETURN_CODE 77)
set_tests_properties(slurm_up PROPERTIES FIXTURES_SETUP slurm_cluster)
set_tests_properties(slurm_down PROPERTIES FIXTURES_CLEANUP slurm_cluster)

add_executable(slurm_test ${CMAKE_CURRENT_LIST_DIR}/slurm_test.cpp)
add_dependencies(slurm_test ringtrain)
target_link_libraries(slurm_test PRIVATE GTest::gtest_main rt_warnings)
target_include_directories(slurm_test PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_definitions(slurm_test PRIVATE RINGTRAIN_BIN="$<TARGET_FILE:ringtrain>"
                                              RINGTRAIN_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                              SLURM_CLUSTER="${RT_SLURM_CLUSTER}")
# One ctest test per case, each with its own time limit.
foreach(case_timeout BatchScriptTrainsAcrossTwoNodes:150 PreemptedJobIsRequeuedAndEndsAtTheUninterruptedLoss:240
                     BadInputGetsOneSentenceAndExitCode2:90)
  string(REPLACE ":" ";" parts ${case_timeout})
  list(GET parts 0 case)
  list(GET parts 1 timeout)
  add_test(NAME slurm.${case} COMMAND slurm_test --gtest_filter=Slurm.${case})
  set_tests_properties(slurm.${case} PROPERTIES LABELS slurm FIXTURES_REQUIRED slurm_cluster TIMEOUT ${timeout}
                                                RUN_SERIAL TRUE SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
endforeach()
