// pdiff/comm/mpi_comm.hpp — MpiComm (only with PDIFF_WITH_MPI). Defined in mpi_comm_impl.hpp.
#pragma once

#if defined(PDIFF_WITH_MPI)
#include "pdiff/comm/detail/mpi_comm_impl.hpp"
#endif
