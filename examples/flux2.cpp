// flux2 — FLUX.2-dev and FLUX.2-klein text-to-image and image editing from a diffusers folder, with the
// parallel layout fixed at compile time (PDIFF_FLUX2_LAYOUT; one binary per layout: flux2, flux2_tp2,
// flux2_cfg2, ...). klein base (not distilled) with --guidance > 1 runs true CFG: the CFG<2> binaries
// run the prompt and negative branches on two rank groups.
// Ranks are threads on the CPU (one process per rank under mpirun). Prints a progress bar over the
// denoising steps and a summary: time per phase and each rank's peak memory.
// Several --prompt and --num-images N make a batch: images of one size share each forward, DP<N> binaries
// divide the images among their DP groups, and each image is written as <output stem>_<i>.png (image
// i = prompt i / N, its seed --seeds[i] or --seed + i: the same picture however the batch is run).
//   flux2 --model DIR --prompt "a fox in the snow" -o fox.png [--image ref.png]... [--width W --height H]
//         [--prompt P2 ...] [--num-images N] [--seeds a,b,c] [--max-batch B] [--memory-budget GIB]
//         [--steps N] [--guidance G] [--negative-prompt TEXT] [--seed S] [--vae whole|tiled|patch] [--vae-tile T]
//         [--max-sequence-length N]   (text tokens the prompt is padded / truncated to, default 512)
//         [--upsample-temperature T]   (dev: rewrite the prompt with the text encoder first, 0 = greedy)
//   flux2 --plan [--width W --height H]   per-rank parameter and activation memory of FLUX.2-dev (bf16)
// A model folder may carry pdiff.json with {"defaults": {"width", "height", "steps", "guidance",
// "max_sequence_length"}}: the settings it was trained for (demo/flux2-klein-shapes has one); they replace the
// CLI's defaults, never a value given on the command line.
// Every argument is checked before anything is loaded (check_args): sizes are multiples of 16 up to
// 16384, steps 1..10000, --max-sequence-length 1..8192, a seed is non-negative, --vae-tile 2..4096 with --vae tiled only, and the
// output's folder must be writable, so a bad command line never costs a model load or a whole run.
#include <CLI/CLI.hpp>

#include <cstdio>
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
void print_plan(std::int64_t width, std::int64_t height, int images, int max_batch) {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const auto f = flux2_dev();
  const auto m = mistral_small_3_1_24b();
  const double t = double(flux2_param_plan(f, L::tp).bytes(2)) / gib;
  const double e = double(mistral_param_plan(m, L::tp).bytes(2)) / gib;
  const double a = double(flux2_activation_bytes(f, width, height, 512, L::tp, L::ulysses * L::ring, 2)) / gib;
  std::printf("FLUX.2-dev on this layout, %s, in bf16 at %lldx%lld:\n", layout_text<L>().c_str(), (long long)width,
              (long long)height);
  std::printf("  transformer parameters   %8.3f GiB per rank\n", t);
  std::printf("  Mistral text encoder     %8.3f GiB per rank\n", e);
  std::printf("  activations (estimate)   %8.3f GiB per rank (largest single-block live set)\n", a);
  std::printf("  total                    %8.3f GiB per rank\n", t + e + a);
  if (images > 1) {
    // DP groups share the images; each forward holds up to max_batch of its group's share
    const int share = (images + L::dp - 1) / L::dp, b = std::min(share, max_batch);
    std::printf("  batch of %d image%s: %d per DP group, forwards of up to %d: activations %8.3f GiB, total %8.3f GiB "
                "per rank\n", images, images > 1 ? "s" : "", share, b, a * b, t + e + a * b);
  }
}
constexpr std::int64_t max_side = 16384, max_steps = 10000, max_vae_tile = 4096, max_text_tokens = 8192;

// A side given on the command line (0: not given, the default applies).
void check_side(const char* flag, std::int64_t v) {
  PDIFF_CHECK(v == 0 || (v >= 16 && v <= max_side && v % 16 == 0), flag, " ", v,
              " must be a multiple of 16 between 16 and ", max_side);
}

