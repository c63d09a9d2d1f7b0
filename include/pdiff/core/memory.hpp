// pdiff/core/memory.hpp — the memory trait each backend specialises.
//
// memory<B> provides, for raw bytes in B's address space:
//   static void* allocate(std::size_t bytes);
//   static void  deallocate(void* p, std::size_t bytes);
//   static void  zero(void* p, std::size_t bytes);
//   static void  to_host(void* host_dst, const void* src, std::size_t bytes);
//   static void  from_host(void* dst, const void* host_src, std::size_t bytes);
//   static void  copy(void* dst, const void* src, std::size_t bytes);   // within B
//   static void  copy_2d(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
//                        std::size_t width, std::size_t height);         // strided rows, within B
// The CPU one is in backend/cpu/memory.hpp, the CUDA one (stream-ordered caching pool) in
// backend/cuda/memory.hpp. Core only declares the primary template.
#pragma once

namespace pdiff {
template <class Backend> struct memory;
}  // namespace pdiff
