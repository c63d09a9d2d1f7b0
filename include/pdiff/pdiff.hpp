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

#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/backend/cpu/gemm.hpp"
#include "pdiff/backend/cpu/memory.hpp"

#include "pdiff/comm/communicator.hpp"
#include "pdiff/comm/self_comm.hpp"
#include "pdiff/comm/thread_comm.hpp"
#include "pdiff/comm/mpi_comm.hpp"

#include "pdiff/parallel/backend.hpp"
#include "pdiff/parallel/layout.hpp"
#include "pdiff/parallel/launch.hpp"
#include "pdiff/parallel/rank.hpp"
