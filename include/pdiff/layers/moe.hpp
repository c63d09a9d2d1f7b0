// pdiff/layers/moe.hpp — MoE<C>: a mixture-of-experts MLP (router, routed SwiGLU experts, an
// always-on shared expert), sharded by the layout's TP and EP<N> at compile time.
//
//   p = softmax(x·W_routerᵀ) in fp32 → top-k experts per token; weights p_k / Σ_top-k p when
//   renormalising with k > 1, else routed_scaling · p_k (HunyuanImage-3.0's topkgating; no token dropping)
//   y = Σ_k p_k · expert_k(x) + shared(x),  expert(x) = down(silu(gate(x)) · up(x))
//
// | layout (EP<N>, TP<tp>) | experts on a rank               | tokens                          | communication |
// |------------------------|---------------------------------|---------------------------------|---------------|
// | no EP (N = 1)          | all E, intermediate / tp        | every token                     | all_reduce(tp) |
// | N divides tp           | E/N whole experts, intermediate / (tp/N) | every token (replicated in the EP group, vllm-omni's way) | all_reduce(tp) |
// | tp divides N, N > tp   | E/N whole experts               | this TP rank's 1/tp of its tokens, sent to the experts' ranks and back | all_to_all(ep): counts, then rows (dispatch), rows back (combine); all_reduce(tp) |
// The EP group is N consecutive ranks of the mesh (parallel/ep.hpp): N ≤ tp keeps it inside a TP
// group, N > tp spans ranks holding different tokens (Ulysses/Ring chunks, CFG branches, DP groups).
// Tokens are grouped by expert by the `moe_group` op (a stable counting sort on the CPU, CUB's radix
// sort on CUDA: the order of the tokens inside an expert is their order in the input), the experts'
// GEMMs run grouped (one GEMM per expert on the CPU, one cuBLAS grouped GEMM on CUDA), and the results
// are added back weighted. The shared expert is TP-sharded like a dense MLP and its partial sums
// share the routed part's one all_reduce. x: (B, S, D) or (T, D), the same on every rank of a TP
// group → the same shape. Weights: names as HunyuanImage-3.0's checkpoint (MoeNames).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "pdiff/backend/ops.hpp"
#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/linear_core.hpp"
#include "pdiff/io/shard_plan.hpp"
#include "pdiff/parallel/axis.hpp"

namespace pdiff {

// How a fused [gate; up] projection is stacked in the checkpoint.
enum class GateUp { gate_first, up_first };

struct MoeConfig {
  std::int64_t hidden = 0;               // D
  std::int64_t intermediate = 0;         // per routed expert
  std::int64_t experts = 0;              // E
  int top_k = 1;
  bool renormalize = true;               // k > 1: top-k weights divided by their sum
  float routed_scaling = 1.0f;           // the weights' factor when they are not renormalised
  std::int64_t shared_intermediate = 0;  // 0: no shared expert
  GateUp gate_up = GateUp::gate_first;

  constexpr void check() const {
    PDIFF_CHECK(hidden > 0 && intermediate > 0 && experts > 0, "MoE: hidden (", hidden, "), intermediate (",
                intermediate, ") and experts (", experts, ") must be positive");
    PDIFF_CHECK(top_k >= 1 && top_k <= experts, "MoE: top_k (", top_k, ") must be in [1, experts = ", experts, "]");
    PDIFF_CHECK(shared_intermediate >= 0, "MoE: shared_intermediate (", shared_intermediate, ") is negative");
  }
};

// Checkpoint names under a layer's prefix; `{e}` in an expert name is the expert's index.
struct MoeNames {
  std::string router = "gate.wg.weight";
  std::string expert_gate_up = "experts.{e}.gate_and_up_proj.weight";
  std::string expert_down = "experts.{e}.down_proj.weight";
  std::string shared_gate_up = "shared_mlp.gate_and_up_proj.weight";
  std::string shared_down = "shared_mlp.down_proj.weight";

  static std::string expert(const std::string& pattern, std::int64_t e) {
    std::string s = pattern;
    const auto at = s.find("{e}");
    return at == std::string::npos ? s : s.replace(at, 3, std::to_string(e));
  }
};

// The MoE layer's shard arithmetic for (tp, ep) given as values (compile-time or run-time): what MoE<C>
// uses with its layout's degrees, and what parameter plans use at any (tp, ep).
struct MoeShards {
  MoeConfig cfg;
  int tp = 1, ep = 1;

