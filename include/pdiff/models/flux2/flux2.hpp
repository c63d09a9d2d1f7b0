// pdiff/models/flux2/flux2.hpp — Flux2<Ps...>: the FLUX.2 pipeline on the layout of policies Ps,
// in any order (Flux2<TP<4>, Ulysses<2>> and Flux2<Ulysses<2>, TP<4>> are one type).
//
//   using Model = Flux2<TP<2>, VaePatch<2>, OnCpu>;
//   launch<Model::layout>({}, [&](auto& rank) { auto p = Model::load(rank, dir); p.generate(rank, request); });
// The layout's backend decides where it runs: OnCpu (fp32) or OnCuda (bf16, the default backend of a
// CUDA build). On CUDA the text encoder and the transformer run on the GPU; the sampler state stays
// fp32 on the host and the VAE runs on the host (HostCtx) until it gets device convolutions.
#pragma once

#include <type_traits>

#include "pdiff/models/flux2/pipeline.hpp"

namespace pdiff {

template <class L>
struct Flux2Model : Flux2Pipeline<L> {
  static_assert(L::ep == 1, "Flux2: FLUX.2 has no experts: EP<N> applies to MoE models (HunyuanImage3<..., EP<N>>)");
  using layout = L;
  template <class R>
  static Flux2Model load(R& rank, const std::filesystem::path& dir, const Flux2LoadOptions& opts = {}) {
    return Flux2Model{Flux2Pipeline<L>::load(rank, dir, opts)};
  }
};

template <class... Ps>
using Flux2 = Flux2Model<Layout<Ps...>>;

}  // namespace pdiff
