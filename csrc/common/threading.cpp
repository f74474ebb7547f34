#include "common/threading.h"

#include <omp.h>

#include <atomic>
#include <stdexcept>

namespace convpool {

namespace {
// omp_get_max_threads() at first use honours OMP_NUM_THREADS.
std::atomic<int>& thread_setting() {
  static std::atomic<int> setting{omp_get_max_threads()};
  return setting;
}
}  // namespace

int num_threads() { return thread_setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("number of threads must be >= 1");
  thread_setting().store(n, std::memory_order_relaxed);
}

int openmp_version() { return _OPENMP; }

}  // namespace convpool
