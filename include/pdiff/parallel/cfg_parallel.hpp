// pdiff/parallel/cfg_parallel.hpp — running guidance branches on the CFG axis (the runtime of CFG<N>).
//
// Branch b runs on CFG rank b % N in slot b / N. After each slot the predictions are all-gathered
// inside the CFG group, so every rank holds every branch's prediction and computes the guidance
// combine and the scheduler step itself: no broadcast, no rank that returns nothing, identical bits
// everywhere (the arithmetic is the same). A prediction may hold several tensors (tuple outputs);
// all branches' predictions have the same shapes.
// | call                                   | communication per call                          |
// |----------------------------------------|-------------------------------------------------|
// | cfg_predict<L>(rank, branches, f)      | ceil(branches/N) all_gathers of one prediction (none when N = 1) |
// | cfg_predict<L, B>(rank, f)             | the same with B known at compile time: N > B is a static_assert |
// Rules: N ≤ branches (a clear error otherwise).
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

// One model call's outputs: one tensor, or several for multi-output models (video, action, ...).
using Prediction = std::vector<Tensor<float, OnCpu>>;

// f(b) → Prediction of branch b. Returns the predictions of branches 0..branches−1 on every rank.
template <class L, class R, class F>
std::vector<Prediction> cfg_predict(R& rank, int branches, F&& f) {
  constexpr int N = L::cfg;
  PDIFF_CHECK(branches >= 1, "CFG: at least one guidance branch is needed");
  PDIFF_CHECK(N <= branches, "CFG<", N, ">: ", N, " guidance groups but only ", branches,
              " branches; use CFG<n> with n <= the number of branches");
  std::vector<Prediction> all(static_cast<std::size_t>(branches));
  if constexpr (N == 1) {
    for (int b = 0; b < branches; ++b) all[std::size_t(b)] = f(b);
  } else {
    const int me = rank.cfg.rank();
    std::vector<Shape> shapes;
    for (int slot = 0; slot * N < branches; ++slot) {
      const int mine = slot * N + me;
      Prediction p;
      if (mine < branches) {
        p = f(mine);
        if (shapes.empty())
          for (auto& t : p) shapes.push_back(t.shape());
      } else {
        for (auto& s : shapes) p.push_back(Tensor<float, OnCpu>::zeros(s));  // a placeholder, never read
      }
      PDIFF_CHECK(p.size() == shapes.size(), "CFG: branch ", mine, " returned ", p.size(), " tensors, branch ", me,
                  " returned ", shapes.size());
      std::int64_t n = 0;
      for (std::size_t e = 0; e < p.size(); ++e) {
        PDIFF_CHECK(p[e].shape() == shapes[e], "CFG: branch ", mine, " output ", e, p[e].shape(),
                    " differs from the others' ", shapes[e]);
        n += p[e].numel();
      }
      // one all_gather per slot: every element of the prediction packed in one buffer
      Tensor<float, OnCpu> mine_flat({n}), gathered({std::int64_t(N) * n});
      std::int64_t at = 0;
      for (auto& t : p) {
        std::copy_n(t.data(), t.numel(), mine_flat.data() + at);
        at += t.numel();
      }
      using Cm = std::remove_cvref_t<decltype(rank.cfg)>;
      if constexpr (comm_accepts<Cm, OnCpu>()) {
        rank.cfg.all_gather(mine_flat.data(), gathered.data(), std::size_t(n));
      } else {
        // a device layout's CFG communicator (NcclComm, DeviceThreadComm) moves device buffers
        using B = typename Cm::memory_space;
        const auto d_mine = to<B>(mine_flat);
        Tensor<float, B> d_all({std::int64_t(N) * n});
        rank.cfg.all_gather(d_mine.data(), d_all.data(), std::size_t(n));
        gathered = to<OnCpu>(d_all);
      }
      for (int j = 0; j < N && slot * N + j < branches; ++j) {
        Prediction q;
        at = j * n;
        for (auto& s : shapes) {
          Tensor<float, OnCpu> t(s);
          std::copy_n(gathered.data() + at, t.numel(), t.data());
          at += t.numel();
          q.push_back(std::move(t));
        }
        all[std::size_t(slot * N + j)] = std::move(q);
      }
    }
  }
  return all;
}

// The branch count known at compile time: more CFG groups than branches does not compile.
template <class L, int Branches, class R, class F>
std::vector<Prediction> cfg_predict(R& rank, F&& f) {
  static_assert(L::cfg <= Branches, "CFG<N>: more guidance groups than branches (N must be <= the branch count)");
  return cfg_predict<L>(rank, Branches, std::forward<F>(f));
}

}  // namespace pdiff
