// tp_attention_demo — a pre-norm transformer block (RMSNorm → attention with RoPE → RMSNorm →
// SwiGLU MLP) run serially and on the compile-time layout TP<2> × Ulysses<2> (4 CPU thread ranks),
// checked against each other; writes a PNG showing serial | parallel | 10⁵·|difference|.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>

#include "pdiff/io/image.hpp"
#include "pdiff/pdiff.hpp"

using namespace pdiff;

#ifndef PDIFF_DEMO_LAYOUT
#define PDIFF_DEMO_LAYOUT TP<2>, Ulysses<2>, OnCpu
#endif
using Parallel = Layout<PDIFF_DEMO_LAYOUT>;

struct Weights {
  Tensor<float> wq, wk, wv, wo, wg, wu, wd, n1, n2;
};

template <class L>
struct Block {
  using C = Ctx<L>;
  RMSNorm<C> norm1, norm2;
  SelfAttention<C> attn;
  SwiGLUMLP<C> mlp;
  Block(const Weights& w, std::int64_t hidden, std::int64_t heads, std::int64_t head_dim, int tp_rank)
      : norm1(hidden, 1e-6f), norm2(hidden, 1e-6f),
        attn(hidden, head_dim, heads, heads, false, false, QkNorm::none, RopeStyle::half),
        mlp(hidden, 3 * hidden, false) {
    norm1.load(w.n1);
    norm2.load(w.n2);
    attn.qkv.load(tp_rank, w.wq, w.wk, w.wv);
    attn.o.load(tp_rank, w.wo);
    const Tensor<float>* gu[] = {&w.wg, &w.wu};
    mlp.gate_up.load(tp_rank, gu);
    mlp.down.load(tp_rank, w.wd);
  }
  // x: this rank's tokens (1, S_local, hidden); rope: their table rows
  template <class R>
  typename C::tensor forward(R& rank, typename C::tensor x, const RopeTable<typename C::backend>& rope) const {
    add_(x, attn.forward(rank, norm1(x), &rope));
    add_(x, mlp.forward(rank, norm2(x)));
    return x;
  }
};

static Tensor<float> randn(Shape s, std::uint64_t seed, float scale) {
  Tensor<float> t(s);
  Philox{seed, 0}.fill_normal(t.span());
  for (auto& v : t.span()) v *= scale;
  return t;
}

