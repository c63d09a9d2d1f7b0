// pdiff/models/flux2/flux2.hpp — Flux2<Ps...>: the FLUX.2 pipeline on the layout of policies Ps,
// in any order (Flux2<TP<4>, Ulysses<2>> and Flux2<Ulysses<2>, TP<4>> are one type).
//
//   using Model = Flux2<TP<2>, VaePatch<2>, OnCpu>;
//   launch<Model::layout>({}, [&](auto& rank) { auto p = Model::load(rank, dir); p.generate(rank, request); });
// The model's layers run on the CPU backend today (the CUDA kernels exist as ops; wiring them into
// the layers is open work), so a layout whose backend is OnCuda is a compile-time error rather than
// a silent CPU run.
#pragma once

#include <type_traits>

#include "pdiff/models/flux2/pipeline.hpp"

namespace pdiff {

template <class L>
struct Flux2Model : Flux2Pipeline<L> {
  using layout = L;
  static_assert(std::is_same_v<typename L::backend, OnCpu>,
                "Flux2<...>: the FLUX.2 layers run on OnCpu only so far; add OnCpu to the policies");
  template <class R>
  static Flux2Model load(R& rank, const std::filesystem::path& dir, const Flux2LoadOptions& opts = {}) {
    return Flux2Model{Flux2Pipeline<L>::load(rank, dir, opts)};
  }
};

template <class... Ps>
using Flux2 = Flux2Model<Layout<Ps...>>;

}  // namespace pdiff
