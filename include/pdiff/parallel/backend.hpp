// pdiff/parallel/backend.hpp — the backend policies OnCpu and OnCuda, accepted by Layout like the
// parallel policies (kind::backend). Defined in core/backend_tag.hpp because tensors use them.
#pragma once

#include "pdiff/core/backend_tag.hpp"
