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
#include "conv/conv2d_depthwise.h"
#include "conv/conv2d_depthwise_lanes.h"
#include "conv/conv2d_few_channels.h"
#include "conv/conv2d_plane.h"
#include "conv/conv2d_winograd.h"

namespace convpool {

namespace {

using ForwardRun = void (*)(const Conv2dGeometry&, const float*, const float*, const float*, float*);
using GradInputRun = void (*)(const Conv2dGeometry&, const float*, const float*, float*);
using GradWeightRun = void (*)(const Conv2dGeometry&, const float*, const float*, float*);
using Supports = bool (*)(const Conv2dGeometry&);

// One implementation of one pass, built once per ISA: `run[level]` is the build for
// SimdLevel `level`. Whether a case is supported does not depend on the ISA.
template <typename Run>
struct Implementation {
  const char* name;
  Supports supports;
  Run run[3];  // baseline, avx2, avx512

  Run for_active_level() const { return run[static_cast<int>(simd_level())]; }
};

const std::vector<Implementation<ForwardRun>>& forward_list() {
  static const std::vector<Implementation<ForwardRun>> list = {
      {"depthwise_lanes", &avx512::depthwise_lanes_supports,
       {&baseline::depthwise_lanes_forward, &avx2::depthwise_lanes_forward, &avx512::depthwise_lanes_forward}},
      {"winograd", &avx512::winograd_forward_supports,
       {&baseline::winograd_forward, &avx2::winograd_forward, &avx512::winograd_forward}},
      {"blocked", &avx512::blocked_forward_supports,
       {&baseline::blocked_forward, &avx2::blocked_forward, &avx512::blocked_forward}},
      {"few_channels", &avx512::few_channels_forward_supports,
       {&baseline::few_channels_forward, &avx2::few_channels_forward, &avx512::few_channels_forward}},
      {"plane", &avx512::plane_supports,
       {&baseline::plane_forward, &avx2::plane_forward, &avx512::plane_forward}},
      {"depthwise_strided", &avx512::depthwise_strided_supports,
       {&baseline::depthwise_strided_forward, &avx2::depthwise_strided_forward, &avx512::depthwise_strided_forward}},
  };
  return list;
}
const std::vector<Implementation<GradInputRun>>& grad_input_list() {
  static const std::vector<Implementation<GradInputRun>> list = {
      {"depthwise_lanes", &avx512::depthwise_lanes_grad_input_supports,
       {&baseline::depthwise_lanes_grad_input, &avx2::depthwise_lanes_grad_input, &avx512::depthwise_lanes_grad_input}},
      {"few_channels", &avx512::few_channels_grad_input_supports,
       {&baseline::few_channels_grad_input, &avx2::few_channels_grad_input, &avx512::few_channels_grad_input}},
      {"plane", &avx512::plane_grad_input_supports,
       {&baseline::plane_grad_input, &avx2::plane_grad_input, &avx512::plane_grad_input}},
      {"winograd", &avx512::winograd_supports,
       {&baseline::winograd_grad_input, &avx2::winograd_grad_input, &avx512::winograd_grad_input}},
      {"blocked", &avx512::blocked_grad_input_supports,
       {&baseline::blocked_grad_input, &avx2::blocked_grad_input, &avx512::blocked_grad_input}},
  };
  return list;
}
const std::vector<Implementation<GradWeightRun>>& grad_weight_list() {
  static const std::vector<Implementation<GradWeightRun>> list = {
      {"depthwise_lanes", &avx512::depthwise_lanes_grad_weight_supports,
       {&baseline::depthwise_lanes_grad_weight, &avx2::depthwise_lanes_grad_weight, &avx512::depthwise_lanes_grad_weight}},
      {"winograd", &avx512::winograd_supports,
       {&baseline::winograd_grad_weight, &avx2::winograd_grad_weight, &avx512::winograd_grad_weight}},
      {"plane", &avx512::plane_supports,
       {&baseline::plane_grad_weight, &avx2::plane_grad_weight, &avx512::plane_grad_weight}},
      {"depthwise_strided", &avx512::depthwise_strided_supports,
       {&baseline::depthwise_strided_grad_weight, &avx2::depthwise_strided_grad_weight, &avx512::depthwise_strided_grad_weight}},
      {"blocked", &avx512::blocked_grad_weight_supports,
       {&baseline::blocked_grad_weight, &avx2::blocked_grad_weight, &avx512::blocked_grad_weight}},
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
  impl->for_active_level()(g, x, w, bias, y);
  return true;
}

bool run_fast_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                         float* grad_x) {
  const auto* impl = select(grad_input_list(), "grad_input", g);
  if (impl == nullptr) return false;
  impl->for_active_level()(g, grad_y, w, grad_x);
  return true;
}

bool run_fast_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                          float* grad_w) {
  const auto* impl = select(grad_weight_list(), "grad_weight", g);
  if (impl == nullptr) return false;
  impl->for_active_level()(g, x, grad_y, grad_w);
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

}  // namespace convpool
