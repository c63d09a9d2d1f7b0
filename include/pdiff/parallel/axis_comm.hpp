// pdiff/parallel/axis_comm.hpp — axis_comm<A>(rank): the communicator of axis A of a Rank, by name
// at compile time, so layers take the axis they are sharded over as a template argument.
#pragma once

#include "pdiff/parallel/axis.hpp"

namespace pdiff {

template <Axis A, class R>
constexpr auto& axis_comm(R& r) {
  if constexpr (A == Axis::tp) return r.tp;
  else if constexpr (A == Axis::ulysses) return r.ulysses;
  else if constexpr (A == Axis::ring) return r.ring;
  else if constexpr (A == Axis::sp) return r.sp;
  else if constexpr (A == Axis::cfg) return r.cfg;
  else if constexpr (A == Axis::dp) return r.dp;
  else if constexpr (A == Axis::ep) return r.ep;
  else return r.vae_patch;
}

}  // namespace pdiff
