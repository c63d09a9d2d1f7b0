// pdiff/parallel/rank.hpp — Rank<L, C>: what a rank knows: its index, its coordinates and one
// communicator per axis of the layout L, built by splitting the world communicator.
//
// | member              | type when the axis degree > 1 | when it is 1                  |
// |---------------------|-------------------------------|-------------------------------|
// | world               | C                             | C                             |
// | tp, ulysses, ring,  | C                             | NoComm<axis>: empty, collectives are copies or nothing |
// | sp, cfg, dp, ep,    |                               |                               |
// | vae_patch           |                               |                               |
// A degree-1 axis costs no bytes ([[no_unique_address]] on distinct empty types) and no split call
// (STYLE.md §6; tests/parallel/rank_test.cpp checks both).
#pragma once

#include <type_traits>

#include "pdiff/comm/communicator.hpp"
#include "pdiff/comm/self_comm.hpp"
#include "pdiff/core/error.hpp"
#include "pdiff/parallel/axis.hpp"
#include "pdiff/parallel/geometry.hpp"

namespace pdiff {

// The communicator of a degree-1 axis; one type per axis so several of them share no storage.
template <Axis A>
struct NoComm : SelfComm {
  NoComm split(int, int) const { return {}; }
};

template <class L, Axis A, class C>
using axis_comm_t = std::conditional_t<(L::degree(A) > 1), C, NoComm<A>>;

template <class L, Communicator C>
struct Rank {
  using layout = L;
  using comm = C;

  int index = 0;  // world rank
  Coords coords{};
  C world;
  [[no_unique_address]] axis_comm_t<L, Axis::tp, C> tp;
  [[no_unique_address]] axis_comm_t<L, Axis::ulysses, C> ulysses;
  [[no_unique_address]] axis_comm_t<L, Axis::ring, C> ring;
  [[no_unique_address]] axis_comm_t<L, Axis::sp, C> sp;
  [[no_unique_address]] axis_comm_t<L, Axis::cfg, C> cfg;
  [[no_unique_address]] axis_comm_t<L, Axis::dp, C> dp;
  [[no_unique_address]] axis_comm_t<L, Axis::ep, C> ep;
  [[no_unique_address]] axis_comm_t<L, Axis::vae_patch, C> vae_patch;

  bool is_root() const { return index == 0; }
};

namespace detail {
template <class L, Axis A, class C, class Out>
void split_axis(C& world, int rank, Out& out) {
  if constexpr (L::degree(A) > 1) {
    out = world.split(L::group_id(A, rank), L::coord(A, rank));
    PDIFF_CHECK(out.size() == L::degree(A), "Rank: the ", axis_name(A), " group of rank ", rank, " has ",
                out.size(), " members, the layout needs ", L::degree(A));
  }
}
}  // namespace detail

// Builds rank `world.rank()`'s Rank from the world communicator. Collective: every rank of the
// world calls it (the splits are collectives, done in the same order everywhere).
template <class L, Communicator C>
Rank<L, C> make_rank(C world) {
  PDIFF_CHECK(world.size() == L::world_size, "Layout: world size is ", world.size(), " but the layout needs ",
              L::world_size, " ranks (tp ", L::tp, " x ulysses ", L::ulysses, " x ring ", L::ring, " x cfg ", L::cfg,
              " x dp ", L::dp, ")");
  Rank<L, C> r;
  r.index = world.rank();
  r.coords = L::coords(r.index);
  r.world = world;
  detail::split_axis<L, Axis::tp>(r.world, r.index, r.tp);
  detail::split_axis<L, Axis::ulysses>(r.world, r.index, r.ulysses);
  detail::split_axis<L, Axis::ring>(r.world, r.index, r.ring);
  detail::split_axis<L, Axis::sp>(r.world, r.index, r.sp);
  detail::split_axis<L, Axis::cfg>(r.world, r.index, r.cfg);
  detail::split_axis<L, Axis::dp>(r.world, r.index, r.dp);
  detail::split_axis<L, Axis::ep>(r.world, r.index, r.ep);
  detail::split_axis<L, Axis::vae_patch>(r.world, r.index, r.vae_patch);
  return r;
}

}  // namespace pdiff
