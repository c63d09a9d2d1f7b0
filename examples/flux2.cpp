// flux2 — FLUX.2-dev and FLUX.2-klein text-to-image and image editing from a diffusers folder, with the
// parallel layout fixed at compile time (PDIFF_FLUX2_LAYOUT; one binary per layout: flux2, flux2_tp2,
// flux2_cfg2, ...). klein base (not distilled) with --guidance > 1 runs true CFG: the CFG<2> binaries
// run the prompt and negative branches on two rank groups.
// Ranks are threads on the CPU (one process per rank under mpirun). Prints a progress bar over the
// denoising steps and a summary: time per phase and each rank's peak memory.
//   flux2 --model DIR --prompt "a fox in the snow" -o fox.png [--image ref.png]... [--width W --height H]
//         [--steps N] [--guidance G] [--negative-prompt TEXT] [--seed S] [--vae whole|tiled|patch] [--vae-tile T]
//         [--upsample-temperature T]   (dev: rewrite the prompt with the text encoder first, 0 = greedy)
//   flux2 --plan [--width W --height H]   per-rank parameter and activation memory of FLUX.2-dev (bf16)
// Every argument is checked before anything is loaded (check_args): sizes are multiples of 16 up to
// 16384, steps 1..10000, a seed is non-negative, --vae-tile 2..4096 with --vae tiled only, and the
// output's folder must be writable, so a bad command line never costs a model load or a whole run.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <mutex>
#include <optional>

#include "pdiff/models/flux2/flux2.hpp"
#include "pdiff/models/flux2/plan.hpp"
#include "pdiff/parallel/launch.hpp"
#include "cli_common.hpp"

using namespace pdiff;

#ifndef PDIFF_FLUX2_LAYOUT
#define PDIFF_FLUX2_LAYOUT OnCpu
#endif
using Model = Flux2<PDIFF_FLUX2_LAYOUT>;
using L = Model::layout;

namespace {
void print_plan(std::int64_t width, std::int64_t height) {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const auto f = flux2_dev();
  const auto m = mistral_small_3_1_24b();
  const double t = double(flux2_param_plan(f, L::tp).bytes(2)) / gib;
  const double e = double(mistral_param_plan(m, L::tp).bytes(2)) / gib;
  const double a = double(flux2_activation_bytes(f, width, height, 512, L::tp, L::ulysses * L::ring, 2)) / gib;
  std::printf("FLUX.2-dev on this layout (tp %d, ulysses %d, ring %d, cfg %d, vae_patch %d), bf16, %lldx%lld:\n",
              L::tp, L::ulysses, L::ring, L::cfg, L::vae_patch, (long long)width, (long long)height);
  std::printf("  transformer parameters   %8.3f GiB per rank\n", t);
  std::printf("  Mistral text encoder     %8.3f GiB per rank\n", e);
  std::printf("  activations (estimate)   %8.3f GiB per rank (largest single-block live set)\n", a);
  std::printf("  total                    %8.3f GiB per rank\n", t + e + a);
}
constexpr std::int64_t max_side = 16384, max_steps = 10000, max_vae_tile = 4096;

// A side given on the command line (0: not given, the default applies).
void check_side(const char* flag, std::int64_t v) {
  PDIFF_CHECK(v == 0 || (v >= 16 && v <= max_side && v % 16 == 0), flag, " ", v,
              " must be a multiple of 16 between 16 and ", max_side);
}

struct Args {
  std::int64_t width, height, vae_tile;
  int steps;
  std::string vae_mode, out;
};
// Everything the command line alone can get wrong, before any model is loaded.
void check_args(const Args& a) {
  check_side("--width", a.width);
  check_side("--height", a.height);
  PDIFF_CHECK(a.steps >= 1 && a.steps <= max_steps, "--steps ", a.steps, " must be between 1 and ", max_steps);
  PDIFF_CHECK(a.vae_tile == 0 || a.vae_mode == "tiled", "--vae-tile applies to --vae tiled only (this run uses --vae ",
              a.vae_mode, ")");
  PDIFF_CHECK(a.vae_tile == 0 || (a.vae_tile >= 2 && a.vae_tile <= max_vae_tile), "--vae-tile ", a.vae_tile,
              " must be between 2 and ", max_vae_tile, " latent pixels (0 or absent: the VAE config's)");
  cli::check_output(a.out);
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"flux2: FLUX.2 text-to-image / editing on a compile-time parallel layout"};
  std::string model, prompt, negative_prompt, out = "flux2.png", vae_mode = "whole";
  std::vector<std::string> images;
  std::int64_t width = 0, height = 0, vae_tile = 0;
  int steps = 50;
  float guidance = 4.0f;
  std::optional<float> upsample;
  std::uint64_t seed = 0;
  bool plan = false;
  app.add_option("--model", model, "diffusers FLUX.2 folder (model_index.json, transformer/, vae/, ...)");
  app.add_option("--prompt", prompt, "text prompt");
  app.add_option("--image", images, "reference image for editing (repeatable)");
  app.add_option("--width", width, "image width, a multiple of 16 (default: the first reference image's, else 1024)");
  app.add_option("--height", height, "image height, a multiple of 16");
  app.add_option("--steps", steps, "denoising steps (1..10000)");
  app.add_option("--guidance", guidance, "guidance scale: embedded (FLUX.2-dev) or true CFG (FLUX.2-klein base, > 1)");
  app.add_option("--negative-prompt", negative_prompt, "negative prompt of true CFG (klein base; default \"\")");
  app.add_option("--seed", seed, "noise seed, >= 0 (Philox: the same image on every layout and backend)")
      ->check(cli::non_negative);
  app.add_option("--vae", vae_mode, "VAE decode/encode split: whole, tiled, patch (tiled/patch use the VaePatch ranks)")
      ->check(CLI::IsMember({"whole", "tiled", "patch"}));
  app.add_option("--vae-tile", vae_tile, "tiled mode: tile size in latent pixels (default: the VAE config's)");
  app.add_option("-o,--output", out, "output PNG");
  app.add_option("--upsample-temperature", upsample,
                 "caption upsampling (FLUX.2-dev): the text encoder rewrites the prompt first, sampled at this "
                 "temperature (0: greedy; diffusers suggests 0.15)");
  app.add_flag("--plan", plan, "print the per-rank memory plan of FLUX.2-dev for this layout and exit");
  CLI11_PARSE(app, argc, argv);

