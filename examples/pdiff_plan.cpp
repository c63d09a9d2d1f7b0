// pdiff-plan — per-rank parameter memory of a model for TP degrees 1, 2, 4, 8.
//   pdiff-plan                       Mistral-Small-3.1-24B (FLUX.2-dev's text encoder), bf16
//   pdiff-plan --config DIR          the text encoder whose config.json is in DIR
//   pdiff-plan --dtype f32           bytes per parameter of another dtype
#include <CLI/CLI.hpp>

#include <cstdio>

#include "pdiff/models/mistral/plan.hpp"

using namespace pdiff;

int main(int argc, char** argv) {
  CLI::App app{"pdiff-plan: parameter memory per rank"};
  std::string config, dtype = "bf16";
  bool lm_head = false;
  app.add_option("--config", config, "folder with a Mistral/Mistral3 config.json (default: Mistral-Small-3.1-24B)");
  app.add_option("--dtype", dtype, "bf16, f16 or f32")->check(CLI::IsMember({"bf16", "f16", "f32"}));
  app.add_flag("--lm-head", lm_head, "include the LM head (needed for caption upsampling with generate())");
  CLI11_PARSE(app, argc, argv);
  try {
    MistralConfig cfg = config.empty() ? mistral_small_3_1_24b() : MistralConfig::load(config);
    const int bytes = dtype == "f32" ? 4 : 2;
    const double gib = 1024.0 * 1024.0 * 1024.0;
    std::printf("Mistral text encoder: %lld layers, hidden %lld, %lld heads / %lld kv heads, vocab %lld (%s)\n",
                (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size, (long long)cfg.num_attention_heads,
                (long long)cfg.num_key_value_heads, (long long)cfg.vocab_size, dtype.c_str());
    const double full = double(mistral_param_plan(cfg, 1, lm_head).bytes(bytes));
    for (int tp : {1, 2, 4, 8}) {
      try {
        const double b = double(mistral_param_plan(cfg, tp, lm_head).bytes(bytes));
        std::printf("  TP<%d>: %8.3f GiB per rank (%.3f of replicated)\n", tp, b / gib, b / full);
      } catch (const Error& e) {
        std::printf("  TP<%d>: not possible: %s\n", tp, e.what());
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pdiff-plan: %s\n", e.what());
    return 2;
  }
}
