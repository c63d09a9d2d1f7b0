// resize_bicubic against Pillow (tests/golden/pillow_resize, made by tools/make_pillow_resize_goldens.py):
// shrinking and enlarging each side, both passes or one, equal Pillow's bytes exactly.
#include <doctest/doctest.h>

#include <filesystem>

#include "pdiff/io/resize.hpp"

using namespace pdiff;
namespace fs = std::filesystem;

TEST_CASE("resize_bicubic equals Pillow's Image.resize(BICUBIC) byte for byte") {
  const fs::path dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/pillow_resize";
  const auto in = read_image((dir / "input.png").string());
  REQUIRE(in.width == 40);
  for (auto [w, h] : {std::pair{17, 45}, {56, 23}, {40, 12}, {97, 30}, {13, 7}, {120, 90}, {41, 10}, {80, 31}, {39, 60}}) {
    const auto want = read_image((dir / ("out_" + std::to_string(w) + "x" + std::to_string(h) + ".png")).string());
    const auto got = resize_bicubic(in, w, h);
    REQUIRE(got.width == w);
    REQUIRE(got.height == h);
    int wrong = 0;
    for (std::size_t i = 0; i < got.pixels.size(); ++i) wrong += got.pixels[i] != want.pixels[i];
    CHECK_MESSAGE(wrong == 0, w, "x", h);
  }
  CHECK(resize_bicubic(in, 40, 30).pixels == in.pixels);
  CHECK_THROWS_WITH_AS(resize_bicubic(in, 0, 5), doctest::Contains("must be positive"), Error);
}
