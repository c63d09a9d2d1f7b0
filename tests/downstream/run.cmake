# Installs pdiff into a scratch prefix, then configures, builds and runs a separate project that
# uses it through find_package(pdiff CONFIG REQUIRED). Run with cmake -P.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
macro(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "downstream: `${ARGN}` failed (${rc}):\n${out}")
  endif()
endmacro()
# With CUDA the install holds the compiled op library (pdiff_cuda_ops), so pdiff is built first; the
# same flags and ccache as the main build make that a cache hit there.
find_program(CCACHE ccache)
set(launch "")
if(CCACHE)
  set(launch -DCMAKE_CXX_COMPILER_LAUNCHER=${CCACHE} -DCMAKE_CUDA_COMPILER_LAUNCHER=${CCACHE})
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/pdiff -G ${GENERATOR} -DPDIFF_BUILD_TESTS=OFF
    -DPDIFF_BUILD_BENCH=OFF -DPDIFF_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX=${prefix} -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_CUDA_ARCHITECTURES=80;90a" ${launch})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/pdiff)
run(${CMAKE_COMMAND} --install ${WORK_DIR}/pdiff)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/downstream/project -B ${WORK_DIR}/user -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/user)
run(${WORK_DIR}/user/downstream_user)
message(STATUS "downstream: ${out}")