struct Args {
  std::int64_t width, height, vae_tile;
  int steps, num_images, max_batch;
  std::int64_t max_sequence_length;
  std::size_t prompts, seeds;
  double memory_budget_gib;
  std::string vae_mode, out;
};
constexpr int max_images = 10000;
// Everything the command line alone can get wrong, before any model is loaded.
void check_args(const Args& a) {
  check_side("--width", a.width);
  check_side("--height", a.height);
  PDIFF_CHECK(a.steps >= 1 && a.steps <= max_steps, "--steps ", a.steps, " must be between 1 and ", max_steps);
  PDIFF_CHECK(a.max_sequence_length >= 1 && a.max_sequence_length <= max_text_tokens, "--max-sequence-length ",
              a.max_sequence_length, " must be between 1 and ", max_text_tokens);
  PDIFF_CHECK(a.vae_tile == 0 || a.vae_mode == "tiled", "--vae-tile applies to --vae tiled only (this run uses --vae ",
              a.vae_mode, ")");
  PDIFF_CHECK(a.vae_tile == 0 || (a.vae_tile >= 2 && a.vae_tile <= max_vae_tile), "--vae-tile ", a.vae_tile,
              " must be between 2 and ", max_vae_tile, " latent pixels (0 or absent: the VAE config's)");
  PDIFF_CHECK(a.num_images >= 1 && a.num_images <= max_images, "--num-images ", a.num_images, " must be between 1 and ",
              max_images);
  const std::size_t total = a.prompts * std::size_t(a.num_images);
  PDIFF_CHECK(total <= std::size_t(max_images), a.prompts, " prompts x ", a.num_images, " images is more than ", max_images);
  PDIFF_CHECK(a.seeds == 0 || a.seeds == total, "--seeds gives ", a.seeds, " seeds for ", total, " images (", a.prompts,
              " prompts x --num-images ", a.num_images, "); give one per image");
  PDIFF_CHECK(a.max_batch >= 1 && a.max_batch <= 1024, "--max-batch ", a.max_batch, " must be between 1 and 1024");
  PDIFF_CHECK(a.memory_budget_gib >= 0 && a.memory_budget_gib <= 1 << 20, "--memory-budget ", a.memory_budget_gib,
              " GiB must be between 0 (no limit) and 1048576");
  cli::check_output(a.out);
}

