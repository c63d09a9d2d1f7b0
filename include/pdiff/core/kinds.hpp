// pdiff/core/kinds.hpp — the kind tag of the backend policies (docs/design.md §2).
//
// A policy is an empty type with `using kind = kind::X;` and `static constexpr int degree`. Each parallel
// policy declares its own kind tag in its file (parallel/tp.hpp: kind::tensor, ...) and is registered once
// in parallel/policies.hpp; the backends' tag is here because tensors (core/backend_tag.hpp) need it.
#pragma once

namespace pdiff::kind {
struct backend {};  // OnCpu/OnCuda
}  // namespace pdiff::kind
