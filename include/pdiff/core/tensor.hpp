// pdiff/core/tensor.hpp — Tensor<T, Backend>: owning, contiguous, row-major, rank 0..5.
//
// | operation              | result                                           |
// |------------------------|--------------------------------------------------|
// | Tensor(shape)          | new storage, uninitialised                       |
// | zeros(shape)           | new storage, zero-filled                         |
// | view(shape)            | same storage, same element count, new shape      |
// | slice(begin, end)      | same storage, rows [begin, end) of dimension 0   |
// | operator[](i)          | same storage, row i of dimension 0, rank − 1     |
// | clone()                | new storage, copied                              |
// Storage is shared by views (reference counted), so a view keeps its parent's memory alive.
// Every tensor is contiguous: slicing along an inner dimension is a copy (see ops).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

#include "pdiff/core/backend_tag.hpp"
#include "pdiff/core/dtype.hpp"
#include "pdiff/core/error.hpp"
#include "pdiff/core/memory.hpp"
#include "pdiff/core/shape.hpp"

namespace pdiff {

template <class T, class Backend = OnCpu>
class Tensor {
  static_assert(is_backend_v<Backend>, "Tensor<T, Backend>: Backend must be OnCpu or OnCuda");
  static_assert(std::is_trivially_copyable_v<T>, "Tensor<T, Backend>: T must be trivially copyable");

 public:
  using value_type = T;
  using backend = Backend;

  Tensor() = default;
  explicit Tensor(Shape shape) : shape_(shape) {
    PDIFF_CHECK(std::uint64_t(shape.numel()) <= SIZE_MAX / sizeof(T), "Tensor ", shape, ": ", shape.numel(),
                " elements of ", sizeof(T), " bytes overflow the address space");
    std::size_t bytes = std::size_t(shape.numel()) * sizeof(T);
    if (bytes == 0) return;
    void* p = memory<Backend>::allocate(bytes);
    storage_ = std::shared_ptr<void>(p, [bytes](void* q) { memory<Backend>::deallocate(q, bytes); });
    data_ = static_cast<T*>(p);
  }
  static Tensor zeros(Shape shape) {
    Tensor t(shape);
    if (t.data_) memory<Backend>::zero(t.data_, t.bytes());
    return t;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank; }
  std::int64_t numel() const { return shape_.numel(); }
  std::int64_t size(int d) const { return shape_[d]; }
  std::size_t bytes() const { return std::size_t(numel()) * sizeof(T); }
  // True for a default-constructed tensor and for one with zero elements (no storage).
  bool empty() const { return data_ == nullptr; }
  // True when another tensor (a view or its parent) shares this storage.
  bool shares_storage() const { return storage_.use_count() > 1; }

  // Host access; only for CPU tensors.
  std::span<T> span() requires std::is_same_v<Backend, OnCpu> { return {data_, std::size_t(numel())}; }
  std::span<const T> span() const requires std::is_same_v<Backend, OnCpu> {
    return {data_, std::size_t(numel())};
  }
  T& operator()(std::int64_t i) requires std::is_same_v<Backend, OnCpu> { return data_[i]; }
  const T& operator()(std::int64_t i) const requires std::is_same_v<Backend, OnCpu> { return data_[i]; }

  // Reinterprets the elements with a new shape of the same element count.
  Tensor view(Shape s) const {
    PDIFF_CHECK(s.numel() == numel(), "Tensor::view: numel of ", shape_, " is ", numel(), ", of ", s, " is ",
                s.numel(), "; a view keeps the element count");
    Tensor t = *this;
    t.shape_ = s;
    return t;
  }
  // Rows [begin, end) of dimension 0, sharing storage.
  Tensor slice(std::int64_t begin, std::int64_t end) const {
    PDIFF_CHECK(rank() >= 1, "Tensor::slice: a rank-0 tensor has no rows");
    PDIFF_CHECK(0 <= begin && begin <= end && end <= shape_[0], "Tensor::slice: rows [", begin, ", ", end,
                ") out of range for shape ", shape_);
    Tensor t = *this;
    t.shape_[0] = end - begin;
    t.data_ = data_ + begin * shape_.stride(0);
    return t;
  }
  // Row i of dimension 0 with that dimension dropped.
  Tensor operator[](std::int64_t i) const {
    Tensor t = slice(i, i + 1);
    Shape s;
    for (int k = 1; k < rank(); ++k) s.dims[s.rank++] = shape_[k];
    t.shape_ = s;
    return t;
  }
  Tensor clone() const {
    Tensor t(shape_);
    if (!empty()) memory<Backend>::copy(t.data_, data_, bytes());
    return t;
  }

 private:
  std::shared_ptr<void> storage_;
  T* data_ = nullptr;
  Shape shape_;
};

// Copies between backends (host ↔ device) or within one; shapes must hold the same element count.
template <class T, class B1, class B2>
void copy(Tensor<T, B1>& dst, const Tensor<T, B2>& src) {
  PDIFF_CHECK(dst.numel() == src.numel(), "copy: destination ", dst.shape(), " and source ", src.shape(),
              " differ in element count");
  if (src.empty()) return;
  if constexpr (std::is_same_v<B1, B2>) {
    memory<B1>::copy(dst.data(), src.data(), src.bytes());
  } else if constexpr (std::is_same_v<B2, OnCpu>) {
    memory<B1>::from_host(dst.data(), src.data(), src.bytes());
  } else {
    static_assert(std::is_same_v<B1, OnCpu>, "copy: one side must be the CPU");
    memory<B2>::to_host(dst.data(), src.data(), src.bytes());
  }
}

// A copy of `src` on backend B.
template <class B, class T, class B0>
Tensor<T, B> to(const Tensor<T, B0>& src) {
  Tensor<T, B> t(src.shape());
  copy(t, src);
  return t;
}

}  // namespace pdiff
