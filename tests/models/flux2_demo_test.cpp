// The trained demo model (demo/flux2-klein-shapes, made by tools/train_demo_model.py with diffusers and
// transformers): pdiff equals diffusers' Flux2KleinPipeline on the committed folder from the same initial
// latents, and the pictures mean what the prompts say. The meaning is read from the pixels, by the rule the
// training script's quality check uses: every pixel takes its nearest palette colour, the most frequent one
// that is not the background is the shape's colour, and the centre of mass of its pixels falls in one cell of
// a 3x3 grid ("top left" = column 0, row 0). Checked on serial, CFG<2> and TP<2> (thread ranks).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "../layers/harness.hpp"
#include "pdiff/models/flux2/pipeline.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path demo = fs::path(PDIFF_SOURCE_DIR) / "demo/flux2-klein-shapes";

struct Scene {
  std::string prompt, colour, background;
  int col, row;  // the 3x3 grid cell the caption names
};

// Prompts as the training captions read; the first three are diffusers' goldens (demo_goldens.safetensors), the
// last two are held-out combinations (colour, shape and place never drawn together in training).
const Scene scenes[] = {
    {"a large red circle at the top left on a blue background", "red", "blue", 0, 0},
    {"a large yellow star at the bottom right on a black background", "yellow", "black", 2, 2},
    {"a small green square in the centre on a white background", "green", "white", 1, 1},
    {"a large blue triangle in the centre on a gray background", "blue", "gray", 1, 1},
    {"a large orange star on the left on a white background", "orange", "white", 0, 1},
};

struct Verdict {
  std::string colour;  // "" when nothing but background is drawn
  int col = -1, row = -1;
};

// The training palette (demo.json's "palette": colour name → RGB), read once.
struct Palette {
  std::vector<std::string> names;
  std::vector<std::array<float, 3>> rgb;
};
const Palette& palette() {
  static const Palette p = [] {
    Palette o;
    const auto meta = JsonConfig::load(demo / "demo.json");  // kept alive while its items are read
    for (auto& [name, v] : meta.json().at("palette").items()) {
      o.names.push_back(name);
      o.rgb.push_back({v[0].get<float>(), v[1].get<float>(), v[2].get<float>()});
    }
    return o;
  }();
  return p;
}

// (1, 3, H, W) in [0, 1] → the shape's colour and grid cell (the rule of train_demo_model.py's classify).
Verdict read_picture(const Tensor<float>& image, const std::string& background) {
  const auto& [names, rgb] = palette();
  const std::int64_t H = image.size(2), W = image.size(3);
  std::vector<int> nearest(std::size_t(H * W)), count(names.size());
  for (std::int64_t y = 0; y < H; ++y)
    for (std::int64_t x = 0; x < W; ++x) {
      float best = 1e30f;
      int k = 0;
      for (std::size_t c = 0; c < rgb.size(); ++c) {
        float d = 0;
        for (int ch = 0; ch < 3; ++ch) {
          const float v = std::floor(std::clamp(image((ch * H + y) * W + x), 0.0f, 1.0f) * 255.0f + 0.5f);  // the PNG byte
          d += (v - rgb[c][std::size_t(ch)]) * (v - rgb[c][std::size_t(ch)]);
        }
        if (d < best) best = d, k = int(c);
      }
      nearest[std::size_t(y * W + x)] = k;
      if (names[std::size_t(k)] != background) ++count[std::size_t(k)];
    }
  const auto top = std::size_t(std::max_element(count.begin(), count.end()) - count.begin());
  if (count[top] < 8) return {};
  double sx = 0, sy = 0;
  for (std::int64_t i = 0; i < H * W; ++i)
    if (nearest[std::size_t(i)] == int(top)) sx += double(i % W), sy += double(i / W);
  const double cx = sx / count[top], cy = sy / count[top];
  return {names[top], std::min(int(3 * (cx + 0.5) / double(W)), 2), std::min(int(3 * (cy + 0.5) / double(H)), 2)};
}

