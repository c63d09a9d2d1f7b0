// pdiff/io/image.hpp — PNG/JPEG reading and PNG writing (stb_image, compiled static per TU so the
// library stays header-only), and the conversion between images and float tensors.
//
// | function                         | result                                                     |
// |----------------------------------|------------------------------------------------------------|
// | read_image(path)                 | Image{width, height, channels = 3, RGB bytes}; a clear error naming the file otherwise |
// | decode_image(bytes, what)        | the same from a PNG/JPEG already in memory (read_image reads the file, then calls it) |
// | kMaxImagePixels                  | the largest width·height read_image/decode_image accept (an optional argument lowers it) |
// | write_png(path, image)           | writes the file; a clear error when it cannot              |
// | image_to_tensor(img)             | (1, 3, H, W) floats in [−1, 1] (the VAE's input range)     |
// | tensor_to_image(x)               | (1, C, H, W) in [−1, 1] → bytes, clamped (C = 1 or 3)      |
// The decoder is stb_image 2.30 kept in io/detail/ (upstream nothings/stb 013ac3b, 2024-05-31), PNG and
// JPEG only: the Debian snapshot (2.27) overruns a Huffman table on a JPEG whose DHT segment counts more
// than 256 codes, and misses later fixes found by fuzzing (tests/fuzz/fuzz_image.cpp). One local change,
// marked "pdiff:" in stbi__getn: a read of 0 bytes returns before memcpy (an empty first IDAT chunk passed
// a null buffer). Only the writer, which sees pdiff's own pixels, comes from the system's stb.
#pragma once

#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/tensor.hpp"

#if !defined(PDIFF_STB_DEFINED)
#define PDIFF_STB_DEFINED
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include "pdiff/io/detail/stb_image.h"
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

namespace pdiff {

struct Image {
  int width = 0, height = 0, channels = 3;
  std::vector<std::uint8_t> pixels;  // row-major, interleaved channels
};

// 128 Mpixels (e.g. 16384 x 8192, 384 MiB of RGB bytes): far above any model's resolution. The size is read
// from the header before decoding, because a few KiB of PNG or JPEG can declare an image of gigabytes that
// the decoder would then fill (fuzzing found such a file taking 24 s).
inline constexpr std::int64_t kMaxImagePixels = std::int64_t(1) << 27;

// `what` names the source in errors (a file name for read_image).
inline Image decode_image(std::span<const std::uint8_t> bytes, const std::string& what,
                          std::int64_t max_pixels = kMaxImagePixels) {
  Image img;
  int c = 0;
  // stb takes an int length: a longer buffer would be read as a shorter (or negative) one
  PDIFF_CHECK(bytes.size() <= std::size_t(std::numeric_limits<int>::max()), "read_image: cannot read '", what, "': ",
              bytes.size(), " bytes is more than stb_image reads (2 GiB)");
  const auto check_size = [&] {
    PDIFF_CHECK(std::int64_t(img.width) * img.height <= max_pixels, "read_image: cannot read '", what, "': a ",
                img.width, "x", img.height, " image is more than the ", max_pixels, " pixels pdiff reads");
  };
  // a header stbi_info cannot read goes to the decoder anyway, whose failure reason is the precise one
  // ("bad DHT header" where stbi_info, trying every format in turn, ends with "unknown image type")
  if (stbi_info_from_memory(bytes.data(), int(bytes.size()), &img.width, &img.height, &c)) check_size();
  stbi_uc* p = stbi_load_from_memory(bytes.data(), int(bytes.size()), &img.width, &img.height, &c, 3);
  PDIFF_CHECK(p, "read_image: cannot read '", what, "': ", stbi_failure_reason() ? stbi_failure_reason() : "unknown");
  try {
    check_size();
  } catch (...) {
    stbi_image_free(p);
    throw;
  }
  img.pixels.assign(p, p + std::size_t(img.width) * std::size_t(img.height) * 3);
  stbi_image_free(p);
  return img;
}

inline Image read_image(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  PDIFF_CHECK(in, "read_image: cannot read '", path, "': cannot open the file");
  const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  PDIFF_CHECK(!in.bad(), "read_image: cannot read '", path, "': read error");
  return decode_image(bytes, path);
}

inline void write_png(const std::string& path, const Image& img) {
  PDIFF_CHECK(img.pixels.size() == std::size_t(img.width) * std::size_t(img.height) * std::size_t(img.channels),
              "write_png: ", img.width, "x", img.height, "x", img.channels, " image has ", img.pixels.size(), " bytes");
  int ok = stbi_write_png(path.c_str(), img.width, img.height, img.channels, img.pixels.data(),
                          img.width * img.channels);
  PDIFF_CHECK(ok, "write_png: cannot write '", path, "'");
}

inline Tensor<float, OnCpu> image_to_tensor(const Image& img) {
  Tensor<float, OnCpu> t({1, 3, img.height, img.width});
  const std::int64_t hw = std::int64_t(img.height) * img.width;
  for (std::int64_t i = 0; i < hw; ++i)
    for (int c = 0; c < 3; ++c) t(c * hw + i) = float(img.pixels[std::size_t(i * 3 + c)]) / 127.5f - 1.0f;
  return t;
}

inline Image tensor_to_image(const Tensor<float, OnCpu>& x) {
  PDIFF_CHECK(x.rank() == 4 && x.size(0) == 1 && (x.size(1) == 3 || x.size(1) == 1), "tensor_to_image: x",
              x.shape(), " must be (1, 3 or 1, H, W)");
  Image img;
  img.channels = int(x.size(1));
  img.height = int(x.size(2));
  img.width = int(x.size(3));
  const std::int64_t hw = std::int64_t(img.height) * img.width;
  img.pixels.resize(std::size_t(hw * img.channels));
  for (std::int64_t i = 0; i < hw; ++i)
    for (int c = 0; c < img.channels; ++c) {
      float v = (x(c * hw + i) + 1.0f) * 127.5f;
      v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
      img.pixels[std::size_t(i * img.channels + c)] = std::uint8_t(v + 0.5f);
    }
  return img;
}

}  // namespace pdiff
