// VAE decode with the real FLUX.2 VAE widths (128, 256, 512, 512; 2 resnets per level; random
// weights): time and per-rank peak activation bytes (the allocator high-water mark of each rank's
// thread) for serial untiled, serial tiled, VaePatch<2> and VaePatch<4> (tiled mode, thread ranks).
//
// The sizes are 1024² and 2048² with the reference's 1024-pixel tiles. A 2048² decode is
// ~40 TFLOP, hours on a 2-core CPU, so the default runs the same geometry scaled down 4×: image
// 256² / 512² with 256-pixel tiles (tile:image ratios of 1024²/2048² with 1024 tiles), where every
// activation is 16× smaller. Pass --full (env PDIFF_VAE_BENCH_FULL=1) for the real sizes.
// Counters: peak_MiB (max over ranks), vs_untiled (peak / serial untiled peak at that size).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "pdiff/io/safetensors_write.hpp"
#include "pdiff/models/autoencoder_kl/autoencoder_kl.hpp"
#include "pdiff/models/autoencoder_kl/params.hpp"
#include "pdiff/pdiff.hpp"

using namespace pdiff;

namespace {
bool full() { return std::getenv("PDIFF_VAE_BENCH_FULL") != nullptr; }
std::int64_t scale_div() { return full() ? 1 : 4; }

// The real FLUX.2 VAE config with random weights, scaled N(0, 1/fan_in) so activations stay O(1).
const AutoencoderKL& vae() {
  static const AutoencoderKL v = [] {
    AutoencoderKLConfig c;
    c.class_name = "AutoencoderKLFlux2", c.latent_channels = 32, c.patch_size = {2, 2};
    c.sample_size = 1024 / scale_div();
    const auto dir = std::filesystem::temp_directory_path() / "pdiff_vae_bench";
    std::filesystem::create_directories(dir);
    std::map<std::string, Tensor<float>> w;
    std::uint64_t seed = 1;
    for (auto& [name, shape] : autoencoder_kl_params(c)) {
      Shape s;
      for (auto d : shape) s.dims[s.rank++] = d;
      Tensor<float> t(s);
      const bool is_weight = name.ends_with(".weight") && shape.size() >= 2;
      if (is_weight) {
        Philox{seed++, 0}.fill_normal(t.span());
        const float k = 1.0f / std::sqrt(float(t.numel() / shape[0]));
        for (auto& v : t.span()) v *= k;
      } else {
        const bool ones = name.ends_with(".weight") || name.ends_with("running_var");
        for (auto& v : t.span()) v = ones ? 1.0f : 0.0f;
      }
      w.emplace(name, std::move(t));
    }
    write_safetensors((dir / "diffusion_pytorch_model.safetensors").string(), w);
    return AutoencoderKL::load(Checkpoint::open(dir), c);
  }();
  return v;
}

std::map<std::int64_t, double> untiled_peak;  // image size → serial untiled peak bytes

// mode: 0 serial untiled, 1 serial tiled, 2 VaePatch<2>, 4 VaePatch<4>
template <class L>
void run(benchmark::State& st, int mode) {
  const std::int64_t px = st.range(0) / scale_div(), tile = st.range(1) / scale_div(), lat = px / 8;
  vae();  // load (and write) the weights outside the measured ranks
  auto z = Tensor<float>({1, 32, lat, lat});
  Philox{9, 0}.fill_normal(z.span());
  const auto opts = mode == 0 ? VaeRunOptions::whole() : VaeRunOptions::tiled(tile / 8);
  double peak = 0, secs = 0;
  for (auto _ : st) {
    std::mutex mu;
    peak = 0;
    const auto t0 = std::chrono::steady_clock::now();
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      memory<OnCpu>::reset_thread_peak();
      const std::size_t base = memory<OnCpu>::thread_live_bytes();
      auto img = vae().decode(z, opts, rank.vae_patch);
      benchmark::DoNotOptimize(img.data());
      std::lock_guard lock(mu);
      peak = std::max(peak, double(memory<OnCpu>::thread_peak_bytes() - base));
    });
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (mode == 0) untiled_peak[px] = peak;
  st.counters["image_px"] = double(px);
  st.counters["tile_px"] = double(tile);
  st.counters["peak_MiB"] = peak / (1 << 20);
  st.counters["seconds"] = secs;
  if (untiled_peak.count(px)) st.counters["vs_untiled"] = peak / untiled_peak[px];
}

void BM_decode_untiled(benchmark::State& st) { run<Layout<OnCpu>>(st, 0); }
void BM_decode_tiled(benchmark::State& st) { run<Layout<OnCpu>>(st, 1); }
void BM_decode_vae_patch2(benchmark::State& st) { run<Layout<TP<2>, VaePatch<2>, OnCpu>>(st, 2); }
void BM_decode_vae_patch4(benchmark::State& st) { run<Layout<TP<4>, VaePatch<4>, OnCpu>>(st, 4); }
}  // namespace

// Arguments: nominal image size and tile size (the reference's tile is 1024, so a 1024² image is one
// tile there; 512 tiles give the 1024² run something to spread). Runs use size / 4 unless
// PDIFF_VAE_BENCH_FULL is set.
#define PDIFF_VAE_ARGS ->Args({1024, 512})->Args({2048, 1024})->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime()
BENCHMARK(BM_decode_untiled) PDIFF_VAE_ARGS;
BENCHMARK(BM_decode_tiled) PDIFF_VAE_ARGS;
BENCHMARK(BM_decode_vae_patch2) PDIFF_VAE_ARGS;
BENCHMARK(BM_decode_vae_patch4) PDIFF_VAE_ARGS;
BENCHMARK_MAIN();
