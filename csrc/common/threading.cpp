#include "common/threading.h"

#include <omp.h>
#include <pthread.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace convpool {

namespace {

// omp_get_max_threads() at first use honours OMP_NUM_THREADS.
std::atomic<int>& thread_setting() {
  static std::atomic<int> setting{omp_get_max_threads() < kMaxThreads ? omp_get_max_threads() : kMaxThreads};
  return setting;
}

// Whether a team of more than one thread may have started in this process, and whether
// this process is a fork of one where that happened. GNU OpenMP's worker threads do not
// survive fork(): a child that asks for a team waits for them forever. One thread needs
// no team, so a forked child runs every kernel on its own thread.
std::atomic<bool> team_started{false};
std::atomic<bool> forked_after_team{false};

void after_fork_in_child() {
  if (team_started.load(std::memory_order_relaxed)) forked_after_team.store(true, std::memory_order_relaxed);
}

[[maybe_unused]] const bool fork_handler_registered = [] {
  return pthread_atfork(nullptr, nullptr, &after_fork_in_child) == 0;
}();

}  // namespace

int num_threads() {
  if (forked_after_team.load(std::memory_order_relaxed)) return 1;
  const int n = thread_setting().load(std::memory_order_relaxed);
  if (n > 1 && !team_started.load(std::memory_order_relaxed))
    team_started.store(true, std::memory_order_relaxed);
  return n;
}

void set_num_threads(int n) {
  if (n < 1 || n > kMaxThreads)
    throw std::invalid_argument("n: the number of threads must be between 1 and " +
                                std::to_string(kMaxThreads) + ", got " + std::to_string(n));
  thread_setting().store(n, std::memory_order_relaxed);
}

int openmp_version() { return _OPENMP; }

}  // namespace convpool
