// pdiff/parallel/rank.hpp — Rank<L, C>: what a rank knows: its index, its coordinates and one
// communicator per axis of the layout L, built by splitting the world communicator.
//
// | member              | type when the axis degree > 1 | when it is 1                  |
// |---------------------|-------------------------------|-------------------------------|
// | world               | C                             | C                             |
// | one per registered  | C                             | NoComm<axis>: empty, collectives are copies or nothing |
// | policy (tp, ulysses,|                               |                               |
// | ...), and sp        |                               |                               |
// A degree-1 axis costs no bytes ([[no_unique_address]] on distinct empty types) and no split call
// (STYLE.md §6; tests/parallel/rank_test.cpp checks both).
#pragma once

#include <string>
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
#define PDIFF_RANK_COMM(axis, Policy, kind) [[no_unique_address]] axis_comm_t<L, Axis::axis, C> axis;
  PDIFF_POLICIES(PDIFF_RANK_COMM)
#undef PDIFF_RANK_COMM
  [[no_unique_address]] axis_comm_t<L, Axis::sp, C> sp;  // Ulysses × Ring (USP's joint group)

  bool is_root() const { return index == 0; }
};

// The mesh of L as text for messages: "tp 2 x ulysses 1 x ring 1 x cfg 2 x dp 1".
template <class L>
std::string mesh_text() {
  std::string s;
#define PDIFF_RANK_MESH_TERM(axis, Policy, kind) s += (s.empty() ? "" : " x ") + std::string(#axis " ") + std::to_string(L::axis);
  PDIFF_MESH_POLICIES(PDIFF_RANK_MESH_TERM)
#undef PDIFF_RANK_MESH_TERM
  return s;
}

// The whole layout as text: the mesh, then the overlays — "tp 2 x ulysses 1 x ring 1 x cfg 2 x dp 1 (ep 1,
// vae_patch 2)" — what the example binaries print.
template <class L>
std::string layout_text() {
  std::string s = mesh_text<L>() + " (";
  bool first = true;
#define PDIFF_RANK_OVERLAY_TERM(axis, Policy, kind) \
  s += (first ? "" : ", ") + std::string(#axis " ") + std::to_string(L::axis), first = false;
  PDIFF_OVERLAY_POLICIES(PDIFF_RANK_OVERLAY_TERM)
#undef PDIFF_RANK_OVERLAY_TERM
  return s + ")";
}

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
              L::world_size, " ranks (", mesh_text<L>(), ")");
  Rank<L, C> r;
  r.index = world.rank();
  r.coords = L::coords(r.index);
  r.world = world;
#define PDIFF_RANK_SPLIT(axis, Policy, kind) detail::split_axis<L, Axis::axis>(r.world, r.index, r.axis);
  PDIFF_POLICIES(PDIFF_RANK_SPLIT)
#undef PDIFF_RANK_SPLIT
  detail::split_axis<L, Axis::sp>(r.world, r.index, r.sp);
  return r;
}

}  // namespace pdiff
