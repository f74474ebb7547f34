#include "common/workspace.h"

#include <memory>

namespace convpool {

namespace {

struct Buffer {
  std::unique_ptr<float[]> data;
  size_t capacity = 0;
};

Buffer* thread_buffers() {
  thread_local Buffer buffers[static_cast<int>(WorkspaceSlot::count)];
  return buffers;
}

}  // namespace

float* workspace(WorkspaceSlot slot, size_t count) {
  Buffer& b = thread_buffers()[static_cast<int>(slot)];
  if (count > b.capacity) {
    b.data.reset();  // release first: the old and new buffers need not coexist
    b.data.reset(new float[count]);
    b.capacity = count;
  }
  return b.data.get();
}

void trim_workspace() {
  Buffer* buffers = thread_buffers();
  for (int slot = 0; slot < static_cast<int>(WorkspaceSlot::count); ++slot) {
    Buffer& b = buffers[slot];
    if (b.capacity * sizeof(float) > kKeptWorkspaceBytes) {
      b.data.reset();
      b.capacity = 0;
    }
  }
}

}  // namespace convpool
