// libFuzzer target: a config.json as every model family reads it, then what each caller computes
// from it right away. The input is the file's text; each reader gets it in turn:
//   Flux2Config (transformer/)       → inner_dim, mlp_hidden, the parameter plan for TP 1 and 2, activations
//   AutoencoderKLConfig (vae/)       → scale, tile sizes, decoder channels
//   MistralConfig (text_encoder/, mistral3 / mistral / qwen3) → the parameter plan (pdiff-plan) for TP 1 and 2
//   FlowMatchEulerScheduler (scheduler/) → a 4-step schedule
// A pdiff::Error is the expected answer to a config a reader refuses; any other exception or a
// sanitizer report (an overflowing size product is undefined behaviour) is a finding.
#include <cstdint>
#include <string_view>

#include "pdiff/models/autoencoder_kl/config.hpp"
#include "pdiff/models/flux2/plan.hpp"
#include "pdiff/models/mistral/plan.hpp"
#include "pdiff/sched/flow_match.hpp"

namespace {
volatile std::int64_t sink;  // keeps the computed sizes alive at -O1

template <class F>
void refused_is_fine(F&& f) {
  try {
    f();
  } catch (const pdiff::Error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1 << 16) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  pdiff::JsonConfig c;
  try {
    c = pdiff::JsonConfig::parse(text, "fuzz/config.json");
  } catch (const pdiff::Error&) {
    return 0;
  }
  refused_is_fine([&] {
    const auto f = pdiff::Flux2Config::from(c);
    sink = f.inner_dim() + f.mlp_hidden();
    for (int tp : {1, 2}) refused_is_fine([&] { sink = pdiff::flux2_param_plan(f, tp).bytes(2); });
    sink = pdiff::flux2_activation_bytes(f, 1024, 1024, 512, 1, 1, 2);
  });
  refused_is_fine([&] {
    const auto v = pdiff::AutoencoderKLConfig::from(c);
    sink = v.scale() + v.tile_sample() + v.tile_latent() + std::int64_t(v.decoder_channels().size());
  });
  refused_is_fine([&] {
    const auto m = pdiff::MistralConfig::from(c);
    for (int tp : {1, 2}) refused_is_fine([&] { sink = pdiff::mistral_param_plan(m, tp, true).bytes(2); });
  });
  refused_is_fine([&] {
    auto s = pdiff::FlowMatchEulerScheduler::from(c);
    s.set_timesteps(4, pdiff::flux2_empirical_mu(4096, 4));
    sink = std::int64_t(s.sigmas.size());
  });
  return 0;
}
