#include "registry/implementation.h"

#include <map>
#include <mutex>

namespace convpool::registry {

namespace {

std::mutex state_mutex;

std::map<std::string, std::string>& forced_names() {
  static std::map<std::string, std::string> names;
  return names;
}

std::map<std::string, int64_t>& run_counts() {
  static std::map<std::string, int64_t> counts;
  return counts;
}

std::string key(const std::string& op, const std::string& name) { return op + '/' + name; }

}  // namespace

int vector_floats(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512: return 16;
    case SimdLevel::avx2: return 8;
    case SimdLevel::baseline: break;
  }
  return 4;
}

std::string forced(const std::string& op) {
  std::lock_guard<std::mutex> lock(state_mutex);
  const auto it = forced_names().find(op);
  return it == forced_names().end() ? std::string() : it->second;
}

void force(const std::string& op, const std::string& name) {
  std::lock_guard<std::mutex> lock(state_mutex);
  if (name.empty()) forced_names().erase(op);
  else forced_names()[op] = name;
}

void count_run(const char* op, const char* name) {
  std::lock_guard<std::mutex> lock(state_mutex);
  ++run_counts()[key(op, name)];
}

int64_t runs(const std::string& op, const std::string& name) {
  std::lock_guard<std::mutex> lock(state_mutex);
  const auto it = run_counts().find(key(op, name));
  return it == run_counts().end() ? 0 : it->second;
}

}  // namespace convpool::registry
