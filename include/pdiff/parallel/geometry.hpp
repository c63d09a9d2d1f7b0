// pdiff/parallel/geometry.hpp — NormalLayout: the canonical layout type and its rank geometry.
//
// Rank order (as vllm-omni): TP fastest, then Ulysses, Ring, CFG, DP:
//   rank = tp + TP·(u + U·(r + R·(c + C·d)))
// | member                        | result                                                        |
// |-------------------------------|---------------------------------------------------------------|
// | world_size, tp, ..., vae_patch| degrees (world_size = tp·ulysses·ring·cfg·dp)                 |
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
  int tp = 0, ulysses = 0, ring = 0, cfg = 0, dp = 0, ep = 0, vae_patch = 0;
  friend constexpr bool operator==(const Coords&, const Coords&) = default;
};

template <class TPp, class Up, class Rp, class Cp, class Dp, class EPp, class Vp, class BackendP>
struct NormalLayout {
  using backend = BackendP;
  static constexpr int tp = TPp::degree;
  static constexpr int ulysses = Up::degree;
  static constexpr int ring = Rp::degree;
  static constexpr int cfg = Cp::degree;
  static constexpr int dp = Dp::degree;
  static constexpr int ep = EPp::degree;
  static constexpr int vae_patch = Vp::degree;
  static constexpr int sp = ulysses * ring;
  static constexpr int world_size = tp * ulysses * ring * cfg * dp;

  static constexpr int degree(Axis a) {
    switch (a) {
      case Axis::tp: return tp;
      case Axis::ulysses: return ulysses;
      case Axis::ring: return ring;
      case Axis::sp: return sp;
      case Axis::cfg: return cfg;
      case Axis::dp: return dp;
      case Axis::ep: return ep;
      case Axis::vae_patch: return vae_patch;
    }
    return 1;
  }
  // Elements of the rank index between consecutive coordinates of a mesh axis.
  static constexpr int stride(Axis a) {
    switch (a) {
      case Axis::tp: return 1;
      case Axis::ulysses: case Axis::sp: return tp;
      case Axis::ring: return tp * ulysses;
      case Axis::cfg: return tp * ulysses * ring;
      case Axis::dp: return tp * ulysses * ring * cfg;
      default: return 1;  // overlays: consecutive blocks
    }
  }

  static constexpr Coords coords(int rank) {
    Coords c;
    c.tp = rank % tp;
    c.ulysses = rank / tp % ulysses;
    c.ring = rank / (tp * ulysses) % ring;
    c.cfg = rank / (tp * ulysses * ring) % cfg;
    c.dp = rank / (tp * ulysses * ring * cfg);
    c.ep = rank % ep;
    c.vae_patch = rank % vae_patch;
    return c;
  }
  static constexpr int coord(Axis a, int rank) {
    Coords c = coords(rank);
    switch (a) {
      case Axis::tp: return c.tp;
      case Axis::ulysses: return c.ulysses;
      case Axis::ring: return c.ring;
      case Axis::sp: return c.ulysses + ulysses * c.ring;
      case Axis::cfg: return c.cfg;
      case Axis::dp: return c.dp;
      case Axis::ep: return c.ep;
      case Axis::vae_patch: return c.vae_patch;
    }
    return 0;
  }
  // The world rank of the first member of the rank's group on `a`.
  static constexpr int group_base(Axis a, int rank) {
    switch (a) {
      case Axis::ep: return rank - rank % ep;
      case Axis::vae_patch: return rank - rank % vae_patch;
      case Axis::sp: {
        Coords c = coords(rank);
        return rank - stride(Axis::ulysses) * c.ulysses - stride(Axis::ring) * c.ring;
      }
      default: return rank - stride(a) * coord(a, rank);
    }
  }
  // The world rank of member i of the group `rank` belongs to on axis `a`.
  static constexpr int member(Axis a, int rank, int i) {
    int base = group_base(a, rank);
    switch (a) {
      case Axis::ep: case Axis::vae_patch: return base + i;
      case Axis::sp: return base + stride(Axis::ulysses) * (i % ulysses) + stride(Axis::ring) * (i / ulysses);
      default: return base + stride(a) * i;
    }
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
