// BAGEL-7B-MoT (BagelPipeline, run_bagel_two_stage, the FLUX.1 AE decode) on thread ranks of the CPU.
//
// | benchmark            | model                                        | measures                                   |
// |----------------------|----------------------------------------------|--------------------------------------------|
// | BM_bagel_step<L>     | random, released widths (hidden 3584, FFN 18944, 28/4 heads, head dim 128), 1 layer: PDIFF_BAGEL_BENCH_DIR or /tmp/pdiff_bagel_bench, made by tools/bagel_bench_reference.py | prefill of a 30-token text context; one velocity() of ONE CFG branch at 512x512 (32x32 latent tokens); max |v − v_ref| against the official code's _forward_flow on the same weights |
// | BM_bagel_sequential  | tests/golden/bagel_tiny                      | 4 requests one at a time (prepare + denoise + decode) on one TP<2> group |
// | BM_bagel_two_stage   | tests/golden/bagel_tiny                      | the same 4 requests through run_bagel_two_stage<TP<2>, TP<2>> (4 threads): total, per-stage latency, KV bytes |
// | BM_bagel_vae_*       | FLUX.1 AE, released widths (ch 128, ch_mult 1,2,4,4, 2 res blocks, z 16), random: the folder's ae.safetensors | decode time and per-rank peak bytes: whole, tiled() (the model's tile), tiled(side/2), VaePatch<2> patch |
// The PyTorch side of BM_bagel_step is timed by the same script (torch.set_num_threads 1 and 2); the ratio
// is formed in docs/benchmarks.md from runs taken back to back. Raw JSON: --benchmark_out=docs/bench/bagel.json.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "pdiff/io/safetensors.hpp"
#include "pdiff/models/autoencoder_kl/bfl_names.hpp"
#include "pdiff/parallel/launch.hpp"
#include "pdiff/stage/bagel_stages.hpp"

using namespace pdiff;
namespace fs = std::filesystem;

namespace {
using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

fs::path wide_dir() {
  if (const char* d = std::getenv("PDIFF_BAGEL_BENCH_DIR")) return d;
  return "/tmp/pdiff_bagel_bench";
}
fs::path tiny_dir() { return fs::path(PDIFF_SOURCE_DIR) / "tests/golden/bagel_tiny"; }

bool have_wide(benchmark::State& st) {
  if (fs::is_regular_file(wide_dir() / "bench_io.safetensors")) return true;
  const std::string why = "no " + (wide_dir() / "bench_io.safetensors").string() +
                          ": run PY=$(tools/refenv.sh); $PY tools/bagel_bench_reference.py first";
  st.SkipWithError(why.c_str());
  return false;
}

// ---- 1. one denoising step at the released widths --------------------------------------------------------
template <class L>
void BM_bagel_step(benchmark::State& st) {
  if (!have_wide(st)) return;
  const auto io = SafeTensors::open((wide_dir() / "bench_io.safetensors").string());
  const auto ids_f = io.read("text_ids"), x = io.read("x"), v_ref = io.read("v_ref");
  const float t = io.read("t")(0);
  std::vector<std::int64_t> ids;
  for (std::int64_t i = 0; i < ids_f.numel(); ++i) ids.push_back(std::int64_t(ids_f(i)));
  const std::int64_t side = std::int64_t(std::llround(std::sqrt(double(x.size(0)))));
  double prefill = 1e30, step = 1e30, diff = 0, ref_max = 0, load = 0;
  for (auto _ : st) {
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      const auto t0 = clock_type::now();
      const auto p = BagelPipeline<L>::load(rank, wide_dir());
      if (rank.is_root()) load = since(t0);
      typename BagelPipeline<L>::Context ctx;
      p.prefill_text(rank, ctx, ids);  // warm-up
      (void)p.velocity(rank, ctx, x, t, side, side);
      for (int r = 0; r < 2; ++r) {  // best of 2
        typename BagelPipeline<L>::Context c;
        auto a = clock_type::now();
        p.prefill_text(rank, c, ids);
        const double pre = since(a);
        a = clock_type::now();
        const auto v = p.velocity(rank, c, x, t, side, side);
        const double stp = since(a);
        if (!rank.is_root()) continue;
        prefill = std::min(prefill, pre), step = std::min(step, stp);
        diff = 0, ref_max = 0;
        for (std::int64_t k = 0; k < v.numel(); ++k) {
          diff = std::max(diff, double(std::abs(v(k) - v_ref(k))));
          ref_max = std::max(ref_max, double(std::abs(v_ref(k))));
        }
      }
    });
    st.SetIterationTime(step);
  }
  st.counters["step_s"] = step;
  st.counters["prefill_s"] = prefill;
  st.counters["load_s"] = load;
  st.counters["max_abs_diff"] = diff;
  st.counters["ref_max_abs"] = ref_max;
  st.counters["latent_tokens"] = double(x.size(0));
  st.counters["text_tokens"] = double(ids.size());
  st.counters["ranks"] = L::world_size;
}

