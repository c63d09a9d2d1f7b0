// pdiff/parallel/policies.hpp — the one registration of every parallel policy.
//
// Each line is X(axis, Policy, kind): the axis name (a member of Layouts, Coords and Rank, and an `Axis`
// value), the policy template `Policy<N>` and its kind tag (declared in the policy's own file). Everything
// per axis is derived from these lists by expanding them (Kokkos' trait specifications, as a list):
// | derived                                        | where                    |
// |------------------------------------------------|--------------------------|
// | `Axis` values, `all_axes`, `axis_name`         | parallel/axis.hpp        |
// | Layout's duplicate checks, degrees, normal form, overlay rule | parallel/layout.hpp |
// | degree / stride / coords / groups of each axis | parallel/geometry.hpp    |
// | one communicator per axis, the splits          | parallel/rank.hpp        |
// | axis_comm<A>(rank)                             | parallel/axis_comm.hpp   |
// Adding a policy: its file (the empty struct with `kind` and `degree`, its kind tag) included below, and
// one line in one list. Mesh policies in rank order — the first varies fastest:
//   rank = tp + TP·(u + U·(r + R·(c + C·d)))
// Overlay policies reuse ranks of the mesh in blocks of consecutive ranks. The joint sequence-parallel
// group `sp` (Ulysses × Ring, USP) is not a policy; geometry derives it from those two.
#pragma once

#include "pdiff/parallel/cfg.hpp"
#include "pdiff/parallel/dp.hpp"
#include "pdiff/parallel/ep.hpp"
#include "pdiff/parallel/ring.hpp"
#include "pdiff/parallel/tp.hpp"
#include "pdiff/parallel/ulysses.hpp"
#include "pdiff/parallel/vae_patch.hpp"

#define PDIFF_MESH_POLICIES(X)     \
  X(tp, TP, tensor)                \
  X(ulysses, Ulysses, seq_ulysses) \
  X(ring, Ring, seq_ring)          \
  X(cfg, CFG, cfg)                 \
  X(dp, DP, data)

#define PDIFF_OVERLAY_POLICIES(X) \
  X(ep, EP, expert)               \
  X(vae_patch, VaePatch, vae_patch)

#define PDIFF_POLICIES(X) PDIFF_MESH_POLICIES(X) PDIFF_OVERLAY_POLICIES(X)
