// Batch throughput of the FLUX.2 pipeline (text encoder + transformer + VAE, everything a request
// costs) on CPU thread ranks: images per second and seconds per batch for batches of 1, 2, 4, 8 images
// on serial, DP<2> (the batch divided between two groups of one rank) and TP<2> (every image on both
// ranks), the same two cores. Folder: PDIFF_FLUX2_BATCH_DIR (made by tools/flux2_batch_bench_reference.py,
// which also times diffusers on the same batches; scripts/bench.sh --model flux2-batch runs both), else the
// committed tiny klein folder. Inputs from the folder's bench_inputs.txt (image side, steps, text
// length), else 128x128, 4 steps, 64 text tokens. Guidance 1: one branch.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "pdiff/models/flux2/pipeline.hpp"
#include "pdiff/parallel/launch.hpp"

using namespace pdiff;
namespace fs = std::filesystem;

namespace {
fs::path model_dir() {
  if (const char* d = std::getenv("PDIFF_FLUX2_BATCH_DIR")) return d;
  return fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/klein/e2e";
}
struct Inputs {
  std::int64_t side = 128;
  int steps = 4;
  std::size_t max_len = 64;
};
Inputs inputs() {
  Inputs in;
  if (std::ifstream f{model_dir() / "bench_inputs.txt"}) f >> in.side >> in.steps >> in.max_len;
  return in;
}

template <class L>
void BM_flux2_batch(benchmark::State& st) {
  const auto in = inputs();
  const int b = int(st.range(0));
  const std::string prompt[] = {"a red fox in the snow"};
  const auto qs = flux2_requests({.width = in.side, .height = in.side, .steps = in.steps, .guidance = 1.0f,
                                  .max_sequence_length = in.max_len, .progress = false},
                                 prompt, b);
  double seconds = 0;
  for (auto _ : st) {
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      const auto pipe = Flux2Pipeline<L>::load(rank, model_dir());
      const std::span<const Flux2Request> one(qs.data(), 1);
      pipe.generate(rank, one, {.progress = false});  // warm-up
      rank.world.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      const auto out = pipe.generate(rank, std::span<const Flux2Request>(qs), {.progress = false});
      benchmark::DoNotOptimize(out.data());
      rank.world.barrier();
      if (rank.is_root()) seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
    st.SetIterationTime(seconds);
  }
  st.counters["images_per_second"] = b / seconds;
  st.counters["seconds_per_batch"] = seconds;
  st.counters["ranks"] = L::world_size;
}
}  // namespace

#define PDIFF_BATCH_BENCH(...) \
  BENCHMARK(BM_flux2_batch<__VA_ARGS__>)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond)
PDIFF_BATCH_BENCH(Layout<OnCpu>);
PDIFF_BATCH_BENCH(Layout<DP<2>, OnCpu>);
PDIFF_BATCH_BENCH(Layout<TP<2>, OnCpu>);
BENCHMARK_MAIN();
