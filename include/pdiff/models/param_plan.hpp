// pdiff/models/param_plan.hpp — ParamPlan: a model's parameter elements per rank for a layout, split
// into what the layout shards and what every rank holds whole; gib(bytes per element) for printing.
#pragma once

#include <cstdint>

namespace pdiff {

struct ParamPlan {
  std::int64_t sharded = 0, replicated = 0;  // elements per rank
  double gib(int bytes_per_element) const {
    return double(sharded + replicated) * bytes_per_element / (1024.0 * 1024.0 * 1024.0);
  }
};

}  // namespace pdiff
