// pdiff/core/hd.hpp — PDIFF_HD marks functions usable from host and device code.
// Under nvcc it expands to __host__ __device__; under a host compiler to nothing, so a
// CPU-only build never needs a CUDA header.
#pragma once

#if defined(__CUDACC__)
#define PDIFF_HD __host__ __device__ __forceinline__
#else
#define PDIFF_HD inline
#endif