  // Tokens travel to their experts when the EP group spans ranks holding different tokens.
  static constexpr bool dispatch_for(int tp, int ep) { return ep > tp; }
  // Each expert's intermediate dimension is split over the TP ranks holding the same experts.
  static constexpr int split_for(int tp, int ep) { return dispatch_for(tp, ep) ? 1 : tp / ep; }

  constexpr MoeShards(const MoeConfig& c, int tp_, int ep_) : cfg(c), tp(tp_), ep(ep_) {
    cfg.check();
    PDIFF_CHECK(tp >= 1 && ep >= 1 && (tp % ep == 0 || ep % tp == 0), "MoE: EP<", ep, "> and TP<", tp,
                "> must nest — ep divides tp (experts spread inside a TP group) or tp divides ep");
    PDIFF_CHECK(cfg.experts % ep == 0, "MoE: ", cfg.experts, " experts cannot be divided over EP<", ep,
                "> (each rank of the EP group holds experts / N whole experts)");
    PDIFF_CHECK(cfg.intermediate % split() == 0, "MoE: the experts' intermediate size (", cfg.intermediate,
                ") must be divisible by tp/ep = ", split());
    PDIFF_CHECK(cfg.shared_intermediate % tp == 0, "MoE: the shared expert's intermediate size (",
                cfg.shared_intermediate, ") must be divisible by tp (", tp, ")");
  }
  constexpr int split() const { return split_for(tp, ep); }
  constexpr std::int64_t experts_local() const { return cfg.experts / ep; }
  // The rank's expert weights ([gate; up] and down of its experts' slices, and of the shared expert's).
  constexpr std::int64_t sharded_elements() const {
    return experts_local() * 3 * cfg.hidden * (cfg.intermediate / split()) + 3 * cfg.hidden * (cfg.shared_intermediate / tp);
  }
  constexpr std::int64_t replicated_elements() const { return cfg.experts * cfg.hidden; }  // the router
};

// Tokens per expert of one forward (over the tokens of the rank's EP group) and their imbalance.
struct MoeLoad {
  std::vector<std::int64_t> tokens;
  double max_over_mean() const {
    if (tokens.empty()) return 0.0;
    const double total = double(std::accumulate(tokens.begin(), tokens.end(), std::int64_t(0)));
    return total == 0 ? 0.0 : double(*std::max_element(tokens.begin(), tokens.end())) * double(tokens.size()) / total;
  }
};

namespace detail {
template <class T>
Tensor<T, OnCpu> host_vector(const std::vector<T>& v) {
  Tensor<T, OnCpu> t({std::int64_t(v.size())});
  std::copy(v.begin(), v.end(), t.data());
  return t;
}
}  // namespace detail

// One SwiGLU MLP on local weights: gate_up (2m, D) stacked [gate; up], down (D, m); partial sums when
// the intermediate dimension is split (the caller reduces).
template <class C>
struct MoeMlp {
  detail::LinearCore<C> gate_up, down;
  typename C::tensor operator()(const typename C::tensor& x) const { return down.matmul(swiglu(gate_up.matmul(x))); }

  // Part `index` of `parts` of the intermediate dimension M of a checkpoint's fused gate_up (2M, D)
  // (stacked as `order` says) and down (D, M).
  template <class Source>
  static MoeMlp load(const Source& ck, std::int64_t D, std::int64_t M, GateUp order, int parts, int index,
                     const std::string& gate_up, const std::string& down) {
    PDIFF_CHECK(M % parts == 0, "SwiGLU MLP '", gate_up, "': intermediate size ", M, " must be divisible by ", parts);
    const std::int64_t m = M / parts, b = index * m, e = b + m;
    const std::int64_t g0 = order == GateUp::gate_first ? 0 : M, u0 = M - g0;  // local [gate; up] either way
    MoeMlp mlp;
    detail::set_shard(mlp.gate_up, ck, ShardPlan{Shape{2 * m, D}, 0, {{0, 0, g0 + b, g0 + e}, {0, 0, u0 + b, u0 + e}}},
                      {gate_up}, {{2 * M, D}});
    detail::set_shard(mlp.down, ck, ShardPlan{Shape{D, m}, 1, {{0, 1, b, e}}}, {down}, {{D, M}});
    return mlp;
  }
};

template <class C>
class MoE {
 public:
  using L = typename C::layout;
  using backend = typename C::backend;
  using tensor = typename C::tensor;
  using T = typename C::value_type;
  static constexpr int N = L::ep, TPd = L::tp;
  static_assert(TPd % N == 0 || N % TPd == 0,
                "MoE: EP<N> and TP<tp> must nest — N divides tp (experts spread inside a TP group) or tp divides N "
                "(the EP group is whole TP groups)");
  // The EP group spans ranks with different tokens: tokens travel to their experts (dispatch/combine).
  static constexpr bool dispatch = MoeShards::dispatch_for(TPd, N);
  // Each expert's intermediate dimension is split over this many ranks (the TP ranks holding the same experts).
  static constexpr int split = MoeShards::split_for(TPd, N);

