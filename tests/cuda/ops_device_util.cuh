// Upload/download helpers of the CUDA op tests' device side (ops_device_*.cu).
#pragma once

#include <cuda_runtime.h>

#include <type_traits>
#include <vector>

#include "ops_device.hpp"
#include "pdiff/core/dtype.hpp"
#include "pdiff/core/error.hpp"

namespace pdiff::test {
namespace {

void ok(cudaError_t e, const char* what) {
  PDIFF_CHECK(e == cudaSuccess, "ops test: ", what, ": ", cudaGetErrorString(e));
}

// Device buffer of n elements of T.
template <class T>
struct Buf {
  T* p = nullptr;
  std::size_t n = 0;
  explicit Buf(std::size_t count) : n(count) {
    if (n) ok(cudaMalloc(&p, n * sizeof(T)), "cudaMalloc");
  }
  Buf(Buf&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr, o.n = 0; }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() {
    if (p) cudaFree(p);
  }
};

template <class T>
std::vector<T> convert(const std::vector<float>& h) {
  std::vector<T> r(h.size());
  for (std::size_t i = 0; i < h.size(); ++i) r[i] = from_float<T>(h[i]);
  return r;
}

template <class T>
Buf<T> upload(const std::vector<float>& h) {
  Buf<T> b(h.size());
  const auto c = convert<T>(h);
  if (b.n) ok(cudaMemcpy(b.p, c.data(), b.n * sizeof(T), cudaMemcpyHostToDevice), "upload");
  return b;
}
template <class T>
Buf<T> upload_opt(const std::vector<float>* h) {
  return h ? upload<T>(*h) : Buf<T>(0);
}
Buf<std::uint8_t> upload_u8(const std::vector<std::uint8_t>* h) {
  Buf<std::uint8_t> b(h ? h->size() : 0);
  if (b.n) ok(cudaMemcpy(b.p, h->data(), b.n, cudaMemcpyHostToDevice), "upload mask");
  return b;
}

template <class T>
std::vector<float> download(const Buf<T>& b) {
  ok(cudaDeviceSynchronize(), "kernel");
  std::vector<T> h(b.n);
  if (b.n) ok(cudaMemcpy(h.data(), b.p, b.n * sizeof(T), cudaMemcpyDeviceToHost), "download");
  std::vector<float> r(b.n);
  for (std::size_t i = 0; i < b.n; ++i) r[i] = to_float(h[i]);
  return r;
}

template <class F>
std::vector<float> by_type(Dt dt, F&& f) {
  return dt == Dt::f32 ? f(float{}) : f(bf16{});
}

}  // namespace

}  // namespace pdiff::test
