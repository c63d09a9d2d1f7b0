# Detects the optional parts of pdiff and defines pdiff_link_optional(<target>).
# Used both by the build tree and by the installed package config, so a downstream project sees
# the same PDIFF_WITH_* as pdiff's own tests.
include_guard(GLOBAL)

set(PDIFF_WITH_CUDA OFF)
set(PDIFF_WITH_NCCL OFF)
set(PDIFF_WITH_MPI OFF)
set(PDIFF_WITH_OPENBLAS OFF)

if(NOT DEFINED PDIFF_ENABLE_CUDA OR PDIFF_ENABLE_CUDA)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND AND TARGET CUDA::cublasLt)
    set(PDIFF_WITH_CUDA ON)
  endif()
endif()

if(PDIFF_WITH_CUDA AND (NOT DEFINED PDIFF_ENABLE_NCCL OR PDIFF_ENABLE_NCCL))
  find_path(PDIFF_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(PDIFF_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(PDIFF_NCCL_INCLUDE_DIR AND PDIFF_NCCL_LIBRARY)
    set(PDIFF_WITH_NCCL ON)
  endif()
endif()

if(NOT DEFINED PDIFF_ENABLE_MPI OR PDIFF_ENABLE_MPI)
  find_package(MPI QUIET COMPONENTS CXX)
  if(MPI_CXX_FOUND)
    set(PDIFF_WITH_MPI ON)
  endif()
endif()

# OpenBLAS for the CPU backend's GEMM (backend/cpu/blas.hpp; Eigen's GEMM otherwise). Debian's
# libopenblas-dev puts cblas.h next to openblas_config.h under an include/<arch>/openblas-* folder.
if(NOT DEFINED PDIFF_ENABLE_OPENBLAS OR PDIFF_ENABLE_OPENBLAS)
  find_path(PDIFF_OPENBLAS_INCLUDE_DIR openblas_config.h
            PATH_SUFFIXES openblas openblas-pthread openblas-openmp openblas-serial
                          x86_64-linux-gnu/openblas-pthread aarch64-linux-gnu/openblas-pthread)
  find_library(PDIFF_OPENBLAS_LIBRARY NAMES openblas)
  if(PDIFF_OPENBLAS_INCLUDE_DIR AND PDIFF_OPENBLAS_LIBRARY AND EXISTS "${PDIFF_OPENBLAS_INCLUDE_DIR}/cblas.h")
    set(PDIFF_WITH_OPENBLAS ON)
  endif()
endif()

message(STATUS "pdiff: CUDA=${PDIFF_WITH_CUDA} NCCL=${PDIFF_WITH_NCCL} MPI=${PDIFF_WITH_MPI} OpenBLAS=${PDIFF_WITH_OPENBLAS}")

# pdiff_link_optional(<target> [BUILD]): attaches the detected optional parts. With BUILD the
# links are wrapped in $<BUILD_INTERFACE:...> so install(EXPORT) does not carry them; the installed
# config calls it again on the imported target after re-detecting.
function(pdiff_link_optional target)
  set(a "")
  set(b "")
  if("BUILD" IN_LIST ARGN)
    set(a "$<BUILD_INTERFACE:")
    set(b ">")
  endif()
  set(defs "")
  set(libs "")
  set(incs "")
  if(PDIFF_WITH_CUDA)
    list(APPEND defs PDIFF_WITH_CUDA=1)
    list(APPEND libs CUDA::cudart CUDA::cublasLt CUDA::cublas)
  endif()
  if(PDIFF_WITH_NCCL)
    list(APPEND defs PDIFF_WITH_NCCL=1)
    list(APPEND incs ${PDIFF_NCCL_INCLUDE_DIR})
    list(APPEND libs ${PDIFF_NCCL_LIBRARY})
  endif()
  if(PDIFF_WITH_MPI)
    list(APPEND defs PDIFF_WITH_MPI=1)
    list(APPEND libs MPI::MPI_CXX)
  endif()
  if(PDIFF_WITH_OPENBLAS)
    list(APPEND defs PDIFF_WITH_OPENBLAS=1)
    list(APPEND incs ${PDIFF_OPENBLAS_INCLUDE_DIR})
    list(APPEND libs ${PDIFF_OPENBLAS_LIBRARY})
  endif()
  foreach(d IN LISTS defs)
    target_compile_definitions(${target} INTERFACE "${a}${d}${b}")
  endforeach()
  foreach(d IN LISTS incs)
    target_include_directories(${target} INTERFACE "${a}${d}${b}")
  endforeach()
  foreach(d IN LISTS libs)
    target_link_libraries(${target} INTERFACE "${a}${d}${b}")
  endforeach()
endfunction()