// Image i of a batch of n: the -o name itself when n = 1, else <stem>_<i><ext> (fox.png → fox_0.png).
std::string output_name(const std::string& out, std::size_t i, std::size_t n) {
  if (n == 1) return out;
  const std::filesystem::path p(out);
  return (p.parent_path() / (p.stem().string() + "_" + std::to_string(i) + p.extension().string())).string();
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"flux2: FLUX.2 text-to-image / editing on a compile-time parallel layout"};
  std::string model, negative_prompt, out = "flux2.png", vae_mode = "whole";
  std::vector<std::string> prompts, images;
  std::vector<std::uint64_t> seeds;
  std::int64_t width = 0, height = 0, vae_tile = 0, max_sequence_length = 512;
  int steps = 50, num_images = 1, max_batch = 8;
  double memory_budget_gib = 0;
  float guidance = 4.0f;
  std::optional<float> upsample;
  std::uint64_t seed = 0;
  bool plan = false;
  app.add_option("--model", model, "diffusers FLUX.2 folder (model_index.json, transformer/, vae/, ...)");
  app.add_option("--prompt", prompts, "text prompt (repeatable: one batch of every prompt)");
  app.add_option("--num-images", num_images, "images per prompt (each with its own seed)");
  app.add_option("--seeds", seeds, "one seed per image, comma separated (default: --seed, --seed + 1, ...)")
      ->delimiter(',')
      ->check(cli::non_negative);
  app.add_option("--max-batch", max_batch, "images per forward at most (1..1024, default 8)");
  app.add_option("--memory-budget", memory_budget_gib,
                 "GiB of activations per rank a forward may use: larger batches are split, an image that alone "
                 "needs more is refused before any work (default 0: no limit)");
  app.add_option("--image", images, "reference image for editing (repeatable)");
  app.add_option("--width", width, "image width, a multiple of 16 (default: the first reference image's, else 1024)");
  app.add_option("--height", height, "image height, a multiple of 16");
  app.add_option("--steps", steps, "denoising steps (1..10000)");
  app.add_option("--max-sequence-length", max_sequence_length,
                 "text tokens the prompt is padded or truncated to (diffusers' max_sequence_length, default 512)");
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
      PDIFF_CHECK(num_images >= 1 && num_images <= max_images, "--num-images ", num_images, " must be between 1 and ",
                  max_images);
      PDIFF_CHECK(max_batch >= 1, "--max-batch ", max_batch, " must be >= 1");
      print_plan(width ? width : 1024, height ? height : 1024,
                 int(std::max<std::size_t>(prompts.size(), 1)) * num_images, max_batch);
      return 0;
    }
    PDIFF_CHECK(!model.empty(), "--model DIR is required (a diffusers FLUX.2 folder)");
    if (const auto hint = std::filesystem::path(model) / "pdiff.json"; std::filesystem::is_regular_file(hint)) {
      const auto d = JsonConfig::load(hint).sub("defaults");
      auto take = [&](const char* flag, const char* key, auto& v) {
        if (app.count(flag) == 0 && d.has(key)) v = d.get<std::remove_reference_t<decltype(v)>>(key);
      };
      take("--width", "width", width);
      take("--height", "height", height);
      take("--steps", "steps", steps);
      take("--guidance", "guidance", guidance);
      take("--max-sequence-length", "max_sequence_length", max_sequence_length);
    }
    PDIFF_CHECK(!prompts.empty(), "--prompt TEXT is required");
    for (auto& p : prompts) PDIFF_CHECK(!p.empty(), "--prompt: an empty prompt");
    check_args({width, height, vae_tile, steps, num_images, max_batch, max_sequence_length, prompts.size(), seeds.size(),
                memory_budget_gib, vae_mode, out});
    Flux2Request q{.negative_prompt = negative_prompt, .width = width, .height = height, .steps = steps, .guidance = guidance,
                   .seed = seed};
    for (auto& path : images) q.images.push_back(image_to_tensor(read_image(path)));
    q.upsample_temperature = upsample;
    q.max_sequence_length = std::size_t(max_sequence_length);
    q.vae = vae_mode == "whole" ? VaeRunOptions::whole()
            : vae_mode == "tiled" ? VaeRunOptions::tiled(vae_tile)
                                  : VaeRunOptions::patch();
    const auto requests = flux2_requests(q, prompts, num_images, seeds);
    const Flux2BatchOptions batch{.max_batch = max_batch,
                                  .memory_budget = std::int64_t(memory_budget_gib * 1024.0 * 1024.0 * 1024.0),
                                  .all_ranks = false};
    const auto t0 = std::chrono::steady_clock::now();
    const auto m = cli::run_measured<L, std::vector<Flux2Result>>(
        [&](auto& rank) { return Model::load(rank, model, {.caption_upsampling = upsample.has_value()}); },
        [&](const auto& pipe, auto& rank) { return pipe.generate(rank, std::span<const Flux2Request>(requests), batch); });
    if (!m.has_result) return 0;  // not the root process (mpirun)
    const auto& results = m.result;
    const auto& load_peak = m.load_peak;
    const auto& run_peak = m.run_peak;
    const double load_s = m.load_s;
    std::vector<std::string> written;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& img = results[i].image;
      Tensor<float> signed_img(img.shape());
      for (std::int64_t k = 0; k < signed_img.numel(); ++k) signed_img(k) = img(k) * 2.0f - 1.0f;
      written.push_back(output_name(out, i, results.size()));
      write_png(written.back(), tensor_to_image(signed_img));
    }
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto& result = results.front();
    std::printf("flux2: %lldx%lld, %d steps, layout %s, %d rank%s\n", (long long)result.image.size(3),
                (long long)result.image.size(2), steps, layout_text<L>().c_str(), L::world_size,
                L::world_size > 1 ? "s" : "");
    if (results.size() == 1) {
      std::printf("  load %.2f s | encode %.2f s | denoise %.2f s (%.3f s/step) | decode %.2f s | total %.2f s\n",
                  load_s, result.encode_s, result.denoise_s, result.denoise_s / steps, result.decode_s, total);
    } else {
      const double run_s = total - load_s;
      std::printf("  %zu images | load %.2f s | generate %.2f s (%.3f images/s) | total %.2f s\n", results.size(), load_s,
                  run_s, double(results.size()) / run_s, total);
      for (std::size_t i = 0; i < results.size(); ++i)
        std::printf("  image %zu: seed %llu, DP group %d, forward of %d | encode %.2f s | denoise %.2f s | decode %.2f s"
                    " | %s\n", i, (unsigned long long)requests[i].seed, results[i].dp_group, results[i].batch,
                    results[i].encode_s, results[i].denoise_s, results[i].decode_s, written[i].c_str());
    }
    for (int r = 0; r < L::world_size; ++r)
      std::printf("  rank %d: peak memory %.1f MiB (%.1f MiB while loading)\n", r, run_peak[std::size_t(r)] / 1048576.0,
                  load_peak[std::size_t(r)] / 1048576.0);
    if (upsample) std::printf("  upsampled prompt: %s\n", result.prompt.c_str());
    for (auto& w : written) std::printf("wrote %s\n", w.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flux2: %s\n", e.what());
    return 2;
  }
}
