// Scratch memory reused across calls made from the same thread. A fresh buffer of tens of
// megabytes per call is returned to the system on free, and touching its pages again
// costs more in page faults than the convolution that fills it. Each slot holds at most
// the largest request made of it, which is bounded by the operands of that call, and a
// buffer larger than kKeptWorkspaceBytes is released when the call that needed it returns
// (WorkspaceCall), so that one huge call does not leave its scratch resident.
#pragma once

#include <cstddef>

namespace convpool {

enum class WorkspaceSlot { padded_input = 0, transformed_weights = 1, count = 2 };

constexpr size_t kKeptWorkspaceBytes = size_t(16) << 20;

// Uninitialised floats, valid until the next request of the same slot on this thread.
// Request from the calling thread, never from inside a parallel region: the buffer
// belongs to the thread that asked, and only the caller's are trimmed.
float* workspace(WorkspaceSlot slot, size_t count);

// Releases this thread's buffers above kKeptWorkspaceBytes.
void trim_workspace();

// Trims the calling thread's workspace when a kernel call ends, normally or by exception.
struct WorkspaceCall {
  WorkspaceCall() = default;
  WorkspaceCall(const WorkspaceCall&) = delete;
  WorkspaceCall& operator=(const WorkspaceCall&) = delete;
  ~WorkspaceCall() { trim_workspace(); }
};

}  // namespace convpool