  MoeConfig cfg;
  detail::LinearCore<Ctx<L, float>> router;  // (E, D), fp32
  std::vector<MoeMlp<C>> experts;            // this rank's experts [first_expert, first_expert + size)
  std::int64_t first_expert = 0;
  MoeMlp<C> shared;                          // intermediate split over tp; empty without a shared expert

  // Reads this rank's part from a weight source (a Checkpoint, or anything with read / read_plan).
  template <class Source, class R>
  static MoE load(const Source& ck, const MoeConfig& cfg, const R& rank, const std::string& prefix,
                  const MoeNames& names = {}) {
    const MoeShards shards(cfg, TPd, N);  // the divisibility rules, stated when they fail
    const std::int64_t D = cfg.hidden, E = cfg.experts, El = shards.experts_local();
    const int ep = L::coord(Axis::ep, rank.index), tp = L::coord(Axis::tp, rank.index);
    MoE m;
    m.cfg = cfg;
    detail::set_shard(m.router, ck, ShardPlan{Shape{E, D}, 0, {{0, 0, 0, E}}}, {prefix + names.router}, {{E, D}});
    m.first_expert = ep * El;
    for (std::int64_t e = m.first_expert; e < m.first_expert + El; ++e)
      m.experts.push_back(MoeMlp<C>::load(ck, D, cfg.intermediate, cfg.gate_up, split, dispatch ? 0 : tp / N,
                                          prefix + MoeNames::expert(names.expert_gate_up, e),
                                          prefix + MoeNames::expert(names.expert_down, e)));
    if (cfg.shared_intermediate > 0)
      m.shared = MoeMlp<C>::load(ck, D, cfg.shared_intermediate, cfg.gate_up, TPd, tp, prefix + names.shared_gate_up,
                                 prefix + names.shared_down);
    return m;
  }

  // The router's fp32 logits (tokens, E) for x, where x lives.
  Tensor<float, backend> logits(const tensor& x) const {
    const auto X = x.view({x.numel() / cfg.hidden, cfg.hidden});
    if constexpr (std::is_same_v<T, float>) return router.matmul(X);
    else return router.matmul(convert<float>(X));
  }
  // The router's decisions for x (every rank of a TP group computes the same), on the host.
  MoeRouting route(const tensor& x) const {
    return moe_route(to<OnCpu>(logits(x)), cfg.top_k, cfg.renormalize, cfg.routed_scaling);
  }

  // x: (..., D) → (..., D). With `load`, the tokens per expert over the EP group's tokens (a
  // collective on the EP group when tokens are dispatched: pass it on every rank or on none).
  template <class R>
  tensor forward(R& rank, const tensor& x, MoeLoad* load = nullptr) const {
    PDIFF_CHECK(x.rank() >= 2 && x.size(-1) == cfg.hidden, "MoE: input", x.shape(), " must be (..., ", cfg.hidden, ")");
    const std::int64_t D = cfg.hidden, Tn = x.numel() / D;
    const auto X = x.view({Tn, D});
    // dispatching: this TP rank routes its 1/tp of the tokens; otherwise every token is routed here
    std::int64_t t0 = 0, t1 = Tn;
    if constexpr (dispatch) {
      const int tp = L::coord(Axis::tp, rank.index);
      t0 = Tn * tp / TPd, t1 = Tn * (tp + 1) / TPd;
    }
    const auto g = moe_group(logits(X), cfg.top_k, cfg.renormalize, cfg.routed_scaling, t0, t1);
    auto out = tensor::zeros({Tn, D});
    if constexpr (!dispatch) {
      // every token is here: run this rank's experts on the tokens routed to them
      const auto mine = g.experts(first_expert, first_expert + std::int64_t(experts.size()));
      auto y = run_experts(index_rows(X, mine.token), mine.count);
      index_add_rows(out, y, mine.token, mine.weight);
    } else {
      dispatch_combine(rank, X, g, out);
    }
    if (cfg.shared_intermediate > 0) add_(out, shared(X));
    if constexpr (TPd > 1) all_reduce_(rank.tp, out);
    if (load) *load = expert_load(rank, g.count);
    return out.view(x.shape());
  }

