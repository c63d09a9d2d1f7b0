// tools/kernprof/kernprof.cpp — a GPU timeline recorder for any CUDA program, for machines without Nsight:
// a CUPTI activity collector loaded by the CUDA driver (CUDA_INJECTION64_PATH) that writes one CSV line per
// kernel, memcpy and memset the program ran: kind, start_ns, end_ns, stream, bytes, name (mangled; the
// summary script demangles). scripts/gpu-check.sh builds it and runs the FLUX.2-dev step benchmark under it
// when PDIFF_GPU_KERNPROF names a benchmark; tools/kernprof/summarize.py turns the CSV into per-kernel time
// per step and the device's idle time between kernels.
//
//   g++ -O2 -shared -fPIC -I$CUDA/include tools/kernprof/kernprof.cpp -o libkernprof.so -L$CUPTI -lcupti
//   KERNPROF_OUT=trace.csv CUDA_INJECTION64_PATH=$PWD/libkernprof.so ./program
//
// Records are collected in CUPTI's buffers and written when the program exits (atexit flushes them); the
// overhead is CUPTI's activity tracing (a few per cent on launch-bound code, nothing on the device side).
#include <cupti.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace {

// The newest kernel record of the CUPTI at hand (CUDA 13's CUPTI has Kernel10, CUDA 12's Kernel9).
#if CUPTI_API_VERSION >= 130000
using KernelRecord = CUpti_ActivityKernel10;
#else
using KernelRecord = CUpti_ActivityKernel9;
#endif

std::FILE* out = nullptr;
std::mutex mu;

void check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* s = nullptr;
  cuptiGetResultString(r, &s);
  std::fprintf(stderr, "kernprof: %s failed: %s\n", what, s ? s : "?");
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  constexpr size_t bytes = 8u << 20;
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, bytes));
  *size = *buffer ? bytes : 0;
  *max_records = 0;
}

void write_name(const char* name) {
  // names are C++ symbols; a comma or quote inside would break the CSV, so the field is quoted
  std::fputc('"', out);
  for (const char* p = name ? name : "?"; *p; ++p) std::fputc(*p == '"' ? '\'' : *p, out);
  std::fputs("\"\n", out);
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::lock_guard lk(mu);
  CUpti_Activity* rec = nullptr;
  while (out && cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    switch (rec->kind) {
      case CUPTI_ACTIVITY_KIND_KERNEL:
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        const auto* k = reinterpret_cast<const KernelRecord*>(rec);
        std::fprintf(out, "kernel,%llu,%llu,%u,0,", (unsigned long long)k->start, (unsigned long long)k->end,
                     k->streamId);
        write_name(k->name);
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(rec);
        std::fprintf(out, "memcpy,%llu,%llu,%u,%llu,", (unsigned long long)m->start, (unsigned long long)m->end,
                     m->streamId, (unsigned long long)m->bytes);
        static const char* kinds[] = {"unknown", "HtoD", "DtoH", "HtoA", "AtoH", "AtoA", "AtoD", "DtoA", "DtoD", "HtoH", "PtoP"};
        write_name(m->copyKind < sizeof(kinds) / sizeof(kinds[0]) ? kinds[m->copyKind] : "other");
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMSET: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(rec);
        std::fprintf(out, "memset,%llu,%llu,%u,%llu,", (unsigned long long)m->start, (unsigned long long)m->end,
                     m->streamId, (unsigned long long)m->bytes);
        write_name("memset");
        break;
      }
      default:
        break;
    }
  }
  size_t dropped = 0;
  if (cuptiActivityGetNumDroppedRecords(nullptr, 0, &dropped) == CUPTI_SUCCESS && dropped)
    std::fprintf(stderr, "kernprof: %zu records dropped\n", dropped);
  std::free(buffer);
}

void finish() {
  check(cuptiActivityFlushAll(1), "cuptiActivityFlushAll");
  std::lock_guard lk(mu);
  if (out) {
    std::fclose(out);
    out = nullptr;
  }
}

}  // namespace

// Called by the CUDA driver when CUDA_INJECTION64_PATH names this library (before the program's first
// CUDA call returns).
extern "C" int InitializeInjection() {
  const char* path = std::getenv("KERNPROF_OUT");
  out = std::fopen(path && *path ? path : "kernprof.csv", "w");
  if (!out) {
    std::perror("kernprof: cannot open KERNPROF_OUT");
    return 1;
  }
  std::fputs("kind,start_ns,end_ns,stream,bytes,name\n", out);
  check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernels");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "enable memcpy");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET), "enable memset");
  std::atexit(finish);
  return 1;
}
