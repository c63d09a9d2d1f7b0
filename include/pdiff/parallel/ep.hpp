// pdiff/parallel/ep.hpp — EP<N>: expert parallel. An overlay, not a mesh axis: MoE experts are partitioned over groups of N consecutive ranks of the mesh (EP<world_size> = the whole mesh, vllm-omni's tp-sp-cfg-dp order); N must divide the mesh.
#pragma once

namespace pdiff {

namespace kind {
struct expert {};
}  // namespace kind

template <int N>
struct EP {
  using kind = kind::expert;
  static constexpr int degree = N;
  static_assert(N >= 1, "EP<N>: degree must be >= 1");
};

}  // namespace pdiff