 private:
  // rows grouped by local expert (count[i] rows of expert first_expert + i, in order) → their outputs.
  tensor run_experts(const tensor& rows, std::span<const std::int64_t> count) const {
    if (rows.size(0) == 0) return tensor::zeros({0, cfg.hidden});
    std::vector<const detail::LinearCore<C>*> gate_up, down;
    for (const auto& e : experts) gate_up.push_back(&e.gate_up), down.push_back(&e.down);
    const auto h = swiglu(detail::grouped_matmul<C>(gate_up, rows, count));
    return detail::grouped_matmul<C>(down, h, count);
  }

  // This TP rank's share of the tokens goes to the ranks of its experts (counts first, then rows),
  // is computed there, and comes back the same way; results are added to out's rows.
  // g: this rank's tokens grouped by expert = grouped by destination rank (expert e lives on EP rank e / El).
  template <class R>
  void dispatch_combine(R& rank, const tensor& X, const ExpertGroups<backend>& g, tensor& out) const {
    auto& comm = rank.ep;
    detail::check_comm_memory<std::remove_cvref_t<decltype(comm)>, backend>();
    const std::int64_t D = cfg.hidden, El = std::int64_t(experts.size());
    const auto send = index_rows(X, g.token);
    // counts: block j = this rank's rows for each of rank j's experts
    auto counts = to<backend>(detail::host_vector(g.count));
    Tensor<std::int64_t, backend> got({N * El});
    comm.all_to_all(counts.data(), got.data(), std::size_t(El));
    const auto recv_counts = to<OnCpu>(got);  // (source, local expert)
    std::vector<std::size_t> sc(N), rc(N);
    std::int64_t n_recv = 0;
    for (int j = 0; j < N; ++j) {
      std::int64_t s = 0, q = 0;
      for (std::int64_t e = 0; e < El; ++e) s += g.count[std::size_t(j * El + e)], q += recv_counts(j * El + e);
      sc[std::size_t(j)] = std::size_t(s * D), rc[std::size_t(j)] = std::size_t(q * D);
      n_recv += q;
    }
    tensor recv({n_recv, D});
    comm.all_to_all_v(send.data(), std::span<const std::size_t>(sc), recv.data(), std::span<const std::size_t>(rc));
    // received [source][expert] → [expert][source], run, and back
    std::vector<std::int32_t> perm, inv(static_cast<std::size_t>(n_recv));
    std::vector<std::int64_t> start(static_cast<std::size_t>(N * El)), per_expert(static_cast<std::size_t>(El), 0);
    for (std::int64_t i = 0, at = 0; i < N * El; ++i) start[std::size_t(i)] = at, at += recv_counts(i);
    for (std::int64_t e = 0; e < El; ++e)
      for (int j = 0; j < N; ++j)
        for (std::int64_t q = 0; q < recv_counts(j * El + e); ++q) {
          inv[std::size_t(start[std::size_t(j * El + e)] + q)] = std::int32_t(perm.size());
          perm.push_back(std::int32_t(start[std::size_t(j * El + e)] + q));
          ++per_expert[std::size_t(e)];
        }
    const auto y = run_experts(index_rows(recv, to<backend>(detail::host_vector(perm))), per_expert);
    const auto back_rows = index_rows(y, to<backend>(detail::host_vector(inv)));
    tensor back({g.rows(), D});
    comm.all_to_all_v(back_rows.data(), std::span<const std::size_t>(rc), back.data(), std::span<const std::size_t>(sc));
    index_add_rows(out, back, g.token, g.weight);
  }

  // Tokens per expert: this rank's counts, summed over the EP group when tokens are dispatched.
  template <class R>
  MoeLoad expert_load(R& rank, const std::vector<std::int64_t>& count) const {
    MoeLoad l;
    l.tokens = count;
    if constexpr (dispatch) {
      auto c = to<backend>(detail::host_vector(l.tokens));
      all_reduce_(rank.ep, c);
      const auto h = to<OnCpu>(c);
      std::copy(h.data(), h.data() + h.numel(), l.tokens.begin());
    }
    return l;
  }
};

}  // namespace pdiff
