// pdiff/io/resize.hpp — resize_bicubic(img, w, h): Pillow's Image.resize(..., BICUBIC) bit for bit
// (Pillow's Resample.c: separable two-pass convolution, horizontal first into an 8-bit image; the
// cubic kernel a = −0.5 with support 2 widened by the scale when shrinking (antialias); coefficients
// normalised per output pixel and rounded to fixed point with 22 fractional bits). Reference pipelines
// resize input images with Pillow (BAGEL's ImageTransform through torchvision on a PIL image), so
// pdiff's pixels equal theirs.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "pdiff/io/image.hpp"

namespace pdiff {

namespace detail {
struct ResampleCoeffs {
  int ksize = 0;
  std::vector<int> bounds;     // per output pixel: first input pixel, count
  std::vector<std::int32_t> k;  // per output pixel: ksize fixed-point weights
};

inline constexpr int kResamplePrecision = 32 - 8 - 2;

inline double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

inline ResampleCoeffs resample_coeffs(int in_size, int out_size) {
  constexpr double filter_support = 2.0;
  const double scale = double(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter_support * filterscale;
  ResampleCoeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.bounds.resize(std::size_t(out_size) * 2);
  c.k.assign(std::size_t(out_size) * std::size_t(c.ksize), 0);
  std::vector<double> w(std::size_t(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[std::size_t(x)] = bicubic_filter((x + xmin - center + 0.5) * ss);
      ww += w[std::size_t(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[std::size_t(x)] / ww : w[std::size_t(x)];
      c.k[std::size_t(xx) * std::size_t(c.ksize) + std::size_t(x)] =
          std::int32_t(v < 0 ? -0.5 + v * (1 << kResamplePrecision) : 0.5 + v * (1 << kResamplePrecision));
    }
    c.bounds[std::size_t(xx) * 2] = xmin;
    c.bounds[std::size_t(xx) * 2 + 1] = xmax;
  }
  return c;
}

inline std::uint8_t clip8(std::int64_t in) {
  if (in >= (std::int64_t(1) << kResamplePrecision << 8)) return 255;
  if (in <= 0) return 0;
  return std::uint8_t(in >> kResamplePrecision);
}
}  // namespace detail

namespace detail {
// One pass along x (rows of `in`) or y (columns), to `out_size`; rows [first, first + count) of y are
// computed from the source when resizing x (the rows the vertical pass reads).
inline Image resample_pass(const Image& in, bool along_x, int out_size, int first = 0, int count = -1) {
  const int C = in.channels, in_size = along_x ? in.width : in.height;
  const auto k = resample_coeffs(in_size, out_size);
  Image out;
  out.channels = C;
  out.width = along_x ? out_size : in.width;
  out.height = along_x ? (count < 0 ? in.height : count) : out_size;
  out.pixels.assign(std::size_t(out.width) * out.height * C, 0);
  auto at = [&](int x, int y, int c) { return std::int64_t(in.pixels[(std::size_t(y) * in.width + x) * C + c]); };
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      const int o = along_x ? x : y;
      const int lo = k.bounds[std::size_t(o) * 2], n = k.bounds[std::size_t(o) * 2 + 1];
      const std::int32_t* w = &k.k[std::size_t(o) * std::size_t(k.ksize)];
      for (int c = 0; c < C; ++c) {
        std::int64_t ss = std::int64_t(1) << (kResamplePrecision - 1);
        for (int j = 0; j < n; ++j) ss += (along_x ? at(lo + j, y + first, c) : at(x, lo + j, c)) * w[j];
        out.pixels[(std::size_t(y) * out.width + x) * C + c] = clip8(ss);
      }
    }
  return out;
}
}  // namespace detail

// Pillow resizes in two 8-bit passes, horizontal first, except that it runs the vertical one first when
// the width grows and the height shrinks (the smaller intermediate image): found by comparing both
// orders with Pillow 13 on every combination (tests/io/resize_test.cpp).
inline Image resize_bicubic(const Image& in, int width, int height) {
  PDIFF_CHECK(width > 0 && height > 0, "resize: target size ", width, "x", height, " must be positive");
  PDIFF_CHECK(in.width > 0 && in.height > 0 && in.pixels.size() == std::size_t(in.width) * in.height * in.channels,
              "resize: the image holds ", in.pixels.size(), " bytes, not ", in.width, "x", in.height, "x", in.channels);
  const bool horizontal = width != in.width, vertical = height != in.height;
  if (!horizontal && !vertical) return in;  // Pillow returns a copy
  if (!vertical) return detail::resample_pass(in, true, width);
  if (!horizontal) return detail::resample_pass(in, false, height);
  if (width > in.width && height < in.height)
    return detail::resample_pass(detail::resample_pass(in, false, height), true, width);
  // horizontal first, over the source rows the vertical pass reads only (values are the same)
  const auto v = detail::resample_coeffs(in.height, height);
  const int first = v.bounds[0], last = v.bounds[std::size_t(height) * 2 - 2] + v.bounds[std::size_t(height) * 2 - 1];
  const Image tmp = detail::resample_pass(in, true, width, first, last - first);
  if (first == 0 && last == in.height) return detail::resample_pass(tmp, false, height);
  Image full;  // place tmp's rows at their source rows (the others are never read)
  full.channels = in.channels, full.width = width, full.height = in.height;
  full.pixels.assign(std::size_t(width) * in.height * in.channels, 0);
  std::copy(tmp.pixels.begin(), tmp.pixels.end(), full.pixels.begin() + std::ptrdiff_t(first) * width * in.channels);
  return detail::resample_pass(full, false, height);
}

}  // namespace pdiff
