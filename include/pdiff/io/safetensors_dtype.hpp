// pdiff/io/safetensors_dtype.hpp — the dtype names a safetensors header may use (exactly the
// reference's list, case-sensitive), their sizes in bits, and which of them pdiff converts.
//
// | dtype                                        | bits | read as f32 | read as i64 |
// |----------------------------------------------|------|-------------|-------------|
// | F64 F32 F16 BF16                             | 64..16 | yes       | no          |
// | F8_E4M3 (torch float8_e4m3fn), F8_E5M2       | 8    | yes, exact (no scale applied) | no |
// | I64 I32 I16 I8 U64 U32 U16 U8 BOOL           | 64..8 | yes        | yes (exact; U64 above 2^63 − 1 is an error) |
// | F8_E8M0 F8_E4M3FNUZ F8_E5M2FNUZ C64 F4 F6_E2M3 F6_E3M2 | 8, 8, 8, 64, 4, 6, 6 | no: valid files, a read is an error naming the dtype | no |
// Any other name (including byte-order prefixed ones such as ">f4") is not a safetensors dtype; the
// data is always little-endian, so pdiff compiles only for little-endian hosts.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

#include "pdiff/core/dtype.hpp"

namespace pdiff {

static_assert(std::endian::native == std::endian::little,
              "safetensors: the data is little-endian and pdiff reads it in place; a big-endian host is not supported");

enum class StDtype : std::uint8_t {
  F64, F32, F16, BF16, F8_E4M3, F8_E5M2,
  I64, I32, I16, I8, U64, U32, U16, U8, BOOL,
  F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, C64, F4, F6_E2M3, F6_E3M2,
  unknown
};

namespace detail {
struct StDtypeInfo {
  std::string_view name;
  StDtype code;
  int bits;
};
inline constexpr StDtypeInfo st_dtypes[] = {
    {"F64", StDtype::F64, 64},       {"F32", StDtype::F32, 32},
    {"F16", StDtype::F16, 16},       {"BF16", StDtype::BF16, 16},
    {"F8_E4M3", StDtype::F8_E4M3, 8}, {"F8_E5M2", StDtype::F8_E5M2, 8},
    {"I64", StDtype::I64, 64},       {"I32", StDtype::I32, 32},
    {"I16", StDtype::I16, 16},       {"I8", StDtype::I8, 8},
    {"U64", StDtype::U64, 64},       {"U32", StDtype::U32, 32},
    {"U16", StDtype::U16, 16},       {"U8", StDtype::U8, 8},
    {"BOOL", StDtype::BOOL, 8},      {"F8_E8M0", StDtype::F8_E8M0, 8},
    {"F8_E4M3FNUZ", StDtype::F8_E4M3FNUZ, 8}, {"F8_E5M2FNUZ", StDtype::F8_E5M2FNUZ, 8},
    {"C64", StDtype::C64, 64},       {"F4", StDtype::F4, 4},
    {"F6_E2M3", StDtype::F6_E2M3, 6}, {"F6_E3M2", StDtype::F6_E3M2, 6},
};
}  // namespace detail

inline StDtype st_dtype(std::string_view name) {
  for (auto& d : detail::st_dtypes)
    if (d.name == name) return d.code;
  return StDtype::unknown;
}
inline int st_dtype_bits(StDtype t) {
  for (auto& d : detail::st_dtypes)
    if (d.code == t) return d.bits;
  return 0;
}
inline bool st_is_integer(StDtype t) { return t >= StDtype::I64 && t <= StDtype::BOOL; }
inline bool st_reads_as_float(StDtype t) { return t <= StDtype::BOOL; }

namespace detail {
template <class V>
V st_load(const std::uint8_t* p, std::size_t i) {
  V v;
  std::memcpy(&v, p + i * sizeof(V), sizeof(V));
  return v;
}
// float8_e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa; no infinity, S.1111.111 is NaN.
inline float f8_e4m3_to_float(std::uint8_t b) {
  const int e = (b >> 3) & 0xf, m = b & 7;
  float v = e == 15 && m == 7 ? std::numeric_limits<float>::quiet_NaN()
            : e == 0          ? float(m) * 0x1p-9f  // subnormal: m/8 · 2^-6
                              : std::ldexp(1.0f + float(m) / 8.0f, e - 7);
  return b & 0x80 ? -v : v;
}
// float8_e5m2 is the top byte of an IEEE binary16.
inline float f8_e5m2_to_float(std::uint8_t b) { return f16::to_float(std::uint16_t(b) << 8); }
}  // namespace detail

// Element i of data stored as `t`, as float; t must satisfy st_reads_as_float.
inline float st_load_float(StDtype t, const std::uint8_t* p, std::size_t i) {
  using detail::st_load;
  switch (t) {
    case StDtype::F64: return float(st_load<double>(p, i));
    case StDtype::F32: return st_load<float>(p, i);
    case StDtype::F16: return f16::to_float(st_load<std::uint16_t>(p, i));
    case StDtype::BF16: return float(bf16::from_bits(st_load<std::uint16_t>(p, i)));
    case StDtype::F8_E4M3: return detail::f8_e4m3_to_float(p[i]);
    case StDtype::F8_E5M2: return detail::f8_e5m2_to_float(p[i]);
    case StDtype::I64: return float(st_load<std::int64_t>(p, i));
    case StDtype::I32: return float(st_load<std::int32_t>(p, i));
    case StDtype::I16: return float(st_load<std::int16_t>(p, i));
    case StDtype::I8: return float(st_load<std::int8_t>(p, i));
    case StDtype::U64: return float(st_load<std::uint64_t>(p, i));
    case StDtype::U32: return float(st_load<std::uint32_t>(p, i));
    case StDtype::U16: return float(st_load<std::uint16_t>(p, i));
    case StDtype::U8: return float(p[i]);
    case StDtype::BOOL: return float(p[i] != 0);
    default: return std::numeric_limits<float>::quiet_NaN();
  }
}
namespace detail {
// out[i] = f(element first + i of data stored as V), for i < n: one plain loop per dtype
template <class V, class F>
void st_convert_run(const std::uint8_t* p, std::size_t first, std::size_t n, float* out, F f) {
  const std::uint8_t* q = p + first * sizeof(V);
  for (std::size_t i = 0; i < n; ++i) out[i] = f(st_load<V>(q, i));
}
}  // namespace detail

// Elements [first, first + n) of data stored as `t`, as floats into out: the dtype is resolved once per
// run and each case is a plain loop the compiler vectorises (F32 is one memcpy, BF16 a shift), so loading
// runs at memory speed rather than through a switch per element.
inline void st_load_floats(StDtype t, const std::uint8_t* p, std::size_t first, std::size_t n, float* out) {
  using detail::st_convert_run;
  switch (t) {
    case StDtype::F32: std::memcpy(out, p + first * 4, n * 4); return;
    case StDtype::BF16: st_convert_run<std::uint16_t>(p, first, n, out, [](std::uint16_t b) { return float(bf16::from_bits(b)); }); return;
    case StDtype::F16: st_convert_run<std::uint16_t>(p, first, n, out, [](std::uint16_t b) { return f16::to_float(b); }); return;
    case StDtype::F64: st_convert_run<double>(p, first, n, out, [](double v) { return float(v); }); return;
    default:
      for (std::size_t i = 0; i < n; ++i) out[i] = st_load_float(t, p, first + i);
  }
}

// Element i of integer data stored as `t`, exactly; t must satisfy st_is_integer. U64 values above
// 2^63 − 1 come back negative: the caller reports them.
inline std::int64_t st_load_int(StDtype t, const std::uint8_t* p, std::size_t i) {
  using detail::st_load;
  switch (t) {
    case StDtype::I64: return st_load<std::int64_t>(p, i);
    case StDtype::I32: return st_load<std::int32_t>(p, i);
    case StDtype::I16: return st_load<std::int16_t>(p, i);
    case StDtype::I8: return st_load<std::int8_t>(p, i);
    case StDtype::U64: return std::int64_t(st_load<std::uint64_t>(p, i));
    case StDtype::U32: return st_load<std::uint32_t>(p, i);
    case StDtype::U16: return st_load<std::uint16_t>(p, i);
    case StDtype::U8: return p[i];
    case StDtype::BOOL: return p[i] != 0;
    default: return 0;
  }
}

}  // namespace pdiff
