// bagel — BAGEL-7B-MoT text-to-image and image editing from the released folder (llm_config.json, ema.safetensors,
// ae.safetensors, tokenizer.json), with the parallel layout fixed at compile time (PDIFF_BAGEL_LAYOUT;
// one binary per layout: bagel, bagel_tp2_vae2, bagel_cfg2). Ranks are threads on the CPU (one process
// per rank under mpirun). Prints a progress bar over the denoising steps and a summary: time per phase
// and each rank's peak memory.
//   bagel --model DIR --prompt "a red fox in the snow" -o fox.png [--width W --height H] [--steps N]
//         [--cfg-text S] [--cfg-img S] [--cfg-interval LO HI] [--cfg-renorm global|channel|text_channel]
//         [--cfg-renorm-min M] [--shift S] [--seed S] [--vae whole|tiled|patch]
//   (--steps is the reference's num_timesteps: N timesteps, N − 1 model steps; --vae patch / tiled split
//    the VAE decode over the layout's VaePatch ranks, e.g. bagel_tp2_vae2)
//   bagel --model DIR --image in.png --prompt "make it blue" -o out.png [--cfg-img 2.0 ...]
//   (editing: the image enters the context through the VAE and the SigLIP tower, resized as app.py does;
//    the output has the resized input's size, so --width/--height do not apply)
//   bagel --plan     per-rank parameter memory of the released model (both MoT weight sets) for TP layouts
// Every argument is checked before anything is loaded.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli_common.hpp"
#include "pdiff/io/image.hpp"
#include "pdiff/models/bagel/pipeline.hpp"
#include "pdiff/models/bagel/plan.hpp"
#include "pdiff/parallel/launch.hpp"

using namespace pdiff;

#ifndef PDIFF_BAGEL_LAYOUT
#define PDIFF_BAGEL_LAYOUT OnCpu
#endif
using L = Layout<PDIFF_BAGEL_LAYOUT>;

