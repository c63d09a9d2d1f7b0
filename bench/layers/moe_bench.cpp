// MoE layer time per layout on CPU thread ranks (HunyuanImage-3.0's layer at a reduced size: hidden
// 1024, 16 experts top-4, intermediate 512, one shared expert, 2048 tokens), with the bytes rank 0
// sent and the expert load. Counters: bytes_per_rank (all_to_all on the EP group + all_reduce on TP),
// a2a_formula_bytes (dispatch: rank 0's token choices of other ranks' experts, combine: the other ranks'
// choices of rank 0's experts, each hidden·4 bytes, plus the counts — from the routing; ≈
// 2·tokens_local·k·(N−1)/N·hidden·4 for a balanced router),
// load_max_over_mean, gflops (routed + shared + router FLOPs / s).
#include <benchmark/benchmark.h>

#include <chrono>
#include <functional>

#include "pdiff/pdiff.hpp"

using namespace pdiff;

namespace {
constexpr std::int64_t D = 1024, E = 16, M = 512, S = 2048;
constexpr int K = 4;

// Deterministic random weights per name (the same tensor on every rank, so layouts agree).
struct NamedRandom {
  Tensor<float> full(const std::string& name, const std::vector<std::int64_t>& shape) const {
    Shape s;
    s.rank = int(shape.size());
    for (std::size_t i = 0; i < shape.size(); ++i) s.dims[i] = shape[i];
    Tensor<float> t(s);
    Philox{std::hash<std::string>{}(name), 0}.fill_normal(t.span());
    for (auto& v : t.span()) v *= 0.03f;
    return t;
  }
  Tensor<float> read_plan(const ShardPlan& plan, std::span<const std::string> names,
                          std::span<const std::vector<std::int64_t>> shapes) const {
    return materialize(plan, full(names[0], shapes[0]));
  }
};

MoeConfig config() {
  MoeConfig c;
  c.hidden = D, c.intermediate = M, c.experts = E, c.top_k = K, c.shared_intermediate = M;
  c.gate_up = GateUp::up_first;
  return c;
}

template <class L>
void BM_moe(benchmark::State& st) {
  using C = Ctx<L>;
  Tensor<float> x({1, S, D});
  Philox{7, 0}.fill_normal(x.span());
  double secs = 0, imbalance = 0, a2a_formula = 0;
  std::uint64_t sent0 = 0;
  for (auto _ : st) {
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      const auto moe = MoE<C>::load(NamedRandom{}, config(), rank, "mlp.");
      const SpChunk ch = sp_chunk<L>(rank, S);
      const auto xl = narrow(x, 1, ch.begin, ch.size());
      MoeLoad load;
      rank.world.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      auto y = moe.forward(rank, xl, &load);
      rank.world.barrier();
      benchmark::DoNotOptimize(y.data());
      if (rank.index == 0) {
        secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        imbalance = load.max_over_mean();
        std::uint64_t t = 0;
        if constexpr (L::tp > 1) t += rank.tp.stats().all_reduce;
        if constexpr (L::ep > 1) t += rank.ep.stats().all_to_all;
        sent0 = t;
        if constexpr (MoE<C>::dispatch) {
          // dispatch: rank 0's choices whose expert lives elsewhere; combine: the other ranks' choices
          // of rank 0's experts (their results go back); plus one int64 count per remote expert
          const std::int64_t per_rank = E / L::ep;
          std::int64_t away = 0, home = 0;
          for (int q = 0; q < L::ep; ++q) {
            struct At {
              int index;
            };
            const SpChunk cq = sp_chunk<L>(At{q}, S);
            const auto r = moe.route(narrow(x, 1, cq.begin, cq.size()));
            const std::int64_t n = r.tokens(), tq = L::coords(q).tp, t0 = n * tq / L::tp, t1 = n * (tq + 1) / L::tp;
            for (std::int64_t i = t0 * K; i < t1 * K; ++i) {
              const bool mine = r.expert[std::size_t(i)] / per_rank == 0;
              if (q == 0 && !mine) ++away;
              if (q != 0 && mine) ++home;
            }
          }
          a2a_formula = double(away + home) * D * 4 + double((L::ep - 1) * per_rank * 8);
        }
      }
    });
    st.SetIterationTime(secs);
  }
  const double flops = 2.0 * S * (D * E + K * 3.0 * D * M + 3.0 * D * M);
  st.counters["bytes_per_rank"] = double(sent0);
  st.counters["a2a_formula_bytes"] = a2a_formula;
  st.counters["load_max_over_mean"] = imbalance;
  st.counters["gflops"] = benchmark::Counter(flops * double(st.iterations()) / 1e9, benchmark::Counter::kIsRate);
  st.counters["ranks"] = L::world_size;
}
}  // namespace

BENCHMARK(BM_moe<Layout<OnCpu>>)->Name("moe/serial")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_moe<Layout<TP<2>, OnCpu>>)->Name("moe/TP2")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_moe<Layout<TP<2>, EP<2>, OnCpu>>)->Name("moe/TP2_EP2")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_moe<Layout<Ulysses<2>, EP<2>, OnCpu>>)->Name("moe/Ulysses2_EP2")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