// ---- 2. four requests: one at a time on one TP<2> group vs two stages ---------------------------------------
// range(0): image side in pixels; range(1): num_timesteps; range(2): prompt tokens with <|im_start|> /
// <|im_end|> (in-vocabulary ids, a different rotation per request).
std::vector<StageRequest> requests(std::int64_t side, int steps, std::int64_t tokens) {
  const std::int32_t base[] = {65, 298, 68, 264, 73, 82, 67, 76, 69, 265, 257, 280, 259, 281,
                               261, 292, 68, 221, 296, 291, 258, 84, 65, 82, 257, 285, 294, 283};
  std::vector<StageRequest> rs(4);
  for (int i = 0; i < 4; ++i) {
    auto& q = rs[std::size_t(i)];
    q.id = "r" + std::to_string(i);
    for (std::int64_t k = 0; k + 2 < tokens; ++k) q.request.prompt_ids.push_back(base[(k + 7 * i) % 28]);
    q.request.width = q.request.height = side;
    q.request.num_timesteps = steps;
    q.request.seed = std::uint64_t(i + 1);
    q.request.progress = false;
  }
  return rs;
}

void BM_bagel_sequential(benchmark::State& st) {
  using L = Layout<TP<2>, OnCpu>;
  const auto rs = requests(st.range(0), int(st.range(1)), st.range(2));
  double total = 0, prefill = 0, denoise = 0;
  for (auto _ : st) {
    prefill = denoise = 0;
    const auto t0 = clock_type::now();
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      const auto p = BagelPipeline<L>::load(rank, tiny_dir());
      for (const auto& r : rs) {
        auto a = clock_type::now();
        auto prep = p.prepare(rank, r.request);
        const double pre = since(a);
        a = clock_type::now();
        benchmark::DoNotOptimize(p.denoise(rank, r.request, prep).image.data());
        if (rank.is_root()) prefill += pre, denoise += since(a);
      }
    });
    total = since(t0);
    st.SetIterationTime(total);
  }
  st.counters["total_s"] = total;
  st.counters["prefill_s_per_request"] = prefill / 4;
  st.counters["denoise_s_per_request"] = denoise / 4;  // denoise + decode
  st.counters["threads"] = 2;
}

void BM_bagel_two_stage(benchmark::State& st) {
  using L = Layout<TP<2>, OnCpu>;
  const auto rs = requests(st.range(0), int(st.range(1)), st.range(2));
  TwoStageReport rep;
  for (auto _ : st) {
    rep = run_bagel_two_stage<L, L>(tiny_dir(), rs);
    if (!rep.failures.empty()) {
      const std::string why = rep.failures.begin()->first + ": " + rep.failures.begin()->second;
      st.SkipWithError(why.c_str());
    }
    st.SetIterationTime(rep.total_s);
  }
  double prefill = 0, wait = 0, denoise = 0;
  for (auto& [id, t] : rep.timing) prefill += t.prefill_s, wait += t.wait_s, denoise += t.denoise_s;
  const double n = double(std::max<std::size_t>(1, rep.timing.size()));
  st.counters["total_s"] = rep.total_s;
  st.counters["prefill_s_per_request"] = prefill / n;
  st.counters["wait_s_per_request"] = wait / n;
  st.counters["denoise_s_per_request"] = denoise / n;  // denoise + decode
  // text-to-image sends one context (gen; cfg_text is empty, cfg_img is gen's):
  // layers · 2 (K, V) · tokens · kv_heads · head_dim · 4 bytes; tiny: 2 layers, 2 KV heads, head dim 16
  st.counters["kv_bytes_per_request"] = rep.timing.empty() ? 0.0 : double(rep.timing.begin()->second.kv_bytes);
  st.counters["kv_bytes_formula"] = double(2 * 2 * st.range(2) * 2 * 16 * 4);
  st.counters["threads"] = 4;
}

