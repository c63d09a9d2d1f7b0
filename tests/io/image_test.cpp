// Image reading as an attacker would try it (issue 12's image fuzzing): decode_image/read_image give
// the pixels of a good PNG, and a pdiff::Error naming the source for anything else — a JPEG whose
// Huffman table counts more than 256 codes (overran the table in the Debian stb_image 2.27; caught by
// fuzz_image under ASan/UBSan, so this test runs in scripts/sanitize.sh too), a format other than
// PNG/JPEG, a truncated file, a missing file. A PNG whose first IDAT chunk is empty (legal) decodes;
// stb_image 2.30 passed a null buffer to memcpy for it (UBSan, fuzz_image).
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pdiff/io/image.hpp"

using namespace pdiff;
using doctest::Contains;

namespace {
std::vector<std::uint8_t> file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
// SOI, then one DHT segment: class 0 table 0 with 17 codes of each length 1..16 (272 > 256 symbols).
std::vector<std::uint8_t> jpeg_with_oversized_huffman_table() {
  const int codes = 16 * 17, length = 2 + 17 + codes;
  std::vector<std::uint8_t> b = {0xFF, 0xD8, 0xFF, 0xC4, std::uint8_t(length >> 8), std::uint8_t(length & 0xFF), 0x00};
  for (int i = 0; i < 16; ++i) b.push_back(17);
  for (int i = 0; i < codes; ++i) b.push_back(std::uint8_t(i));
  b.insert(b.end(), {0xFF, 0xD9});
  return b;
}
}  // namespace

TEST_CASE("read_image: a PNG written by write_png reads back pixel for pixel") {
  Image img;
  img.width = 5;
  img.height = 3;
  for (int i = 0; i < 5 * 3 * 3; ++i) img.pixels.push_back(std::uint8_t(i * 17));
  const auto path = std::filesystem::temp_directory_path() / "pdiff_image_test.png";
  write_png(path.string(), img);
  const Image back = read_image(path.string());
  CHECK(back.width == 5);
  CHECK(back.height == 3);
  CHECK(back.pixels == img.pixels);
  CHECK(decode_image(file_bytes(path), "mem").pixels == img.pixels);
  std::filesystem::remove(path);
}

TEST_CASE("decode_image: a PNG whose first IDAT chunk is empty decodes like the same PNG without it") {
  Image img;
  img.width = 4;
  img.height = 2;
  for (int i = 0; i < 4 * 2 * 3; ++i) img.pixels.push_back(std::uint8_t(255 - i * 9));
  const auto path = std::filesystem::temp_directory_path() / "pdiff_image_test_idat.png";
  write_png(path.string(), img);
  auto bytes = file_bytes(path);
  std::filesystem::remove(path);
  // after the signature (8 bytes) and IHDR (4 length + 4 type + 13 data + 4 CRC): length 0, "IDAT", CRC
  const std::vector<std::uint8_t> empty_idat = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xAF, 0x06, 0x1E};
  bytes.insert(bytes.begin() + 8 + 25, empty_idat.begin(), empty_idat.end());
  CHECK(decode_image(bytes, "empty_idat.png").pixels == img.pixels);
}

TEST_CASE("decode_image: a JPEG Huffman table of more than 256 codes is an error, not an overrun") {
  CHECK_THROWS_WITH_AS(decode_image(jpeg_with_oversized_huffman_table(), "dht.jpg"),
                       Contains("read_image: cannot read 'dht.jpg': bad DHT header"), Error);
}

TEST_CASE("decode_image: only PNG and JPEG; truncated or empty input is an error naming the source") {
  // a valid 1x1 24-bit BMP: stb_image reads BMP, pdiff's build of it does not
  const std::vector<std::uint8_t> bmp = {'B', 'M', 58, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0, 1, 0, 0, 0, 1, 0,
                                         0, 0, 1, 0, 24, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 255, 0, 0, 0};
  CHECK_THROWS_WITH_AS(decode_image(bmp, "a.bmp"), Contains("read_image: cannot read 'a.bmp'"), Error);
  CHECK_THROWS_WITH_AS(decode_image({}, "empty"), Contains("read_image: cannot read 'empty'"), Error);
  const std::vector<std::uint8_t> png_head = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H'};
  CHECK_THROWS_WITH_AS(decode_image(png_head, "cut.png"), Contains("read_image: cannot read 'cut.png'"), Error);
  CHECK_THROWS_WITH_AS(read_image("/nonexistent/pdiff.png"),
                       Contains("read_image: cannot read '/nonexistent/pdiff.png': cannot open the file"), Error);
}

TEST_CASE("decode_image: an image larger than the pixel limit is refused from its header, before decoding") {
  Image img;
  img.width = 2;
  img.height = 2;
  img.pixels.assign(2 * 2 * 3, 200);
  const auto path = std::filesystem::temp_directory_path() / "pdiff_image_limit_test.png";
  write_png(path.string(), img);
  auto bytes = file_bytes(path);
  std::filesystem::remove(path);
  CHECK(decode_image(bytes, "small.png", 4).pixels == img.pixels);
  CHECK_THROWS_WITH_AS(decode_image(bytes, "small.png", 3),
                       Contains("read_image: cannot read 'small.png': a 2x2 image is more than the 3 pixels"), Error);
  // the same few bytes declaring 16384 x 16384 in IHDR (width at byte 16, height at byte 20, big-endian):
  // stb_image would allocate and fill 768 MiB from them
  for (int at : {16, 20}) {
    bytes[at + 0] = 0, bytes[at + 1] = 0, bytes[at + 2] = 0x40, bytes[at + 3] = 0;
  }
  CHECK_THROWS_WITH_AS(decode_image(bytes, "huge.png"),
                       Contains("a 16384x16384 image is more than the 134217728 pixels pdiff reads"), Error);
}
