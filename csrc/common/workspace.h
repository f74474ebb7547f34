// Scratch memory reused across calls made from the same thread. A fresh buffer of tens of
// megabytes per call is returned to the system on free, and touching its pages again
// costs more in page faults than the convolution that fills it. Each slot holds at most
// the largest request made of it, which is bounded by the operands of that call.
#pragma once

#include <cstddef>

namespace convpool {

enum class WorkspaceSlot { padded_input = 0, transformed_weights = 1, count = 2 };

// Uninitialised floats, valid until the next request of the same slot on this thread.
float* workspace(WorkspaceSlot slot, size_t count);

}  // namespace convpool