  try {
    check_side("--width", width);
    check_side("--height", height);
    if (plan) {
      print_plan(width ? width : 1024, height ? height : 1024);
      return 0;
    }
    PDIFF_CHECK(!model.empty(), "--model DIR is required (a diffusers FLUX.2 folder)");
    PDIFF_CHECK(!prompt.empty(), "--prompt TEXT is required");
    check_args({width, height, vae_tile, steps, vae_mode, out});
    Flux2Request q{.prompt = prompt, .negative_prompt = negative_prompt, .width = width, .height = height, .steps = steps, .guidance = guidance,
                   .seed = seed};
    for (auto& path : images) q.images.push_back(image_to_tensor(read_image(path)));
    q.upsample_temperature = upsample;
    q.vae = vae_mode == "whole" ? VaeRunOptions::whole()
            : vae_mode == "tiled" ? VaeRunOptions::tiled(vae_tile)
                                  : VaeRunOptions::patch();
    std::vector<double> load_peak(L::world_size), run_peak(L::world_size);
    Flux2Result result;
    std::mutex mu;
    const auto t0 = std::chrono::steady_clock::now();
    double load_s = 0;
    using Mem = memory<typename L::backend>;  // host memory on OnCpu, device memory on OnCuda
    launch<L>({}, [&](auto& rank) {
      Mem::reset_thread_peak();
      // under thread launch rank 0 is the main thread: do not count what it held before (input images)
      const double base = double(Mem::thread_live_bytes());
      const auto t = std::chrono::steady_clock::now();
      const auto pipe = Model::load(rank, model, {.caption_upsampling = upsample.has_value()});
      if (rank.is_root()) load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
      const double loaded = double(Mem::thread_peak_bytes()) - base;
      auto r = pipe.generate(rank, q);
      const auto all = cli::gather_pairs<L>(rank, loaded, double(Mem::thread_peak_bytes()) - base);
      if (rank.is_root()) {
        for (std::size_t i = 0; i < std::size_t(L::world_size); ++i) load_peak[i] = all[2 * i], run_peak[i] = all[2 * i + 1];
        std::lock_guard lock(mu);
        result = std::move(r);
      }
    });
    if (result.image.empty()) return 0;  // not the root process (mpirun)
    Tensor<float> signed_img(result.image.shape());
    for (std::int64_t i = 0; i < signed_img.numel(); ++i) signed_img(i) = result.image(i) * 2.0f - 1.0f;
    write_png(out, tensor_to_image(signed_img));
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("flux2: %lldx%lld, %d steps, layout tp %d x ulysses %d x ring %d x cfg %d (vae_patch %d), %d rank%s\n",
                (long long)result.image.size(3), (long long)result.image.size(2), steps, L::tp, L::ulysses, L::ring,
                L::cfg, L::vae_patch, L::world_size, L::world_size > 1 ? "s" : "");
    std::printf("  load %.2f s | encode %.2f s | denoise %.2f s (%.3f s/step) | decode %.2f s | total %.2f s\n",
                load_s, result.encode_s, result.denoise_s, result.denoise_s / steps, result.decode_s, total);
    for (int r = 0; r < L::world_size; ++r)
      std::printf("  rank %d: peak memory %.1f MiB (%.1f MiB while loading)\n", r, run_peak[std::size_t(r)] / 1048576.0,
                  load_peak[std::size_t(r)] / 1048576.0);
    if (upsample) std::printf("  upsampled prompt: %s\n", result.prompt.c_str());
    std::printf("wrote %s\n", out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flux2: %s\n", e.what());
    return 2;
  }
}
