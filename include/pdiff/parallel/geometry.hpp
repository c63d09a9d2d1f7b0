// pdiff/parallel/geometry.hpp — NormalLayout: the canonical layout type and its rank geometry, derived
// from the policy registry (parallel/policies.hpp).
//
// Rank order (as vllm-omni): the mesh policies in registry order, the first fastest:
//   rank = tp + TP·(u + U·(r + R·(c + C·d)))
// | member                        | result                                                        |
// |-------------------------------|---------------------------------------------------------------|
// | world_size, tp, ..., vae_patch| degrees (world_size = the product of the mesh degrees)        |
// | coords(rank)                  | Coords{tp, ulysses, ring, cfg, dp, ep, vae_patch}              |
// | coord(axis, rank)             | the rank's index inside its group on `axis`                   |
// | degree(axis)                  | the size of every group on `axis`                             |
// | group_id(axis, rank)          | which group of `axis` the rank is in (the split colour)       |
// | group<axis>(rank)             | std::array of the world ranks of that group, in group order   |
// Everything is constexpr, so tests check the geometry with static_assert.
#pragma once

#include <array>

#include "pdiff/parallel/axis.hpp"

namespace pdiff {

struct Coords {
#define PDIFF_COORD_MEMBER(axis, Policy, kind) int axis = 0;
  PDIFF_POLICIES(PDIFF_COORD_MEMBER)
#undef PDIFF_COORD_MEMBER
  friend constexpr bool operator==(const Coords&, const Coords&) = default;
};

// One parameter per registered policy, in registry order, then the backend:
// NormalLayout<TP<t>, Ulysses<u>, Ring<r>, CFG<c>, DP<d>, EP<e>, VaePatch<v>, Backend>.
#define PDIFF_LAYOUT_PARAM(axis, Policy, kind) class axis##_policy,
template <PDIFF_POLICIES(PDIFF_LAYOUT_PARAM) class BackendP>
#undef PDIFF_LAYOUT_PARAM
struct NormalLayout {
  using backend = BackendP;
#define PDIFF_LAYOUT_DEGREE(axis, Policy, kind) static constexpr int axis = axis##_policy::degree;
  PDIFF_POLICIES(PDIFF_LAYOUT_DEGREE)
#undef PDIFF_LAYOUT_DEGREE
  static constexpr int sp = ulysses * ring;
#define PDIFF_LAYOUT_MESH(axis, Policy, kind) *axis
  static constexpr int world_size = 1 PDIFF_MESH_POLICIES(PDIFF_LAYOUT_MESH);
#undef PDIFF_LAYOUT_MESH

  static constexpr int degree(Axis a) {
#define PDIFF_LAYOUT_AXIS_DEGREE(axis, Policy, kind) \
  if (a == Axis::axis) return axis;
    PDIFF_POLICIES(PDIFF_LAYOUT_AXIS_DEGREE)
#undef PDIFF_LAYOUT_AXIS_DEGREE
    return a == Axis::sp ? sp : 1;
  }
  // Elements of the rank index between consecutive coordinates of a mesh axis (sp: its Ulysses part).
  static constexpr int stride(Axis a) {
    if (a == Axis::sp) return stride(Axis::ulysses);
    int s = 1;
#define PDIFF_LAYOUT_STRIDE(axis, Policy, kind) \
  if (a == Axis::axis) return s;                \
  s *= axis;
    PDIFF_MESH_POLICIES(PDIFF_LAYOUT_STRIDE)
#undef PDIFF_LAYOUT_STRIDE
    return 1;  // overlays: consecutive blocks
  }

  static constexpr int coord(Axis a, int rank) {
    if (a == Axis::sp) return coord(Axis::ulysses, rank) + ulysses * coord(Axis::ring, rank);
    if (is_overlay(a)) return rank % degree(a);
    return rank / stride(a) % degree(a);
  }
  static constexpr Coords coords(int rank) {
    Coords c;
#define PDIFF_LAYOUT_COORD(axis, Policy, kind) c.axis = coord(Axis::axis, rank);
    PDIFF_POLICIES(PDIFF_LAYOUT_COORD)
#undef PDIFF_LAYOUT_COORD
    return c;
  }
  // The world rank of the first member of the rank's group on `a`.
  static constexpr int group_base(Axis a, int rank) {
    if (is_overlay(a)) return rank - rank % degree(a);
    if (a == Axis::sp)
      return rank - stride(Axis::ulysses) * coord(Axis::ulysses, rank) - stride(Axis::ring) * coord(Axis::ring, rank);
    return rank - stride(a) * coord(a, rank);
  }
  // The world rank of member i of the group `rank` belongs to on axis `a`.
  static constexpr int member(Axis a, int rank, int i) {
    const int base = group_base(a, rank);
    if (is_overlay(a)) return base + i;
    if (a == Axis::sp) return base + stride(Axis::ulysses) * (i % ulysses) + stride(Axis::ring) * (i / ulysses);
    return base + stride(a) * i;
  }
  // A number shared by exactly the members of one group: the split colour.
  static constexpr int group_id(Axis a, int rank) { return group_base(a, rank); }

  template <Axis A>
  static constexpr std::array<int, degree(A)> group(int rank) {
    std::array<int, degree(A)> g{};
    for (int i = 0; i < degree(A); ++i) g[i] = member(A, rank, i);
    return g;
  }
};

}  // namespace pdiff
