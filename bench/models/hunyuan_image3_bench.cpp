// HunyuanImage-3.0 denoising step with and without the prompt's KV cache (HunyuanImage3Transformer::velocity,
// one guidance branch): without it every step runs the whole sequence `<bos> prompt <boi> <size> <ratio>
// <timestep> <img>×N <eoi>`; with it (the default, as the reference) steps after the first run only
// `<timestep> <img>×N <eoi>` against the cached prompt K/V. The model is the committed tiny checkpoint
// (tests/golden/hunyuan_image3_tiny: hidden 64, 3 layers, 8 experts top-2), or PDIFF_HUNYUAN_BENCH_DIR; the
// sequence has realistic token counts: prompt 128 or 512 tokens, image 16x16 or 32x32 latent tokens (a
// 1024x1024 image is 64x64). Reported: seconds per step, rows computed per step; ratios in one run.
// BM_hunyuan_vae_decode: the checkpoint's 3-D VAE decoder (every frame, the last kept) at latent side 16 / 32
// (256² / 512² images) in fp32 on the host.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include "pdiff/core/philox.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/models/hunyuan_image3/sampler.hpp"
#include "pdiff/models/hunyuan_image3/vae.hpp"
#include "pdiff/parallel/launch.hpp"

using namespace pdiff;
namespace fs = std::filesystem;

namespace {
fs::path model_dir() {
  if (const char* d = std::getenv("PDIFF_HUNYUAN_BENCH_DIR")) return d;
  return fs::path(PDIFF_SOURCE_DIR) / "tests/golden/hunyuan_image3_tiny";
}

// prompt tokens (ids cycling through the vocabulary's ordinary range), then the image block of side n.
HunyuanSequence sequence(std::int64_t prompt, std::int64_t n) {
  HunyuanSequence s;
  s.ids.push_back(58);  // <bos> of the tiny tokenizer (any in-vocabulary ids do for timing)
  for (std::int64_t i = 0; i < prompt; ++i) s.ids.push_back(std::int32_t(1 + i % 50));
  for (std::int32_t t : {100, 137, 144}) s.ids.push_back(t);  // <boi> <img_size> <img_ratio>
  s.timestep_index = s.size();
  s.ids.push_back(111);
  s.image_begin = s.size();
  s.h = s.w = n;
  s.ids.insert(s.ids.end(), std::size_t(n * n), 106);
  s.ids.push_back(101);  // <eoi>
  return s;
}

template <class L>
void BM_hunyuan_step(benchmark::State& st) {
  const bool cache = st.range(0) != 0;
  const std::int64_t prompt = st.range(1), n = st.range(2);
  const auto dir = model_dir();
  const auto cfg = HunyuanImage3Config::load(dir);
  const auto ck = Checkpoint::open(dir);
  const auto s = sequence(prompt, n);
  Tensor<float> x({1, cfg.latent_channels, n, n});
  Philox{1, 0}.fill_normal(x.span());
  double per_step = 0;
  for (auto _ : st) {
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      const auto m = HunyuanImage3Transformer<Ctx<L>>::load(ck, cfg, rank);
      typename HunyuanImage3Transformer<Ctx<L>>::KvCache kv;
      (void)m.velocity(rank, s, x, 1000.0f, nullptr, cache ? &kv : nullptr);  // the first step (fills the cache)
      const int steps = 3;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < steps; ++i) (void)m.velocity(rank, s, x, 900.0f - 100.0f * float(i), nullptr, cache ? &kv : nullptr);
      if (rank.is_root()) per_step = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
    });
    st.SetIterationTime(per_step);
  }
  st.counters["seconds_per_step"] = per_step;
  st.counters["sequence"] = double(s.size());
  st.counters["rows_per_step"] = double(cache ? s.size() - s.timestep_index : s.size());
  st.counters["ranks"] = L::world_size;
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"cache", "prompt", "side"});
  for (std::int64_t prompt : {128, 512})
    for (std::int64_t side : {16, 32})
      for (int cache : {0, 1}) b->Args({cache, prompt, side});
  b->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(2);
}

void BM_hunyuan_vae_decode(benchmark::State& st) {
  const std::int64_t n = st.range(0);
  const auto dir = model_dir();
  const auto vae =
      hunyuan_image3::VaeDecoder3d::load(Checkpoint::open(dir), JsonConfig::load(dir / "config.json").sub("vae"));
  Tensor<float> z({1, vae.latent_channels, n, n});
  Philox{2, 0}.fill_normal(z.span());
  for (auto _ : st) benchmark::DoNotOptimize(vae.decode(z).data());
  st.counters["pixels"] = double(n * n * 256);
}
}  // namespace

BENCHMARK(BM_hunyuan_vae_decode)->ArgName("side")->Arg(16)->Arg(32)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_TEMPLATE(BM_hunyuan_step, Layout<OnCpu>)->Apply(args);
BENCHMARK_TEMPLATE(BM_hunyuan_step, Layout<TP<2>, EP<2>, OnCpu>)->Apply(args);
BENCHMARK_TEMPLATE(BM_hunyuan_step, Layout<Ulysses<2>, EP<2>, OnCpu>)->Apply(args);

BENCHMARK_MAIN();
