// pdiff/models/param_plan.hpp — ParamPlan: a model's parameter elements per rank for a layout, split
// into what the layout shards and what every rank holds whole; elements(), bytes(bytes per element),
// gib(bytes per element) for printing. Every model's plan (FLUX.2, Mistral, BAGEL, HunyuanImage-3.0) returns one.
#pragma once

#include <cstdint>

namespace pdiff {

struct ParamPlan {
  std::int64_t sharded = 0, replicated = 0;  // elements per rank
  std::int64_t elements() const { return sharded + replicated; }
  std::int64_t bytes(std::int64_t bytes_per_element) const { return elements() * bytes_per_element; }
  double gib(int bytes_per_element) const {
    return double(sharded + replicated) * bytes_per_element / (1024.0 * 1024.0 * 1024.0);
  }
};

}  // namespace pdiff
