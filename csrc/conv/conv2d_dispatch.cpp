// Dispatch between the convolution implementations: an ordered list per pass, fastest
// first, each entry saying whether it supports the case. A new fast path is one entry.
#include "conv/conv2d_dispatch.h"

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cpu_features.h"
#include "conv/conv2d.h"
#include "conv/conv2d_blocked.h"

namespace convpool {

namespace {

template <typename Run>
struct Implementation {
  const char* name;
  bool (*supports)(const Conv2dGeometry&);
  Run run;
};

using ForwardRun = void (*)(const Conv2dGeometry&, const float*, const float*, const float*, float*);
using GradInputRun = void (*)(const Conv2dGeometry&, const float*, const float*, float*);
using GradWeightRun = void (*)(const Conv2dGeometry&, const float*, const float*, float*);

// The blocked kernels exist once per ISA: these pick the build for the active SIMD level.
// Whether a case is supported does not depend on the ISA.
void blocked_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* b,
                     float* y) {
  switch (simd_level()) {
    case SimdLevel::avx512: return avx512::blocked_forward(g, x, w, b, y);
    case SimdLevel::avx2: return avx2::blocked_forward(g, x, w, b, y);
    default: return baseline::blocked_forward(g, x, w, b, y);
  }
}

void blocked_grad_input(const Conv2dGeometry& g, const float* gy, const float* w, float* gx) {
  switch (simd_level()) {
    case SimdLevel::avx512: return avx512::blocked_grad_input(g, gy, w, gx);
    case SimdLevel::avx2: return avx2::blocked_grad_input(g, gy, w, gx);
    default: return baseline::blocked_grad_input(g, gy, w, gx);
  }
}

void blocked_grad_weight(const Conv2dGeometry& g, const float* x, const float* gy, float* gw) {
  switch (simd_level()) {
    case SimdLevel::avx512: return avx512::blocked_grad_weight(g, x, gy, gw);
    case SimdLevel::avx2: return avx2::blocked_grad_weight(g, x, gy, gw);
    default: return baseline::blocked_grad_weight(g, x, gy, gw);
  }
}

const std::vector<Implementation<ForwardRun>>& forward_list() {
  static const std::vector<Implementation<ForwardRun>> list = {
      {"blocked", &avx512::blocked_forward_supports, &blocked_forward},
  };
  return list;
}
const std::vector<Implementation<GradInputRun>>& grad_input_list() {
  static const std::vector<Implementation<GradInputRun>> list = {
      {"blocked", &avx512::blocked_grad_input_supports, &blocked_grad_input},
  };
  return list;
}
const std::vector<Implementation<GradWeightRun>>& grad_weight_list() {
  static const std::vector<Implementation<GradWeightRun>> list = {
      {"blocked", &avx512::blocked_grad_weight_supports, &blocked_grad_weight},
  };
  return list;
}

std::mutex forced_mutex;
std::map<std::string, std::string>& forced() {
  static std::map<std::string, std::string> names;
  return names;
}
std::string forced_name(const std::string& pass) {
  std::lock_guard<std::mutex> lock(forced_mutex);
  auto it = forced().find(pass);
  return it == forced().end() ? std::string() : it->second;
}

// The first listed implementation that supports g (the forced one only, if any).
template <typename Run>
const Implementation<Run>* select(const std::vector<Implementation<Run>>& list,
                                  const std::string& pass, const Conv2dGeometry& g) {
  const std::string wanted = forced_name(pass);
  for (const auto& impl : list) {
    if (!wanted.empty() && wanted != impl.name) continue;
    if (impl.supports(g)) return &impl;
  }
  return nullptr;
}

template <typename Run>
std::vector<std::string> names_of(const std::vector<Implementation<Run>>& list) {
  std::vector<std::string> names;
  for (const auto& impl : list) names.emplace_back(impl.name);
  names.emplace_back("direct");
  return names;
}

}  // namespace

bool run_fast_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                      float* y) {
  const auto* impl = select(forward_list(), "forward", g);
  if (impl == nullptr) return false;
  impl->run(g, x, w, bias, y);
  return true;
}

bool run_fast_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                         float* grad_x) {
  const auto* impl = select(grad_input_list(), "grad_input", g);
  if (impl == nullptr) return false;
  impl->run(g, grad_y, w, grad_x);
  return true;
}

bool run_fast_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                          float* grad_w) {
  const auto* impl = select(grad_weight_list(), "grad_weight", g);
  if (impl == nullptr) return false;
  impl->run(g, x, grad_y, grad_w);
  return true;
}

std::vector<std::string> conv2d_implementations(const std::string& pass) {
  if (pass == "forward") return names_of(forward_list());
  if (pass == "grad_input") return names_of(grad_input_list());
  if (pass == "grad_weight") return names_of(grad_weight_list());
  throw std::invalid_argument("unknown convolution pass '" + pass +
                              "' (expected forward, grad_input or grad_weight)");
}

void force_conv2d_implementation(const std::string& pass, const std::string& name) {
  const auto names = conv2d_implementations(pass);
  if (!name.empty()) {
    bool known = false;
    for (const auto& n : names) known = known || n == name;
    if (!known) throw std::invalid_argument("unknown " + pass + " implementation '" + name + "'");
  }
  std::lock_guard<std::mutex> lock(forced_mutex);
  forced()[pass] = name;
}

std::string conv2d_selected_implementation(const std::string& pass, const Conv2dGeometry& g,
                                           int element_size) {
  if (element_size != 4) return "direct";
  const void* impl = nullptr;
  if (pass == "forward") impl = select(forward_list(), pass, g);
  else if (pass == "grad_input") impl = select(grad_input_list(), pass, g);
  else if (pass == "grad_weight") impl = select(grad_weight_list(), pass, g);
  else conv2d_implementations(pass);  // throws
  if (impl == nullptr) return "direct";
  if (pass == "forward") return static_cast<const Implementation<ForwardRun>*>(impl)->name;
  if (pass == "grad_input") return static_cast<const Implementation<GradInputRun>*>(impl)->name;
  return static_cast<const Implementation<GradWeightRun>*>(impl)->name;
}

}  // namespace convpool
