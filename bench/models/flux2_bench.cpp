// FLUX.2 transformer step time per layout on CPU thread ranks (one forward = one denoising step of
// FLUX.2-dev's embedded-guidance pipeline). The model folder comes from PDIFF_FLUX2_BENCH_DIR (made by
// tools/flux2_bench_reference.py: 8 heads x 64, 2 double + 4 single blocks; scripts/bench_flux2.sh
// runs both and prints pdiff's time against diffusers on PyTorch-CPU); without it the committed tiny
// dev transformer is used. Inputs as the reference side: the folder's bench_inputs.txt (image grid side,
// text tokens; the "real" config: 32x32 = 1024 and 256), else 256 image tokens and 64 text tokens.
// PDIFF_FLUX2_BENCH_STEPS (default 5) timed steps per layout; PDIFF_CPU_THREADS sets the GEMM threads per
// rank (default 1). Counters beside the time: peak memory per rank (the largest rank's), bytes sent per
// rank per step (rank 0, every axis communicator) and the advisor's formula for them
// (models/flux2/advisor.hpp, fp32), and the advisor's predicted step time for a CPU core of
// PDIFF_ADVISOR_GFLOPS (default 90; scripts/bench.sh passes the GEMM rate it measured) and a 15 GB/s link.
// Under mpirun -np N the layouts of N ranks run as processes (MpiComm) and only rank 0 reports
// (scripts/bench.sh --mpi).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <utility>

#include <optional>

#include "pdiff/models/flux2/advisor.hpp"
#include "pdiff/models/flux2/latents.hpp"
#include "pdiff/models/flux2/transformer.hpp"
#include "pdiff/pdiff.hpp"
#include "../bench_rank.hpp"

using namespace pdiff;
namespace fs = std::filesystem;

namespace {
fs::path model_dir() {
  if (const char* d = std::getenv("PDIFF_FLUX2_BENCH_DIR")) return fs::path(d) / "transformer";
  return fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/dev/transformer";
}
// {image grid side, text tokens}
std::pair<std::int64_t, std::int64_t> bench_inputs() {
  std::int64_t side = 16, txt = 64;
  if (std::ifstream f{model_dir().parent_path() / "bench_inputs.txt"}) f >> side >> txt;
  return {side, txt};
}
int bench_steps() {
  const char* e = std::getenv("PDIFF_FLUX2_BENCH_STEPS");
  return e && std::atoi(e) > 0 ? std::atoi(e) : 5;
}

template <class L>
void BM_flux2_step(benchmark::State& st) {
  const auto dir = model_dir();
  const auto cfg = Flux2Config::load(dir);
  const auto ck = Checkpoint::open(dir);
  const auto [side, txt] = bench_inputs();
  const std::int64_t img = side * side;
  Tensor<float> x({1, img, cfg.in_channels}), ctx({1, txt, cfg.joint_attention_dim});
  Philox{1, 0}.fill_normal(x.span());
  Philox{2, 0}.fill_normal(ctx.span());
  const auto img_ids = flux2::latent_ids(side, side), txt_ids = flux2::text_ids(txt);
  const float t[] = {0.5f}, g[] = {4.0f};
  double per_step = 0, sent = 0, peak = 0;
  for (auto _ : st) {
    launch<L>({}, [&](auto& rank) {
      memory<OnCpu>::reset_thread_peak();
      const auto model = Flux2Transformer<Ctx<L>>::load(ck, cfg, rank.coords.tp);
      const std::span<const float> gs = cfg.guidance_embeds ? std::span<const float>(g) : std::span<const float>();
      model.forward(rank, x, ctx, t, gs, img_ids, txt_ids);  // warm-up
      rank.world.barrier();
      const double b0 = double(bench::tp_sp_bytes_sent(rank));
      const auto t0 = std::chrono::steady_clock::now();
      const int steps = bench_steps();
      for (int i = 0; i < steps; ++i) benchmark::DoNotOptimize(model.forward(rank, x, ctx, t, gs, img_ids, txt_ids).data());
      rank.world.barrier();
      if (rank.is_root()) {
        per_step = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
        sent = (double(bench::tp_sp_bytes_sent(rank)) - b0) / steps;
      }
      double mine = double(memory<OnCpu>::thread_peak_bytes());  // threads or processes alike
      rank.world.all_reduce(&mine, 1, ReduceOp::max);
      if (rank.is_root()) peak = mine;
    });
    st.SetIterationTime(per_step);
  }
  st.counters["seconds_per_step"] = per_step;
  st.counters["ranks"] = L::world_size;
  st.counters["image_tokens"] = double(img);
  st.counters["gemm_threads_per_rank"] = cpu_gemm_is_openblas ? cpu_threads_per_rank() : 1;
  st.counters["peak_mib_per_rank"] = peak / 1048576.0;
  st.counters["bytes_per_step"] = sent;
  const char* gf = std::getenv("PDIFF_ADVISOR_GFLOPS");
  const double gflops = gf && std::atof(gf) > 0 ? std::atof(gf) : 90.0;
  const auto p = flux2_predict(cfg, mistral_small_3_1_24b(), {.width = side * 16, .height = side * 16, .text_tokens = txt,
                                                      .bytes_per_element = 4, .weight_bytes = 4},
                               {.count = L::world_size, .mem_gib = 1e9, .tflops = gflops / 1000.0, .efficiency = 1.0,
                                .link_gbps = 15.0},
                               L::tp, L::ulysses, L::ring, L::cfg, L::dp);
  st.counters["formula_bytes_per_step"] = p.comm_bytes;
  st.counters["predicted_seconds_per_step"] = p.step_s;
}
}  // namespace

namespace {
template <class L>
void add(const char* name, int procs) {
  if (procs == 0 || procs == L::world_size)  // threads: every layout; mpirun -np N: the N-rank ones
    benchmark::RegisterBenchmark(name, BM_flux2_step<L>)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
}
}  // namespace

int main(int argc, char** argv) {
  int procs = 0, me = 0;
#if defined(PDIFF_WITH_MPI)
  std::optional<MpiComm> world;
  if (MpiComm::launched_by_mpirun()) world = MpiComm::world(), procs = world->size(), me = world->rank();
#endif
  bench::init_for_rank(argc, argv, me);
  add<Layout<OnCpu>>("BM_flux2_step<Layout<OnCpu>>", procs);
  add<Layout<TP<2>, OnCpu>>("BM_flux2_step<Layout<TP<2>, OnCpu>>", procs);
  add<Layout<Ulysses<2>, OnCpu>>("BM_flux2_step<Layout<Ulysses<2>, OnCpu>>", procs);
  add<Layout<Ring<2>, OnCpu>>("BM_flux2_step<Layout<Ring<2>, OnCpu>>", procs);
  add<Layout<TP<2>, Ulysses<2>, OnCpu>>("BM_flux2_step<Layout<TP<2>, Ulysses<2>, OnCpu>>", procs);
  bench::run_for_rank(me);
  return 0;
}
