// pdiff/parallel/axis_comm.hpp — axis_comm<A>(rank): the communicator of axis A of a Rank, by name
// at compile time, so layers take the axis they are sharded over as a template argument.
#pragma once

#include "pdiff/parallel/axis.hpp"

namespace pdiff {

template <Axis A, class R>
constexpr auto& axis_comm(R& r) {
#define PDIFF_AXIS_COMM(axis, Policy, kind) \
  if constexpr (A == Axis::axis) return r.axis; else
  PDIFF_POLICIES(PDIFF_AXIS_COMM)
#undef PDIFF_AXIS_COMM
  return r.sp;
}

}  // namespace pdiff
