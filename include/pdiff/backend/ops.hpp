// pdiff/backend/ops.hpp — every backend's layer ops under one include: the CPU ops always, the CUDA
// ops (declarations; definitions in the pdiff::cuda_ops library) when pdiff was built with CUDA.
// Layers include this and call ops by name; overload resolution on Tensor<T, Backend> picks the
// backend at compile time (no virtual dispatch, no run-time switch).
#pragma once

#include "pdiff/backend/cpu/activation.hpp"
#include "pdiff/backend/cpu/attention.hpp"
#include "pdiff/backend/cpu/conv.hpp"
#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/backend/cpu/gemm.hpp"
#include "pdiff/backend/cpu/index.hpp"
#include "pdiff/backend/cpu/moe_route.hpp"
#include "pdiff/backend/cpu/norm.hpp"
#include "pdiff/backend/cpu/rope.hpp"
#include "pdiff/core/copy_ops.hpp"
#if defined(PDIFF_WITH_CUDA)
#include "pdiff/backend/cuda/ops.hpp"
#endif