int main(int argc, char** argv) {
  CLI::App app{"pdiff demo: a transformer block on TP x Ulysses thread ranks, checked against serial"};
  std::int64_t tokens = 256, heads = 8, head_dim = 64;
  std::uint64_t seed = 0;
  std::string out = "tp_attention_demo.png";
  app.add_option("--tokens", tokens, "sequence length")->check(CLI::PositiveNumber);
  app.add_option("--heads", heads, "attention heads")->check(CLI::PositiveNumber);
  app.add_option("--head-dim", head_dim, "head dimension (even)")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "weights and input seed");
  app.add_option("-o,--output", out, "output PNG");
  CLI11_PARSE(app, argc, argv);

  try {
    const std::int64_t hidden = heads * head_dim;
    const float ws = 1.0f / std::sqrt(float(hidden));
    Weights w{randn({hidden, hidden}, seed + 1, ws), randn({hidden, hidden}, seed + 2, ws),
              randn({hidden, hidden}, seed + 3, ws), randn({hidden, hidden}, seed + 4, ws),
              randn({3 * hidden, hidden}, seed + 5, ws), randn({3 * hidden, hidden}, seed + 6, ws),
              randn({hidden, 3 * hidden}, seed + 7, ws / 1.7f), randn({hidden}, seed + 8, 0.1f),
              randn({hidden}, seed + 9, 0.1f)};
    for (auto* n : {&w.n1, &w.n2})
      for (auto& v : n->span()) v += 1.0f;
    auto x = randn({1, tokens, hidden}, seed + 10, 1.0f);
    std::vector<std::int64_t> pos(static_cast<std::size_t>(tokens));
    for (std::int64_t i = 0; i < tokens; ++i) pos[std::size_t(i)] = i;
    const auto rope = rope_table_1d(pos, int(head_dim), 10000.0);

    using Serial = Layout<OnCpu>;
    auto t0 = std::chrono::steady_clock::now();
    Tensor<float> serial;
    launch<Serial>({.mode = Launch::threads}, [&](auto& rank) { serial = Block<Serial>(w, hidden, heads, head_dim, 0).forward(rank, x, rope); });
    auto t1 = std::chrono::steady_clock::now();
    std::vector<Tensor<float>> results(Parallel::world_size);
    std::vector<CommStats> stats(Parallel::world_size);
    launch<Parallel>({.mode = Launch::threads}, [&](auto& rank) {
      Block<Parallel> block(w, hidden, heads, head_dim, rank.coords.tp);
      RopeTable local{sp_shard<Parallel>(rank, rope.cos, 0), sp_shard<Parallel>(rank, rope.sin, 0)};
      auto y = block.forward(rank, sp_shard<Parallel>(rank, x), local);
      stats[std::size_t(rank.index)] = rank.world.stats();
      results[std::size_t(rank.index)] = sp_gather<Parallel>(rank, y);
    });
    auto t2 = std::chrono::steady_clock::now();

    double worst = 0;
    for (auto& r : results) {
      double num = 0, den = 0;
      for (std::int64_t i = 0; i < r.numel(); ++i) {
        num += double(r(i) - serial(i)) * (r(i) - serial(i));
        den += double(serial(i)) * serial(i);
      }
      worst = std::max(worst, std::sqrt(num / den));
    }
    // image: three panels of (tokens x hidden), values mapped from [−3, 3]
    const int H = int(tokens), W = int(hidden);
    Tensor<float> img({1, 1, H, 3 * W + 8});
    for (std::int64_t i = 0; i < img.numel(); ++i) img(i) = 1.0f;
    for (int s = 0; s < H; ++s)
      for (int c = 0; c < W; ++c) {
        float a = serial(s * W + c), b = results[0](s * W + c);
        img(s * (3 * W + 8) + c) = std::clamp(a / 3.0f, -1.0f, 1.0f);
        img(s * (3 * W + 8) + W + 4 + c) = std::clamp(b / 3.0f, -1.0f, 1.0f);
        img(s * (3 * W + 8) + 2 * W + 8 + c) = std::clamp(std::fabs(a - b) * 1e5f - 1.0f, -1.0f, 1.0f);
      }
    write_png(out, tensor_to_image(img));

    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::printf("pdiff demo: transformer block, %lld tokens, %lld heads x %lld dims (hidden %lld)\n",
                (long long)tokens, (long long)heads, (long long)head_dim, (long long)hidden);
    std::printf("  serial:                 %8.1f ms\n", ms(t0, t1));
    std::printf("  TP<%d> x Ulysses<%d> x Ring<%d> on %d thread ranks: %8.1f ms\n", Parallel::tp, Parallel::ulysses,
                Parallel::ring, Parallel::world_size, ms(t1, t2));
    std::printf("  bytes sent by rank 0: %.1f KiB (all_reduce %.1f, all_to_all %.1f, all_gather %.1f)\n",
                double(stats[0].total()) / 1024, double(stats[0].all_reduce) / 1024,
                double(stats[0].all_to_all) / 1024, double(stats[0].all_gather) / 1024);
    std::printf("  relative error parallel vs serial: %.3g (%s, limit 1e-5)\n", worst, worst <= 1e-5 ? "ok" : "TOO LARGE");
    std::printf("  wrote %s (serial | parallel | 1e5 x |difference|)\n", out.c_str());
    return worst <= 1e-5 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tp_attention_demo: %s\n", e.what());
    return 2;
  }
}
