// pdiff/parallel/vae_patch.hpp — VaePatch<N>: VAE patch parallel. An overlay, not a mesh axis: VAE encode/decode tiles are spread over groups of N consecutive ranks of the mesh; N must divide the mesh.
#pragma once

namespace pdiff {

namespace kind {
struct vae_patch {};
}  // namespace kind

template <int N>
struct VaePatch {
  using kind = kind::vae_patch;
  static constexpr int degree = N;
  static_assert(N >= 1, "VaePatch<N>: degree must be >= 1");
};

}  // namespace pdiff
