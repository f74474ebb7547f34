#include "common/workspace.h"

#include <memory>

namespace convpool {

namespace {

struct Buffer {
  std::unique_ptr<float[]> data;
  size_t capacity = 0;
};

}  // namespace

float* workspace(WorkspaceSlot slot, size_t count) {
  thread_local Buffer buffers[static_cast<int>(WorkspaceSlot::count)];
  Buffer& b = buffers[static_cast<int>(slot)];
  if (count > b.capacity) {
    b.data.reset();  // release first: the old and new buffers need not coexist
    b.data.reset(new float[count]);
    b.capacity = count;
  }
  return b.data.get();
}

}  // namespace convpool
