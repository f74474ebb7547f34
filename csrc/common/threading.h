// The number of OpenMP threads every kernel uses. A process-wide setting rather than
// omp_set_num_threads(), whose effect is per calling thread and so would be lost for
// calls made from other Python threads.
#pragma once

#include <cstdint>

namespace convpool {

// The most threads set_num_threads() accepts. OpenMP cannot recover from a failed thread
// creation (GNU OpenMP exits the process), so a team far beyond any machine is refused.
constexpr int kMaxThreads = 1024;

// Threads the kernels use: the setting, or 1 in a child forked after the parent ran a
// team (its OpenMP worker threads did not survive the fork; see threading.cpp).
int num_threads();
void set_num_threads(int n);  // 1 <= n <= kMaxThreads, else std::invalid_argument
int openmp_version();         // _OPENMP as yyyymm

// Threads worth waking for `work` multiply-adds (or element visits): waking a team costs
// a few microseconds, more than a small convolution takes on one core.
inline int threads_for(int64_t work) { return work < 32768 ? 1 : num_threads(); }

// Multiply-adds one thread must have for a team to pay off: waking a thread and the
// barrier after it cost a few microseconds, some 2**18 multiply-adds on one core (the
// grain size of PyTorch's parallel_for, counted in work rather than elements).
constexpr int64_t kGrainWork = int64_t(1) << 18;

// Threads for `tasks` independent tasks totalling `work` multiply-adds: no more than the
// tasks, and no more than one per kGrainWork, so that batch-1 work split within one
// picture starts a team only where each thread gets enough of it.
inline int threads_for_tasks(int64_t tasks, int64_t work) {
  const int64_t by_work = work / kGrainWork;
  const int64_t most = tasks < by_work ? tasks : by_work;
  if (most <= 1) return 1;
  const int n = num_threads();
  return most < n ? int(most) : n;
}

// Splits [0, total) into `parts` contiguous ranges and returns range `index`.
// Used for work division that must not depend on OpenMP's schedule (determinism).
inline void split_range(int64_t total, int64_t parts, int64_t index, int64_t* begin, int64_t* end) {
  const int64_t base = total / parts, extra = total % parts;
  *begin = index * base + (index < extra ? index : extra);
  *end = *begin + base + (index < extra ? 1 : 0);
}

}  // namespace convpool
