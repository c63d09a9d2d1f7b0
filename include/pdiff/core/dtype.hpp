// pdiff/core/dtype.hpp — element types: f32, bf16, f16 (+ integer types for ids/masks).
//
// | type   | storage | conversion from float            |
// |--------|---------|----------------------------------|
// | float  | 4 bytes | identity                         |
// | bf16   | 2 bytes | round to nearest even, NaN kept  |
// | f16    | 2 bytes | round to nearest even, subnormals, overflow → inf |
//
// bf16/f16 are plain 2-byte structs with the same bit layout as __nv_bfloat16/__half, so CUDA code
// may reinterpret their arrays; conversions are PDIFF_HD and bit-exact on host and device.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "pdiff/core/hd.hpp"

namespace pdiff {

namespace detail {
PDIFF_HD std::uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
PDIFF_HD float bits_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}
}  // namespace detail

// bfloat16: the top 16 bits of an IEEE float.
struct bf16 {
  std::uint16_t bits = 0;
  bf16() = default;
  PDIFF_HD explicit bf16(float f) : bits(from_float(f)) {}
  PDIFF_HD explicit operator float() const { return detail::bits_float(std::uint32_t(bits) << 16); }
  PDIFF_HD static std::uint16_t from_float(float f) {
    std::uint32_t u = detail::float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                             // nearest even
    return std::uint16_t(u >> 16);
  }
  static bf16 from_bits(std::uint16_t b) { bf16 r; r.bits = b; return r; }
};

// IEEE binary16.
struct f16 {
  std::uint16_t bits = 0;
  f16() = default;
  PDIFF_HD explicit f16(float f) : bits(from_float(f)) {}
  PDIFF_HD explicit operator float() const { return to_float(bits); }
  static f16 from_bits(std::uint16_t b) { f16 r; r.bits = b; return r; }

  PDIFF_HD static std::uint16_t from_float(float f) {
    std::uint32_t u = detail::float_bits(f);
    std::uint32_t sign = (u >> 16) & 0x8000u;
    std::uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return std::uint16_t(sign | 0x7e00u);  // NaN
    if (a >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u); // rounds to >= 65520 → inf
    if (a >= 0x38800000u) {                                     // normal half
      std::uint32_t r = a - 0x38000000u;                         // rebias exponent 127 → 15
      r += 0xfffu + ((r >> 13) & 1u);
      return std::uint16_t(sign | (r >> 13));
    }
    if (a < 0x33000000u) return std::uint16_t(sign);            // < 2^-25 → ±0
    // subnormal half: value = m · 2^-24 with the implicit bit made explicit
    std::uint32_t e = a >> 23;
    std::uint32_t m = (a & 0x7fffffu) | 0x800000u;
    std::uint32_t shift = 126u - e;
    // a = m · 2^(e-150); half units of 2^-24 → m · 2^(e-126); shift right by (126 - e)
    std::uint32_t q = m >> shift;
    std::uint32_t rem = m & ((1u << shift) - 1u);
    std::uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return std::uint16_t(sign | q);
  }
  PDIFF_HD static float to_float(std::uint16_t h) {
    std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    std::uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return detail::bits_float(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
      if (m == 0) return detail::bits_float(sign);
      // subnormal: m · 2^-24, exact in float
      float v = float(m) * 5.9604644775390625e-08f;
      return sign ? -v : v;
    }
    return detail::bits_float(sign | ((e + 112u) << 23) | (m << 13));
  }
};

enum class DType : std::uint8_t { f32, f16, bf16, f64, i8, u8, i16, i32, i64, boolean };

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<std::int8_t> { static constexpr DType value = DType::i8; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<std::int16_t> { static constexpr DType value = DType::i16; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f64: case DType::i64: return 8;
    case DType::f32: case DType::i32: return 4;
    case DType::f16: case DType::bf16: case DType::i16: return 2;
    default: return 1;
  }
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::f64: return "f64";
    case DType::i8: return "i8";
    case DType::u8: return "u8";
    case DType::i16: return "i16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::boolean: return "bool";
  }
  return "?";
}

// Converts any supported element to float / from float (the compute type of the CPU backend).
template <class T> PDIFF_HD float to_float(T v) { return static_cast<float>(v); }
template <class T> PDIFF_HD T from_float(float v) { return static_cast<T>(v); }
template <> PDIFF_HD bf16 from_float<bf16>(float v) { return bf16(v); }
template <> PDIFF_HD f16 from_float<f16>(float v) { return f16(v); }

}  // namespace pdiff
