// FLUX.2-klein guided denoising step through Flux2Pipeline (true CFG: prompt and negative branch per
// step), serial vs CFG<2> (the two branches on two thread ranks) vs TP<2> x CFG<2>. The folder comes
// from PDIFF_FLUX2_KLEIN_BENCH_DIR (any Flux2KleinPipeline folder with is_distilled false); without it
// the committed tiny klein folder (tests/golden/flux2_tiny/klein/e2e). 256x256 pixels (256 image
// tokens), 512 text tokens, 4 steps, guidance 3; reported: seconds per denoising step (denoise phase
// / steps, encode and decode excluded) and the encode time.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include "pdiff/models/flux2/pipeline.hpp"
#include "pdiff/parallel/launch.hpp"

using namespace pdiff;
namespace fs = std::filesystem;

namespace {
fs::path model_dir() {
  if (const char* d = std::getenv("PDIFF_FLUX2_KLEIN_BENCH_DIR")) return d;
  return fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/klein/e2e";
}

template <class L>
void BM_flux2_klein_guided_step(benchmark::State& st) {
  const auto dir = model_dir();
  const int steps = 4;
  double per_step = 0, encode = 0;
  for (auto _ : st) {
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      const auto pipe = Flux2Pipeline<L>::load(rank, dir);
      const auto r = pipe.generate(rank, {.prompt = "a red fox in fresh snow, morning light", .width = 256,
                                          .height = 256, .steps = steps, .guidance = 3.0f, .progress = false});
      if (rank.is_root()) per_step = r.denoise_s / steps, encode = r.encode_s;
    });
    st.SetIterationTime(per_step);
  }
  st.counters["seconds_per_step"] = per_step;
  st.counters["encode_s"] = encode;
  st.counters["ranks"] = L::world_size;
}
}  // namespace

BENCHMARK(BM_flux2_klein_guided_step<Layout<OnCpu>>)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_flux2_klein_guided_step<Layout<CFG<2>, OnCpu>>)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_flux2_klein_guided_step<Layout<TP<2>, CFG<2>, OnCpu>>)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
