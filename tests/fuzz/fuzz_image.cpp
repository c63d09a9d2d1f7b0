// libFuzzer target: PNG/JPEG decoding as read_image does it (decode_image on the file's bytes, stb_image),
// then the conversion to the VAE's input tensor for small images. A pdiff::Error is the expected answer
// to a file stb_image refuses; a decoded image must have width·height·3 bytes; any other exception or a
// sanitizer report is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "pdiff/io/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    // 256 Kpixels: larger images only repeat the same code paths, more slowly (a progressive JPEG of a few
    // KiB can rescan a large image thousands of times); the limit itself is tested in tests/io/image_test.cpp
    const auto img = pdiff::decode_image(std::span(data, size), "fuzz.png", std::int64_t(1) << 18);
    if (img.width <= 0 || img.height <= 0 ||
        img.pixels.size() != std::size_t(img.width) * std::size_t(img.height) * 3) {
      std::fprintf(stderr, "property failed: a %dx%d image has %zu bytes\n", img.width, img.height, img.pixels.size());
      std::abort();
    }
    if (std::int64_t(img.width) * img.height <= 1 << 16) (void)pdiff::image_to_tensor(img);
  } catch (const pdiff::Error&) {
  }
  return 0;
}