namespace {
void print_plan() {
  const auto c = bagel_released();
  std::printf("BAGEL-7B-MoT (released: %lld layers, hidden %lld, %lld / %lld heads, FFN %lld, two weight sets), "
              "bf16 parameters per rank:\n",
              (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.num_attention_heads,
              (long long)c.num_key_value_heads, (long long)c.intermediate_size);
  const auto all = bagel_param_plan(c, 1);
  std::printf("  %.1fB parameters in the LLM and its generation parts; 'fits' leaves 10%% of an 80 GiB GPU\n",
              double(all.sharded + all.replicated) / 1e9);
  for (int tp : {1, 2, 4}) {
    const double g = bagel_param_plan(c, tp).gib(2);
    std::printf("  TP<%d>%-14s %8.1f GiB per rank  %s on %d x 80 GiB\n", tp, "", g,
                g < 80.0 * 0.9 ? "fits" : "does not fit", tp);
  }
  std::printf("  (CFG<N> and VaePatch<N> ranks each hold their TP shard; this binary: tp %d, %.1f GiB per rank)\n",
              L::tp, bagel_param_plan(c, L::tp).gib(2));
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bagel: BAGEL-7B-MoT text-to-image on a compile-time parallel layout"};
  std::string model, prompt, out = "bagel.png", vae_mode = "whole", renorm = "global", image;
  std::int64_t width = 1024, height = 1024;
  int steps = 50;
  float cfg_text = 4.0f, cfg_img = -1.0f, renorm_min = 0.0f, shift = 3.0f;
  std::vector<float> interval{0.4f, 1.0f};
  std::uint64_t seed = 0;
  bool plan = false;
  app.add_option("--model", model, "BAGEL folder (llm_config.json, ema.safetensors, ae.safetensors, tokenizer.json)");
  app.add_option("--prompt", prompt, "text prompt (with --image: the edit instruction)");
  app.add_option("--image", image, "input image (PNG/JPEG) to edit");
  app.add_option("--width", width, "image width, a multiple of 16");
  app.add_option("--height", height, "image height, a multiple of 16");
  app.add_option("--steps", steps, "num_timesteps as the reference (2..10000; N − 1 model steps)");
  app.add_option("--cfg-text", cfg_text, "text guidance scale (> 1: the cfg_text branch runs)");
  app.add_option("--cfg-img", cfg_img, "image guidance scale (default 1.5, editing 2.0; text-to-image: the cfg_img branch is gen's)");
  app.add_option("--cfg-interval", interval, "guidance only for timesteps in (LO, HI]")->expected(2);
  app.add_option("--cfg-renorm", renorm, "guidance renorm")->check(CLI::IsMember({"global", "channel", "text_channel"}));
  app.add_option("--cfg-renorm-min", renorm_min, "lower clamp of the renorm scale, in [0, 1]");
  app.add_option("--shift", shift, "timestep shift");
  app.add_option("--seed", seed, "noise seed, >= 0 (Philox: the same image on every layout)")->check(cli::non_negative);
  app.add_option("-o,--output", out, "output PNG");
  app.add_option("--vae", vae_mode, "VAE decode: whole, tiled or patch (over the VaePatch ranks)")
      ->check(CLI::IsMember({"whole", "tiled", "patch"}));
  app.add_flag("--plan", plan, "print per-rank parameter memory of the released model and exit");
  CLI11_PARSE(app, argc, argv);

  try {
    if (plan) {
      print_plan();
      return 0;
    }
    PDIFF_CHECK(!model.empty(), "--model DIR is required (a BAGEL-7B-MoT folder)");
    PDIFF_CHECK(!prompt.empty(), "--prompt TEXT is required");
    PDIFF_CHECK(width >= 16 && width <= 8192 && height >= 16 && height <= 8192 && width % 16 == 0 && height % 16 == 0,
                "--width ", width, " / --height ", height, " must be multiples of 16 between 16 and 8192");
    PDIFF_CHECK(steps >= 2 && steps <= 10000, "--steps ", steps, " must be between 2 and 10000");
    PDIFF_CHECK(shift > 0.0f, "--shift ", shift, " must be positive");
    PDIFF_CHECK(L::cfg == 1 || cfg_text > 1.0f, "this binary runs CFG<", L::cfg, ">: --cfg-text must be > 1 (got ",
                cfg_text, ")");
    cli::check_output(out);
    Image input;
    if (!image.empty()) input = read_image(image);  // a clear error naming the file
    if (cfg_img < 0) cfg_img = image.empty() ? 1.5f : 2.0f;
    BagelRequest q;
    if (!image.empty()) q.image = &input;
    q.prompt = prompt, q.width = width, q.height = height, q.num_timesteps = steps, q.timestep_shift = shift, q.seed = seed;
    q.guidance = {.text_scale = cfg_text, .img_scale = cfg_img, .interval_lo = interval[0], .interval_hi = interval[1],
                  .renorm_min = renorm_min, .renorm = parse_bagel_renorm(renorm)};
    q.guidance.check();
    q.vae = vae_mode == "patch" ? VaeRunOptions::patch() : vae_mode == "tiled" ? VaeRunOptions::tiled() : VaeRunOptions::whole();
    const auto t0 = std::chrono::steady_clock::now();
    const auto m = cli::run_measured<L, BagelResult>([&](auto& rank) { return BagelPipeline<L>::load(rank, model); },
                                                     [&](const auto& pipe, auto& rank) { return pipe.generate(rank, q); });
    if (!m.has_result) return 0;  // not the root process (mpirun)
    const auto& result = m.result;
    Tensor<float> signed_img(result.image.shape());
    for (std::int64_t i = 0; i < signed_img.numel(); ++i) signed_img(i) = result.image(i) * 2.0f - 1.0f;
    write_png(out, tensor_to_image(signed_img));
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("bagel: %s%lldx%lld, %d timesteps, layout %s, %d rank%s\n", image.empty() ? "" : "edit, ",
                (long long)result.width, (long long)result.height, steps, layout_text<L>().c_str(), L::world_size,
                L::world_size > 1 ? "s" : "");
    std::printf("  load %.2f s | prefill %.3f s | denoise %.2f s (%.3f s/step) | decode %.2f s | total %.2f s\n", m.load_s,
                result.prefill_s, result.denoise_s, result.denoise_s / (steps - 1), result.decode_s, total);
    for (int r = 0; r < L::world_size; ++r)
      std::printf("  rank %d: peak memory %.1f MiB (%.1f MiB while loading)\n", r, m.run_peak[std::size_t(r)] / 1048576.0,
                  m.load_peak[std::size_t(r)] / 1048576.0);
    std::printf("wrote %s\n", out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bagel: %s\n", e.what());
    return 2;
  }
}
