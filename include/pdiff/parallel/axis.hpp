// pdiff/parallel/axis.hpp — names of the rank groups a Layout defines: one per registered policy
// (parallel/policies.hpp), plus sp.
//
// | axis          | group of a rank                                                   |
// |---------------|-------------------------------------------------------------------|
// | a mesh axis   | ranks differing only in that coordinate (tp, ulysses, ring, cfg, dp) |
// | an overlay    | the block of `degree` consecutive ranks containing the rank (ep, vae_patch) |
// | sp            | ranks differing only in (Ulysses, Ring) — USP's joint group       |
#pragma once

#include "pdiff/parallel/policies.hpp"

namespace pdiff {

#define PDIFF_AXIS_VALUE(axis, Policy, kind) axis,
enum class Axis { PDIFF_POLICIES(PDIFF_AXIS_VALUE) sp };
#undef PDIFF_AXIS_VALUE
#define PDIFF_AXIS_ENTRY(axis, Policy, kind) Axis::axis,
inline constexpr Axis all_axes[] = {PDIFF_POLICIES(PDIFF_AXIS_ENTRY) Axis::sp};
#undef PDIFF_AXIS_ENTRY

constexpr const char* axis_name(Axis a) {
#define PDIFF_AXIS_NAME(axis, Policy, kind) \
  if (a == Axis::axis) return #axis;
  PDIFF_POLICIES(PDIFF_AXIS_NAME)
#undef PDIFF_AXIS_NAME
  return a == Axis::sp ? "sp" : "?";
}

// Whether `a` is an overlay (blocks of consecutive ranks) rather than a mesh axis or sp.
constexpr bool is_overlay(Axis a) {
#define PDIFF_AXIS_OVERLAY(axis, Policy, kind) \
  if (a == Axis::axis) return true;
  PDIFF_OVERLAY_POLICIES(PDIFF_AXIS_OVERLAY)
#undef PDIFF_AXIS_OVERLAY
  return false;
}

}  // namespace pdiff