// ---- 3. the FLUX.1 AE decode at the released widths ---------------------------------------------------------
const AutoencoderKL& released_ae() {
  static const AutoencoderKL v = [] {
    auto ck = Checkpoint::open_files({wide_dir() / "ae.safetensors"});
    return AutoencoderKL::load(ck, bfl_autoencoder_config(ck));
  }();
  return v;
}

// mode: 0 whole, 1 tiled() (the model's tile: 1024 px), 2 tiled(side / 2), 3 VaePatch<2> patch() (VaePatch
// must divide the mesh: TP<2> x VaePatch<2>, the layout the pipeline decodes on)
template <class L>
void run_decode(benchmark::State& st, int mode) {
  if (!have_wide(st)) return;
  const std::int64_t px = st.range(0), lat = px / 8;
  const auto& ae = released_ae();
  Tensor<float> z({1, 16, lat, lat});
  Philox{9, 0}.fill_normal(z.span());
  const VaeRunOptions opts = mode == 0   ? VaeRunOptions::whole()
                             : mode == 1 ? VaeRunOptions::tiled()
                             : mode == 2 ? VaeRunOptions::tiled(lat / 2)
                                         : VaeRunOptions::patch();
  double peak = 0, secs = 0;
  for (auto _ : st) {
    std::mutex mu;
    peak = 0;
    const auto t0 = clock_type::now();
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      memory<OnCpu>::reset_thread_peak();
      const std::size_t base = memory<OnCpu>::thread_live_bytes();
      auto img = ae.decode(z, opts, rank.vae_patch);
      benchmark::DoNotOptimize(img.data());
      std::lock_guard lock(mu);
      peak = std::max(peak, double(memory<OnCpu>::thread_peak_bytes() - base));
    });
    secs = since(t0);
    st.SetIterationTime(secs);
  }
  st.counters["image_px"] = double(px);
  st.counters["peak_MiB_per_rank"] = peak / (1 << 20);
  st.counters["seconds"] = secs;
  st.counters["ranks"] = L::world_size;
}
void BM_bagel_vae_whole(benchmark::State& st) { run_decode<Layout<OnCpu>>(st, 0); }
void BM_bagel_vae_tiled_default(benchmark::State& st) { run_decode<Layout<OnCpu>>(st, 1); }
void BM_bagel_vae_tiled_half(benchmark::State& st) { run_decode<Layout<OnCpu>>(st, 2); }
void BM_bagel_vae_patch2(benchmark::State& st) { run_decode<Layout<TP<2>, VaePatch<2>, OnCpu>>(st, 3); }
}  // namespace

BENCHMARK_TEMPLATE(BM_bagel_step, Layout<OnCpu>)->UseManualTime()->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_TEMPLATE(BM_bagel_step, Layout<TP<2>, OnCpu>)->UseManualTime()->Iterations(1)->Unit(benchmark::kSecond);

// 4 requests of 256x256 (256 latent tokens), 10 timesteps (9 steps, text CFG on: 2 branches a step), a
// 30-token prompt (a text-to-image prompt: prefill is ~0.3% of a request) and a 4096-token one (a long context)
#define PDIFF_BAGEL_STAGE_ARGS                                                                              \
  ->ArgNames({"side", "timesteps", "tokens"})->Args({256, 10, 30})->Args({256, 10, 4096})->UseManualTime()->Iterations(1) \
      ->Unit(benchmark::kSecond)
BENCHMARK(BM_bagel_sequential) PDIFF_BAGEL_STAGE_ARGS;
BENCHMARK(BM_bagel_two_stage) PDIFF_BAGEL_STAGE_ARGS;

// 512² by default on a 2-core machine; 1024² (the size) with --benchmark_filter='vae.*/1024'
#define PDIFF_BAGEL_VAE_ARGS ->ArgName("px")->Arg(512)->Arg(1024)->UseManualTime()->Iterations(1)->Unit(benchmark::kSecond)
BENCHMARK(BM_bagel_vae_whole) PDIFF_BAGEL_VAE_ARGS;
BENCHMARK(BM_bagel_vae_tiled_default) PDIFF_BAGEL_VAE_ARGS;
BENCHMARK(BM_bagel_vae_tiled_half) PDIFF_BAGEL_VAE_ARGS;
BENCHMARK(BM_bagel_vae_patch2) PDIFF_BAGEL_VAE_ARGS;

BENCHMARK_MAIN();
