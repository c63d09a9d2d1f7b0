// pdiff/pdiff.hpp — the umbrella header: everything available in this build.
// CUDA, NCCL and MPI parts appear only when pdiff was configured with them (PDIFF_WITH_*); a
// CPU-only build includes no CUDA header.
#pragma once

#include "pdiff/core/backend_tag.hpp"
#include "pdiff/core/dtype.hpp"
#include "pdiff/core/error.hpp"
#include "pdiff/core/gemm_args.hpp"
#include "pdiff/core/philox.hpp"
#include "pdiff/core/shape.hpp"
#include "pdiff/core/tensor.hpp"

#include "pdiff/backend/cpu/activation.hpp"
#include "pdiff/backend/cpu/attention.hpp"
#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/backend/cpu/gemm.hpp"
#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/backend/cpu/norm.hpp"
#include "pdiff/backend/cpu/rope.hpp"
#include "pdiff/core/copy_ops.hpp"

// CUDA backend (host headers only; the *.cuh kernel headers need nvcc and are included by users'
// .cu files). Nothing CUDA is included in a CPU-only build.
#if defined(PDIFF_WITH_CUDA)
#include "pdiff/backend/cuda/caching_allocator.hpp"
#include "pdiff/backend/cuda/check.hpp"
#include "pdiff/backend/cuda/device.hpp"
#include "pdiff/backend/cuda/gemm.hpp"
#include "pdiff/backend/cuda/memory.hpp"
#include "pdiff/backend/cuda/stream.hpp"
#endif

#include "pdiff/comm/communicator.hpp"
#include "pdiff/comm/self_comm.hpp"
#include "pdiff/comm/thread_comm.hpp"
#include "pdiff/comm/mpi_comm.hpp"
#if defined(PDIFF_WITH_NCCL)
#include "pdiff/comm/nccl_comm.hpp"
#endif
#include "pdiff/comm/tensor_collectives.hpp"

#include "pdiff/parallel/axis_comm.hpp"
#include "pdiff/parallel/backend.hpp"
#include "pdiff/parallel/layout.hpp"
#include "pdiff/parallel/launch.hpp"
#include "pdiff/parallel/rank.hpp"

#include "pdiff/layers/attention.hpp"
#include "pdiff/layers/column_parallel.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/kv_cache.hpp"
#include "pdiff/layers/merged_column_parallel.hpp"
#include "pdiff/layers/mlp.hpp"
#include "pdiff/layers/moe.hpp"
#include "pdiff/layers/norm.hpp"
#include "pdiff/layers/qkv_parallel.hpp"
#include "pdiff/layers/replicated.hpp"
#include "pdiff/layers/row_parallel.hpp"
#include "pdiff/layers/self_attention.hpp"
#include "pdiff/layers/sequence.hpp"
#include "pdiff/layers/timestep.hpp"
#include "pdiff/layers/vocab_parallel.hpp"
