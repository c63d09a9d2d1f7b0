// pdiff/core/kinds.hpp — the kind tags that classify policy types (docs/design.md §2).
//
// A policy is an empty type with `using kind = kind::X;` and `static constexpr int degree`.
// Mesh kinds form the rank mesh; overlay kinds reuse ranks of the mesh; backend says where it runs.
#pragma once

namespace pdiff::kind {
struct tensor {};       // TP<N>        mesh axis
struct seq_ulysses {};  // Ulysses<N>   mesh axis
struct seq_ring {};     // Ring<N>      mesh axis
struct cfg {};          // CFG<N>       mesh axis
struct data {};         // DP<N>        mesh axis
struct expert {};       // EP<N>        overlay
struct vae_patch {};    // VaePatch<N>  overlay
struct backend {};      // OnCpu/OnCuda
}  // namespace pdiff::kind