// Every scene, one seed each, in one batch on layout L (the CLI's defaults for this model: 20 steps, CFG 4,
// prompts padded to 32 tokens as in training); rank 0's images.
template <class L>
std::vector<Flux2Result> draw_scenes() {
  std::vector<std::string> prompts;
  for (auto& s : scenes) prompts.push_back(s.prompt);
  const auto qs = flux2_requests({.width = 64, .height = 64, .steps = 20, .guidance = 4.0f, .seed = 100,
                                  .max_sequence_length = 32, .progress = false},
                                 prompts, 1);
  std::vector<Flux2Result> out;
  launch<L>({.mode = Launch::threads, .comm = {.timeout = std::chrono::milliseconds(30000)}}, [&](auto& rank) {
    const auto pipe = Flux2Pipeline<L>::load(rank, demo);
    auto r = pipe.generate(rank, qs, {.progress = false});
    if (rank.index == 0) out = std::move(r);
  });
  return out;
}
}  // namespace

TEST_CASE("the demo model: pdiff equals diffusers' Flux2KleinPipeline on the committed folder") {
  auto g = SafeTensors::open((demo / "demo_goldens.safetensors").string());
  using L = Layout<OnCpu>;
  launch<L>({.mode = Launch::threads}, [&](auto& rank) {
    const auto pipe = Flux2Pipeline<L>::load(rank, demo);
    for (int i = 0; i < 3; ++i) {
      CAPTURE(i);
      const auto init = g.read("latents_init_" + std::to_string(i));
      const auto r = pipe.generate(rank, {.prompt = scenes[i].prompt, .width = 64, .height = 64, .steps = 8,
                                          .guidance = 4.0f, .latents = &init, .max_sequence_length = 32,
                                          .progress = false});
      const auto want = g.read("image_" + std::to_string(i));
      CHECK(max_abs(r.image, want) <= 1e-4);
      MESSAGE("image ", i, ": max |pdiff - diffusers| ", max_abs(r.image, want));
      // diffusers' picture itself says what the prompt says
      const auto v = read_picture(want, scenes[i].background);
      CHECK(v.colour == scenes[i].colour);
      CHECK(v.col == scenes[i].col);
      CHECK(v.row == scenes[i].row);
    }
  });
}

TEST_CASE_TEMPLATE("the demo model draws what the prompt says: colour and place read from the pixels", L,
                   Layout<OnCpu>, Layout<CFG<2>, OnCpu>, Layout<TP<2>, OnCpu>) {
  const auto got = draw_scenes<L>();
  REQUIRE(got.size() == std::size(scenes));
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto& s = scenes[i];
    const auto v = read_picture(got[i].image, s.background);
    CAPTURE(s.prompt);
    CAPTURE(v.colour);
    CAPTURE(v.col);
    CAPTURE(v.row);
    CHECK(v.colour == s.colour);
    CHECK(v.col == s.col);
    CHECK(v.row == s.row);
  }
  if constexpr (L::world_size > 1) {  // the parallel layouts give serial's pictures
    static const auto serial = draw_scenes<Layout<OnCpu>>();
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(max_abs(got[i].image, serial[i].image) <= 1e-4);
  }
}

TEST_CASE("the picture reader is not fooled: a blank canvas has no shape, a drawn square is found where it is") {
  Tensor<float> img({1, 3, 64, 64});
  const float blue[] = {40 / 255.f, 80 / 255.f, 220 / 255.f}, red[] = {220 / 255.f, 40 / 255.f, 40 / 255.f};
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x) img((c * 64 + y) * 64 + x) = blue[c];
  CHECK(read_picture(img, "blue").colour.empty());
  for (int c = 0; c < 3; ++c)
    for (int y = 44; y < 60; ++y)
      for (int x = 4; x < 20; ++x) img((c * 64 + y) * 64 + x) = red[c];
  const auto v = read_picture(img, "blue");
  CHECK(v.colour == "red");
  CHECK(v.col == 0);
  CHECK(v.row == 2);
}
