// pdiff/parallel/axis.hpp — names of the rank groups a Layout defines.
//
// | axis      | group of a rank                                              |
// |-----------|--------------------------------------------------------------|
// | tp        | ranks differing only in the TP coordinate                     |
// | ulysses   | ranks differing only in the Ulysses coordinate                |
// | ring      | ranks differing only in the Ring coordinate                   |
// | sp        | ranks differing only in (Ulysses, Ring) — USP's joint group   |
// | cfg       | ranks differing only in the CFG coordinate                    |
// | dp        | ranks differing only in the DP coordinate                     |
// | ep        | the block of `ep` consecutive ranks containing the rank       |
// | vae_patch | the block of `vae_patch` consecutive ranks containing the rank |
#pragma once

namespace pdiff {

enum class Axis { tp, ulysses, ring, sp, cfg, dp, ep, vae_patch };

inline constexpr Axis all_axes[] = {Axis::tp, Axis::ulysses, Axis::ring, Axis::sp,
                                    Axis::cfg, Axis::dp, Axis::ep, Axis::vae_patch};

constexpr const char* axis_name(Axis a) {
  switch (a) {
    case Axis::tp: return "tp";
    case Axis::ulysses: return "ulysses";
    case Axis::ring: return "ring";
    case Axis::sp: return "sp";
    case Axis::cfg: return "cfg";
    case Axis::dp: return "dp";
    case Axis::ep: return "ep";
    case Axis::vae_patch: return "vae_patch";
  }
  return "?";
}

}  // namespace pdiff
