// The kernel registry: for every operation, its implementations in the order they are
// tried, fastest first, each with the predicate saying which cases it supports and its
// kernel for each SIMD level (implementation.h). A new implementation of an operation is
// one file in csrc/kernels/ (its predicate and its kernels) and one line here, in the
// operation's list below, at the position its speed earns.
#include "registry/registry.h"

#include <stdexcept>
#include <type_traits>

#include "common/workspace.h"
#include "conv/conv2d.h"
#include "conv/conv2d_direct.h"
#include "conv/conv2d_nhwc.h"
#include "pool/pool2d.h"
#include "pool/pool_half.h"
#include "registry/implementation.h"

namespace convpool {

// How each problem reads in an error message.
std::string describe(const WindowAxis& a) {
  return "in " + std::to_string(a.in_size) + ", out " + std::to_string(a.out_size) + ", kernel " +
         std::to_string(a.kernel) + ", stride " + std::to_string(a.stride) + ", dilation " +
         std::to_string(a.dilation) + ", padding before " + std::to_string(a.pad_before);
}

std::string describe(const Conv2dGeometry& g) {
  return std::string("padding mode ") + padding_mode_name(g.padding_mode) + ", batch " + std::to_string(g.batch) + ", channels " + std::to_string(g.in_channels) +
         " -> " + std::to_string(g.out_channels) + ", groups " + std::to_string(g.groups) +
         ", height: " + describe(g.rows) + "; width: " + describe(g.cols) +
         (g.channels_last ? ", channels-last (NHWC)" : "");
}

std::string describe_layout(bool channels_last) { return channels_last ? "NHWC" : "NCHW"; }

std::string describe(const PoolGeometry& g) {
  return describe_layout(g.channels_last) + ", " + std::to_string(g.planes) +
         " planes, height: " + describe(g.rows) + "; width: " + describe(g.cols);
}

std::string describe(const GlobalPoolShape& s) {
  return describe_layout(s.channels_last) + ", " + std::to_string(s.planes) + " planes of " +
         std::to_string(s.plane_size) + " pixels";
}

std::string describe(const ChannelPoolShape& s) {
  return describe_layout(s.channels_last) + ", batch " + std::to_string(s.batch) + ", " +
         std::to_string(s.channels) + " channels in groups of " + std::to_string(s.group) + ", " +
         std::to_string(s.plane_size) + " pixels per plane";
}

// --- the implementations of each operation, fastest first ------------------------------
//
// One line per implementation: X("name", kernel), where csrc/kernels/ defines `kernel` in
// each per-ISA namespace (baseline, avx2, avx512) and its predicate `kernel_supports`
// once, in namespace convpool (the file's predicate section). The line declares both and
// makes the entry. The portable `direct` loops close each convolution list.

#define CONV2D_FORWARD_FLOAT32(X)                   \
  X("depthwise_rows", depthwise_rows_forward)       \
  X("depthwise_lanes", depthwise_lanes_forward)     \
  X("pointwise", pointwise_forward)                 \
  X("small_planes", small_planes_forward)           \
  X("brgemm", brgemm_forward)                       \
  X("winograd", winograd_forward)                   \
  X("blocked", blocked_forward)                     \
  X("few_channels", few_channels_forward)           \
  X("plane_rows", plane_rows_forward)               \
  X("plane", plane_forward)                         \
  X("depthwise_strided", depthwise_strided_forward)

#define CONV2D_GRAD_INPUT_FLOAT32(X)                   \
  X("depthwise_rows", depthwise_rows_grad_input)       \
  X("depthwise_lanes", depthwise_lanes_grad_input)     \
  X("pointwise", pointwise_grad_input)                 \
  X("few_channels", few_channels_grad_input)           \
  X("plane", plane_grad_input)                         \
  X("brgemm", brgemm_grad_input)                       \
  X("winograd", winograd_grad_input)                   \
  X("blocked", blocked_grad_input)                     \
  X("small_planes", small_planes_grad_input)

#define CONV2D_GRAD_WEIGHT_FLOAT32(X)                     \
  X("depthwise_lanes", depthwise_lanes_grad_weight)       \
  X("pointwise", pointwise_grad_weight)                   \
  X("small_planes", small_planes_grad_weight)             \
  X("winograd", winograd_grad_weight)                     \
  X("plane", plane_grad_weight)                           \
  X("depthwise_strided", depthwise_strided_grad_weight)   \
  X("blocked", blocked_grad_weight)                       \
  X("brgemm", brgemm_grad_weight)

// Where an implementation can run a case but a later one measured faster: its
// `kernel_chosen` predicate (in its file's predicate section) says where the registry
// picks it. A forced call ignores it, so the tests still run the kernel on every case.
#define CONV2D_FORWARD_FLOAT32_CHOICES(X)            \
  X("small_planes", small_planes_forward)            \
  X("winograd", winograd_forward)
#define CONV2D_GRAD_INPUT_FLOAT32_CHOICES(X) X("winograd", winograd_grad_input)
#define CONV2D_GRAD_WEIGHT_FLOAT32_CHOICES(X)        \
  X("small_planes", small_planes_grad_weight)        \
  X("winograd", winograd_grad_weight)

// The channels-last (NHWC) implementations: lists of their own (every entry states its
// layout once, through its list; implementation.h). The portable `nhwc_direct` loops
// close each channels-last list.
#define CONV2D_FORWARD_FLOAT32_NHWC(X)          \
  X("nhwc_winograd", nhwc_winograd_forward)     \
  X("nhwc_blocked", nhwc_blocked_forward)       \
  X("nhwc_loops", nhwc_loops_forward)

#define CONV2D_GRAD_INPUT_FLOAT32_NHWC(X)          \
  X("nhwc_winograd", nhwc_winograd_grad_input)     \
  X("nhwc_blocked", nhwc_blocked_grad_input)       \
  X("nhwc_loops", nhwc_loops_grad_input)

#define CONV2D_GRAD_WEIGHT_FLOAT32_NHWC(X)          \
  X("nhwc_blocked", nhwc_blocked_grad_weight)       \
  X("nhwc_loops", nhwc_loops_grad_weight)

// Pooling: the same lists for float32 and float64 (the kernels are templates); float16
// lists of their own below.
#define MAX_POOL2D(X) X("rows", max_pool2d_forward)
#define MAX_POOL2D_GRAD_INPUT(X) X("rows", max_pool2d_grad_input)
#define AVG_POOL2D(X) X("rows", avg_pool2d_forward)
#define AVG_POOL2D_GRAD_INPUT(X) X("rows", avg_pool2d_grad_input)
#define GLOBAL_AVG_POOL2D(X) X("planes", global_avg_pool2d_forward)
#define GLOBAL_AVG_POOL2D_GRAD_INPUT(X) X("planes", global_avg_pool2d_grad_input)
#define GLOBAL_MAX_POOL2D(X) X("planes", global_max_pool2d_forward)
#define GLOBAL_MAX_POOL2D_GRAD_INPUT(X) X("planes", global_max_pool2d_grad_input)
#define CHANNEL_POOL(X) X("channels", channel_pool_forward)
#define CHANNEL_POOL_GRAD_INPUT(X) X("channels", channel_pool_grad_input)

// The channels-last (NHWC) implementations of each operation: a list of their own (every
// entry states its layout once, through its list; implementation.h).
#define MAX_POOL2D_NHWC(X) X("nhwc", max_pool2d_forward_nhwc)
#define MAX_POOL2D_GRAD_INPUT_NHWC(X) X("nhwc", max_pool2d_grad_input_nhwc)
#define AVG_POOL2D_NHWC(X) X("nhwc", avg_pool2d_forward_nhwc)
#define AVG_POOL2D_GRAD_INPUT_NHWC(X) X("nhwc", avg_pool2d_grad_input_nhwc)
#define GLOBAL_AVG_POOL2D_NHWC(X) X("nhwc", global_avg_pool2d_forward_nhwc)
#define GLOBAL_AVG_POOL2D_GRAD_INPUT_NHWC(X) X("nhwc", global_avg_pool2d_grad_input_nhwc)
#define GLOBAL_MAX_POOL2D_NHWC(X) X("nhwc", global_max_pool2d_forward_nhwc)
#define GLOBAL_MAX_POOL2D_GRAD_INPUT_NHWC(X) X("nhwc", global_max_pool2d_grad_input_nhwc)
#define CHANNEL_POOL_NHWC(X) X("nhwc", channel_pool_forward_nhwc)
#define CHANNEL_POOL_GRAD_INPUT_NHWC(X) X("nhwc", channel_pool_grad_input_nhwc)

// The float16 implementations (NCHW, read and write float16, compute in float32): lists
// of their own, with kernels on uint16_t storage. Max pooling's takes no indices (a call
// asking for them runs the float32 list on a widened copy).
#define MAX_POOL2D_FLOAT16(X) X("rows", max_pool2d_forward_float16)
#define AVG_POOL2D_FLOAT16(X) X("rows", avg_pool2d_forward_float16)

// --- declarations made from the lists ---------------------------------------------------

#define CONVPOOL_FOR_EACH_ISA(...)    \
  namespace baseline { __VA_ARGS__ } \
  namespace avx2 { __VA_ARGS__ }     \
  namespace avx512 { __VA_ARGS__ }

#define CONVPOOL_DECLARE_CONV_FORWARD(label, kernel)                                         \
  CONVPOOL_FOR_EACH_ISA(void kernel(const Conv2dGeometry&, const float*, const float*,      \
                                    const float*, float*);)                                 \
  bool kernel##_supports(const Conv2dGeometry&, int);
#define CONVPOOL_DECLARE_CONV_GRADIENT(label, kernel)                                        \
  CONVPOOL_FOR_EACH_ISA(void kernel(const Conv2dGeometry&, const float*, const float*, float*);) \
  bool kernel##_supports(const Conv2dGeometry&, int);

CONV2D_FORWARD_FLOAT32(CONVPOOL_DECLARE_CONV_FORWARD)
CONV2D_GRAD_INPUT_FLOAT32(CONVPOOL_DECLARE_CONV_GRADIENT)
CONV2D_GRAD_WEIGHT_FLOAT32(CONVPOOL_DECLARE_CONV_GRADIENT)
CONV2D_FORWARD_FLOAT32_NHWC(CONVPOOL_DECLARE_CONV_FORWARD)

#define CONVPOOL_DECLARE_CHOICE(label, kernel) bool kernel##_chosen(const Conv2dGeometry&, int);
CONV2D_FORWARD_FLOAT32_CHOICES(CONVPOOL_DECLARE_CHOICE)
CONV2D_GRAD_INPUT_FLOAT32_CHOICES(CONVPOOL_DECLARE_CHOICE)
CONV2D_GRAD_WEIGHT_FLOAT32_CHOICES(CONVPOOL_DECLARE_CHOICE)
CONV2D_GRAD_INPUT_FLOAT32_NHWC(CONVPOOL_DECLARE_CONV_GRADIENT)
CONV2D_GRAD_WEIGHT_FLOAT32_NHWC(CONVPOOL_DECLARE_CONV_GRADIENT)

// A pooling kernel template (in each ISA namespace) with the signature `...` of its
// operation, and its predicate on `problem`.
#define CONVPOOL_DECLARE_POOL(problem, kernel, ...)                   \
  CONVPOOL_FOR_EACH_ISA(template <typename T> __VA_ARGS__;)           \
  bool kernel##_supports(const problem&, int);
#define CONVPOOL_DECLARE_MAX_POOL(label, kernel) \
  CONVPOOL_DECLARE_POOL(PoolGeometry, kernel, void kernel(const PoolGeometry&, const T*, T*, int64_t*))
#define CONVPOOL_DECLARE_MAX_POOL_GRAD(label, kernel) \
  CONVPOOL_DECLARE_POOL(PoolGeometry, kernel,         \
                        bool kernel(const PoolGeometry&, const T*, const int64_t*, T*))
#define CONVPOOL_DECLARE_AVG_POOL(label, kernel) \
  CONVPOOL_DECLARE_POOL(PoolGeometry, kernel,    \
                        void kernel(const PoolGeometry&, const AvgPoolDivisor&, const T*, T*))
#define CONVPOOL_DECLARE_GLOBAL_POOL(label, kernel) \
  CONVPOOL_DECLARE_POOL(GlobalPoolShape, kernel, void kernel(const GlobalPoolShape&, const T*, T*))
#define CONVPOOL_DECLARE_GLOBAL_MAX_POOL(label, kernel) \
  CONVPOOL_DECLARE_POOL(GlobalPoolShape, kernel,        \
                        void kernel(const GlobalPoolShape&, const T*, T*, int64_t*))
#define CONVPOOL_DECLARE_GLOBAL_MAX_POOL_GRAD(label, kernel) \
  CONVPOOL_DECLARE_POOL(GlobalPoolShape, kernel,             \
                        void kernel(const GlobalPoolShape&, const T*, const T*, T*))
#define CONVPOOL_DECLARE_CHANNEL_POOL(label, kernel) \
  CONVPOOL_DECLARE_POOL(ChannelPoolShape, kernel,    \
                        void kernel(const ChannelPoolShape&, ChannelPoolMode, const T*, T*))
#define CONVPOOL_DECLARE_CHANNEL_POOL_GRAD(label, kernel) \
  CONVPOOL_DECLARE_POOL(ChannelPoolShape, kernel,         \
                        void kernel(const ChannelPoolShape&, ChannelPoolMode, const T*, const T*, T*))

MAX_POOL2D(CONVPOOL_DECLARE_MAX_POOL)
MAX_POOL2D_GRAD_INPUT(CONVPOOL_DECLARE_MAX_POOL_GRAD)
AVG_POOL2D(CONVPOOL_DECLARE_AVG_POOL)
AVG_POOL2D_GRAD_INPUT(CONVPOOL_DECLARE_AVG_POOL)
GLOBAL_AVG_POOL2D(CONVPOOL_DECLARE_GLOBAL_POOL)
GLOBAL_AVG_POOL2D_GRAD_INPUT(CONVPOOL_DECLARE_GLOBAL_POOL)
GLOBAL_MAX_POOL2D(CONVPOOL_DECLARE_GLOBAL_MAX_POOL)
GLOBAL_MAX_POOL2D_GRAD_INPUT(CONVPOOL_DECLARE_GLOBAL_MAX_POOL_GRAD)
CHANNEL_POOL(CONVPOOL_DECLARE_CHANNEL_POOL)
CHANNEL_POOL_GRAD_INPUT(CONVPOOL_DECLARE_CHANNEL_POOL_GRAD)
MAX_POOL2D_NHWC(CONVPOOL_DECLARE_MAX_POOL)
MAX_POOL2D_GRAD_INPUT_NHWC(CONVPOOL_DECLARE_MAX_POOL_GRAD)
AVG_POOL2D_NHWC(CONVPOOL_DECLARE_AVG_POOL)
AVG_POOL2D_GRAD_INPUT_NHWC(CONVPOOL_DECLARE_AVG_POOL)
GLOBAL_AVG_POOL2D_NHWC(CONVPOOL_DECLARE_GLOBAL_POOL)
GLOBAL_AVG_POOL2D_GRAD_INPUT_NHWC(CONVPOOL_DECLARE_GLOBAL_POOL)
GLOBAL_MAX_POOL2D_NHWC(CONVPOOL_DECLARE_GLOBAL_MAX_POOL)
GLOBAL_MAX_POOL2D_GRAD_INPUT_NHWC(CONVPOOL_DECLARE_GLOBAL_MAX_POOL_GRAD)
CHANNEL_POOL_NHWC(CONVPOOL_DECLARE_CHANNEL_POOL)
CHANNEL_POOL_GRAD_INPUT_NHWC(CONVPOOL_DECLARE_CHANNEL_POOL_GRAD)

#define CONVPOOL_DECLARE_MAX_POOL_FLOAT16(label, kernel)                                 \
  CONVPOOL_FOR_EACH_ISA(void kernel(const PoolGeometry&, const uint16_t*, uint16_t*);) \
  bool kernel##_supports(const PoolGeometry&, int);
#define CONVPOOL_DECLARE_AVG_POOL_FLOAT16(label, kernel)                                  \
  CONVPOOL_FOR_EACH_ISA(void kernel(const PoolGeometry&, const AvgPoolDivisor&,          \
                                    const uint16_t*, uint16_t*);)                         \
  bool kernel##_supports(const PoolGeometry&, int);
MAX_POOL2D_FLOAT16(CONVPOOL_DECLARE_MAX_POOL_FLOAT16)
AVG_POOL2D_FLOAT16(CONVPOOL_DECLARE_AVG_POOL_FLOAT16)

// An entry of a list: the name, the predicate and the three builds.
#define CONVPOOL_ENTRY(label, kernel) {label, &kernel##_supports, CONVPOOL_PER_ISA(kernel)},
#define CONVPOOL_TEMPLATE_ENTRY(label, kernel) \
  {label, &kernel##_supports, CONVPOOL_PER_ISA(kernel<T>)},
// An entry of a channels-last list.
#define CONVPOOL_NHWC_ENTRY(label, kernel) \
  {label, &kernel##_supports, CONVPOOL_PER_ISA(kernel), Layout::channels_last},
#define CONVPOOL_TEMPLATE_NHWC_ENTRY(label, kernel) \
  {label, &kernel##_supports, CONVPOOL_PER_ISA(kernel<T>), Layout::channels_last},
// A `chosen` predicate of a choice list.
#define CONVPOOL_CHOICE(label, kernel) {label, &kernel##_chosen},

namespace {

using registry::every_case;
using registry::Layout;
using registry::Operation;


template <typename T>
constexpr const char* dtype_name() {
  return sizeof(T) == 8 ? "float64" : "float32";
}

// The element type of an operation's float16 list (its kernels take uint16_t storage): a
// tag no floating-point type converts to, so only the operations with such a list have a
// getter for it.
struct Float16 {};

// --- convolution ------------------------------------------------------------------------

template <typename T>
using ConvForward = void(const Conv2dGeometry&, const T*, const T*, const T*, T*);
template <typename T>
using ConvGradient = void(const Conv2dGeometry&, const T*, const T*, T*);

const Operation<Conv2dGeometry, ConvForward<float>>& conv2d_op(float) {
  static const Operation<Conv2dGeometry, ConvForward<float>> op{"conv2d", "float32",
    registry::with_choices<Conv2dGeometry, ConvForward<float>>({
      CONV2D_FORWARD_FLOAT32(CONVPOOL_ENTRY)
      CONV2D_FORWARD_FLOAT32_NHWC(CONVPOOL_NHWC_ENTRY)
      {"direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_forward_direct<float>)},
      {"nhwc_direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_forward_nhwc_direct<float>), Layout::channels_last},
      }, {CONV2D_FORWARD_FLOAT32_CHOICES(CONVPOOL_CHOICE)})};
  return op;
}

const Operation<Conv2dGeometry, ConvForward<double>>& conv2d_op(double) {
  static const Operation<Conv2dGeometry, ConvForward<double>> op{"conv2d", "float64", {
      {"direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_forward_direct<double>)},
      {"nhwc_direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_forward_nhwc_direct<double>), Layout::channels_last},
  }};
  return op;
}

const Operation<Conv2dGeometry, ConvGradient<float>>& conv2d_grad_input_op(float) {
  static const Operation<Conv2dGeometry, ConvGradient<float>> op{"conv2d_grad_input", "float32",
    registry::with_choices<Conv2dGeometry, ConvGradient<float>>({
      CONV2D_GRAD_INPUT_FLOAT32(CONVPOOL_ENTRY)
      CONV2D_GRAD_INPUT_FLOAT32_NHWC(CONVPOOL_NHWC_ENTRY)
      {"direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_grad_input_direct<float>)},
      {"nhwc_direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_grad_input_nhwc_direct<float>), Layout::channels_last},
      }, {CONV2D_GRAD_INPUT_FLOAT32_CHOICES(CONVPOOL_CHOICE)})};
  return op;
}

const Operation<Conv2dGeometry, ConvGradient<double>>& conv2d_grad_input_op(double) {
  static const Operation<Conv2dGeometry, ConvGradient<double>> op{"conv2d_grad_input", "float64", {
      {"direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_grad_input_direct<double>)},
      {"nhwc_direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_grad_input_nhwc_direct<double>), Layout::channels_last},
  }};
  return op;
}

const Operation<Conv2dGeometry, ConvGradient<float>>& conv2d_grad_weight_op(float) {
  static const Operation<Conv2dGeometry, ConvGradient<float>> op{"conv2d_grad_weight", "float32",
    registry::with_choices<Conv2dGeometry, ConvGradient<float>>({
      CONV2D_GRAD_WEIGHT_FLOAT32(CONVPOOL_ENTRY)
      CONV2D_GRAD_WEIGHT_FLOAT32_NHWC(CONVPOOL_NHWC_ENTRY)
      {"direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_grad_weight_direct<float>)},
      {"nhwc_direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_grad_weight_nhwc_direct<float>), Layout::channels_last},
      }, {CONV2D_GRAD_WEIGHT_FLOAT32_CHOICES(CONVPOOL_CHOICE)})};
  return op;
}

const Operation<Conv2dGeometry, ConvGradient<double>>& conv2d_grad_weight_op(double) {
  static const Operation<Conv2dGeometry, ConvGradient<double>> op{"conv2d_grad_weight", "float64", {
      {"direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_grad_weight_direct<double>)},
      {"nhwc_direct", &every_case<Conv2dGeometry>, CONVPOOL_ANY_ISA(conv2d_grad_weight_nhwc_direct<double>), Layout::channels_last},
  }};
  return op;
}

// --- pooling ------------------------------------------------------------------------------

template <typename T>
using MaxPoolForward = void(const PoolGeometry&, const T*, T*, int64_t*);
template <typename T>
using MaxPoolGradInput = bool(const PoolGeometry&, const T*, const int64_t*, T*);
template <typename T>
using AvgPoolForward = void(const PoolGeometry&, const AvgPoolDivisor&, const T*, T*);
template <typename T>
using GlobalForward = void(const GlobalPoolShape&, const T*, T*);
template <typename T>
using GlobalMaxForward = void(const GlobalPoolShape&, const T*, T*, int64_t*);
template <typename T>
using GlobalMaxGradInput = void(const GlobalPoolShape&, const T*, const T*, T*);
template <typename T>
using ChannelForward = void(const ChannelPoolShape&, ChannelPoolMode, const T*, T*);
template <typename T>
using ChannelGradInput = void(const ChannelPoolShape&, ChannelPoolMode, const T*, const T*, T*);

#define CONVPOOL_POOL_OP(getter, name, Problem, Kernel, LIST)                         \
  template <typename T, typename = std::enable_if_t<std::is_floating_point_v<T>>>     \
  const Operation<Problem, Kernel<T>>& getter(T) {                                   \
    static const Operation<Problem, Kernel<T>> op{name, dtype_name<T>(), {           \
        LIST(CONVPOOL_TEMPLATE_ENTRY)                                                \
        LIST##_NHWC(CONVPOOL_TEMPLATE_NHWC_ENTRY)                                    \
    }};                                                                              \
    return op;                                                                       \
  }

CONVPOOL_POOL_OP(max_pool2d_op, "max_pool2d", PoolGeometry, MaxPoolForward, MAX_POOL2D)
CONVPOOL_POOL_OP(max_pool2d_grad_input_op, "max_pool2d_grad_input", PoolGeometry,
                 MaxPoolGradInput, MAX_POOL2D_GRAD_INPUT)
CONVPOOL_POOL_OP(avg_pool2d_op, "avg_pool2d", PoolGeometry, AvgPoolForward, AVG_POOL2D)
CONVPOOL_POOL_OP(avg_pool2d_grad_input_op, "avg_pool2d_grad_input", PoolGeometry,
                 AvgPoolForward, AVG_POOL2D_GRAD_INPUT)
CONVPOOL_POOL_OP(global_avg_pool2d_op, "global_avg_pool2d", GlobalPoolShape, GlobalForward,
                 GLOBAL_AVG_POOL2D)
CONVPOOL_POOL_OP(global_avg_pool2d_grad_input_op, "global_avg_pool2d_grad_input",
                 GlobalPoolShape, GlobalForward, GLOBAL_AVG_POOL2D_GRAD_INPUT)
CONVPOOL_POOL_OP(global_max_pool2d_op, "global_max_pool2d", GlobalPoolShape, GlobalMaxForward,
                 GLOBAL_MAX_POOL2D)
CONVPOOL_POOL_OP(global_max_pool2d_grad_input_op, "global_max_pool2d_grad_input",
                 GlobalPoolShape, GlobalMaxGradInput, GLOBAL_MAX_POOL2D_GRAD_INPUT)
CONVPOOL_POOL_OP(channel_pool_op, "channel_pool", ChannelPoolShape, ChannelForward, CHANNEL_POOL)
CONVPOOL_POOL_OP(channel_pool_grad_input_op, "channel_pool_grad_input", ChannelPoolShape,
                 ChannelGradInput, CHANNEL_POOL_GRAD_INPUT)

using MaxPoolForwardFloat16 = void(const PoolGeometry&, const uint16_t*, uint16_t*);
using AvgPoolForwardFloat16 = void(const PoolGeometry&, const AvgPoolDivisor&, const uint16_t*,
                                   uint16_t*);

const Operation<PoolGeometry, MaxPoolForwardFloat16>& max_pool2d_op(Float16) {
  static const Operation<PoolGeometry, MaxPoolForwardFloat16> op{"max_pool2d", "float16", {
      MAX_POOL2D_FLOAT16(CONVPOOL_ENTRY)
  }};
  return op;
}

const Operation<PoolGeometry, AvgPoolForwardFloat16>& avg_pool2d_op(Float16) {
  static const Operation<PoolGeometry, AvgPoolForwardFloat16> op{"avg_pool2d", "float16", {
      AVG_POOL2D_FLOAT16(CONVPOOL_ENTRY)
  }};
  return op;
}

// The element types of the registry's lists: every operation has a float32 and a float64
// list, some a float16 one.
enum class Dtype { float32, float64, float16 };

Dtype parse_dtype(const std::string& name) {
  if (name == "float32") return Dtype::float32;
  if (name == "float64") return Dtype::float64;
  if (name == "float16") return Dtype::float16;
  throw std::invalid_argument("dtype: expected 'float32', 'float64' or 'float16', got '" +
                              name + "'");
}

template <typename Getter>
constexpr bool has_float16_list = std::is_invocable_v<Getter, Float16>;

// Calls body(op) with the `dtype` list of `name`'s operation; false if `name` is not one
// of `getters`' (of one problem type). std::invalid_argument if it has no such list.
template <typename Body, typename... Getters>
bool with_operation(const std::string& name, Dtype dtype, Body&& body, Getters... getters) {
  bool found = false;
  auto visit = [&](auto getter) {
    if (found) return;
    const auto& op32 = getter(float{});
    if (name != op32.name) return;
    found = true;
    if (dtype == Dtype::float32) body(op32);
    else if (dtype == Dtype::float64) body(getter(double{}));
    else if constexpr (has_float16_list<decltype(getter)>) body(getter(Float16{}));
    else throw std::invalid_argument(name + " has no float16 kernels (its float16 calls "
                                            "compute on a float32 copy)");
  };
  (visit(getters), ...);
  return found;
}

// Calls body(op) with every list (each element type) of `name`'s operation; false if
// `name` is not one of `getters`'.
template <typename Body, typename... Getters>
bool with_every_list(const std::string& name, Body&& body, Getters... getters) {
  bool found = false;
  auto visit = [&](auto getter) {
    if (found || name != getter(float{}).name) return;
    found = true;
    body(getter(float{}));
    body(getter(double{}));
    if constexpr (has_float16_list<decltype(getter)>) body(getter(Float16{}));
  };
  (visit(getters), ...);
  return found;
}

// SFINAE-friendly (the return type names the call): has_float16_list asks it.
#define CONVPOOL_GETTER(op) [](auto t) -> decltype(op##_op(t)) { return op##_op(t); }
#define CONVPOOL_CONV_OPS \
  CONVPOOL_GETTER(conv2d), CONVPOOL_GETTER(conv2d_grad_input), CONVPOOL_GETTER(conv2d_grad_weight)
#define CONVPOOL_WINDOW_POOL_OPS                                                   \
  CONVPOOL_GETTER(max_pool2d), CONVPOOL_GETTER(max_pool2d_grad_input),             \
      CONVPOOL_GETTER(avg_pool2d), CONVPOOL_GETTER(avg_pool2d_grad_input)
#define CONVPOOL_GLOBAL_POOL_OPS                                                   \
  CONVPOOL_GETTER(global_avg_pool2d), CONVPOOL_GETTER(global_avg_pool2d_grad_input), \
      CONVPOOL_GETTER(global_max_pool2d), CONVPOOL_GETTER(global_max_pool2d_grad_input)
#define CONVPOOL_CHANNEL_POOL_OPS \
  CONVPOOL_GETTER(channel_pool), CONVPOOL_GETTER(channel_pool_grad_input)

// Calls body(op) with the `dtype` list of operation `name`, whatever its problem type;
// false if there is no such operation.
template <typename Body>
bool with_any_operation(const std::string& name, Dtype dtype, Body&& body) {
  return with_operation(name, dtype, body, CONVPOOL_CONV_OPS) ||
         with_operation(name, dtype, body, CONVPOOL_WINDOW_POOL_OPS) ||
         with_operation(name, dtype, body, CONVPOOL_GLOBAL_POOL_OPS) ||
         with_operation(name, dtype, body, CONVPOOL_CHANNEL_POOL_OPS);
}

// Calls body(op) with every list of operation `name`; false if there is no such operation.
template <typename Body>
bool with_every_list_of(const std::string& name, Body&& body) {
  return with_every_list(name, body, CONVPOOL_CONV_OPS) ||
         with_every_list(name, body, CONVPOOL_WINDOW_POOL_OPS) ||
         with_every_list(name, body, CONVPOOL_GLOBAL_POOL_OPS) ||
         with_every_list(name, body, CONVPOOL_CHANNEL_POOL_OPS);
}

[[noreturn]] void unknown_operation(const std::string& name) {
  std::string known;
  for (const auto& op : registry::operations()) known += (known.empty() ? "" : ", ") + op;
  throw std::invalid_argument("unknown operation '" + name + "' (expected one of " + known + ")");
}

template <typename Problem, typename... Getters>
std::vector<std::string> supporting_any(const std::string& name, const std::string& dtype,
                                        const Problem& problem, Getters... getters) {
  std::vector<std::string> names;
  auto body = [&](const auto& op) { names = op.supporting(problem, simd_level()); };
  if (!with_operation(name, parse_dtype(dtype), body, getters...)) unknown_operation(name);
  return names;
}

template <typename Problem, typename... Getters>
std::string chosen_any(const std::string& name, const std::string& dtype, const Problem& problem,
                       Getters... getters) {
  std::string chosen;
  auto body = [&](const auto& op) { chosen = op.implementations[op.select(problem, simd_level())].name; };
  if (!with_operation(name, parse_dtype(dtype), body, getters...)) unknown_operation(name);
  return chosen;
}

}  // namespace

// --- the public kernel functions: each runs its operation's choice ----------------------

// Convolution in float32 also repairs what a fast path made non-finite where the direct
// sum is finite (conv2d_direct.h), and releases large scratch on return.
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const WorkspaceCall call;
  conv2d_op(T{}).run(g, g, x, w, bias, y);
  // The channels-last kernels skip the padding taps: nothing to repair.
  if constexpr (std::is_same_v<T, float>) if (!g.channels_last) conv2d_forward_repair_non_finite(g, x, w, bias, y);
}

template <typename T>
void conv2d_grad_input(const Conv2dGeometry& g, const T* grad_y, const T* w, T* grad_x) {
  const WorkspaceCall call;
  conv2d_grad_input_op(T{}).run(g, g, grad_y, w, grad_x);
  if constexpr (std::is_same_v<T, float>) if (!g.channels_last) conv2d_grad_input_repair_non_finite(g, grad_y, w, grad_x);
}

template <typename T>
void conv2d_grad_weight(const Conv2dGeometry& g, const T* x, const T* grad_y, T* grad_w) {
  const WorkspaceCall call;
  conv2d_grad_weight_op(T{}).run(g, g, x, grad_y, grad_w);
  if constexpr (std::is_same_v<T, float>) if (!g.channels_last) conv2d_grad_weight_repair_non_finite(g, x, grad_y, grad_w);
}

template <typename T>
void max_pool2d_forward(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  max_pool2d_op(T{}).run(g, g, x, y, indices);
}

template <typename T>
bool max_pool2d_grad_input(const PoolGeometry& g, const T* grad_y, const int64_t* indices,
                           T* grad_x) {
  return max_pool2d_grad_input_op(T{}).run(g, g, grad_y, indices, grad_x);
}

template <typename T>
void avg_pool2d_forward(const PoolGeometry& g, const AvgPoolDivisor& d, const T* x, T* y) {
  avg_pool2d_op(T{}).run(g, g, d, x, y);
}

void max_pool2d_forward_float16(const PoolGeometry& g, const uint16_t* x, uint16_t* y) {
  max_pool2d_op(Float16{}).run(g, g, x, y);
}

void avg_pool2d_forward_float16(const PoolGeometry& g, const AvgPoolDivisor& d,
                                const uint16_t* x, uint16_t* y) {
  avg_pool2d_op(Float16{}).run(g, g, d, x, y);
}

template <typename T>
void avg_pool2d_grad_input(const PoolGeometry& g, const AvgPoolDivisor& d, const T* grad_y,
                           T* grad_x) {
  avg_pool2d_grad_input_op(T{}).run(g, g, d, grad_y, grad_x);
}

template <typename T>
void global_avg_pool2d_forward(const GlobalPoolShape& s, const T* x, T* y) {
  global_avg_pool2d_op(T{}).run(s, s, x, y);
}

template <typename T>
void global_avg_pool2d_grad_input(const GlobalPoolShape& s, const T* grad_y, T* grad_x) {
  global_avg_pool2d_grad_input_op(T{}).run(s, s, grad_y, grad_x);
}

template <typename T>
void global_max_pool2d_forward(const GlobalPoolShape& s, const T* x, T* y, int64_t* indices) {
  global_max_pool2d_op(T{}).run(s, s, x, y, indices);
}

template <typename T>
void global_max_pool2d_grad_input(const GlobalPoolShape& s, const T* grad_y, const T* x,
                                  T* grad_x) {
  global_max_pool2d_grad_input_op(T{}).run(s, s, grad_y, x, grad_x);
}

template <typename T>
void channel_pool_forward(const ChannelPoolShape& s, ChannelPoolMode mode, const T* x, T* y) {
  channel_pool_op(T{}).run(s, s, mode, x, y);
}

template <typename T>
void channel_pool_grad_input(const ChannelPoolShape& s, ChannelPoolMode mode, const T* grad_y,
                             const T* x, T* grad_x) {
  channel_pool_grad_input_op(T{}).run(s, s, mode, grad_y, x, grad_x);
}

#define CONVPOOL_INSTANTIATE(T)                                                                \
  template void conv2d_forward<T>(const Conv2dGeometry&, const T*, const T*, const T*, T*);    \
  template void conv2d_grad_input<T>(const Conv2dGeometry&, const T*, const T*, T*);           \
  template void conv2d_grad_weight<T>(const Conv2dGeometry&, const T*, const T*, T*);          \
  template void max_pool2d_forward<T>(const PoolGeometry&, const T*, T*, int64_t*);            \
  template bool max_pool2d_grad_input<T>(const PoolGeometry&, const T*, const int64_t*, T*);   \
  template void avg_pool2d_forward<T>(const PoolGeometry&, const AvgPoolDivisor&, const T*,    \
                                      T*);                                                     \
  template void avg_pool2d_grad_input<T>(const PoolGeometry&, const AvgPoolDivisor&, const T*, \
                                         T*);                                                  \
  template void global_avg_pool2d_forward<T>(const GlobalPoolShape&, const T*, T*);            \
  template void global_avg_pool2d_grad_input<T>(const GlobalPoolShape&, const T*, T*);         \
  template void global_max_pool2d_forward<T>(const GlobalPoolShape&, const T*, T*, int64_t*);  \
  template void global_max_pool2d_grad_input<T>(const GlobalPoolShape&, const T*, const T*, T*); \
  template void channel_pool_forward<T>(const ChannelPoolShape&, ChannelPoolMode, const T*,    \
                                        T*);                                                   \
  template void channel_pool_grad_input<T>(const ChannelPoolShape&, ChannelPoolMode,           \
                                           const T*, const T*, T*);
CONVPOOL_INSTANTIATE(float)
CONVPOOL_INSTANTIATE(double)
#undef CONVPOOL_INSTANTIATE

// --- by name, for the bindings ----------------------------------------------------------

namespace registry {

std::vector<std::string> operations() {
  std::vector<std::string> names;
  auto add = [&](auto getter) { names.emplace_back(getter(float{}).name); };
  auto collect = [&](auto... getters) { (add(getters), ...); };
  collect(CONVPOOL_CONV_OPS);
  collect(CONVPOOL_WINDOW_POOL_OPS);
  collect(CONVPOOL_GLOBAL_POOL_OPS);
  collect(CONVPOOL_CHANNEL_POOL_OPS);
  return names;
}

std::vector<std::string> implementation_names(const std::string& op) {
  std::vector<std::string> names;
  auto body = [&](const auto& operation) {
    for (const auto& impl : operation.implementations) names.emplace_back(impl.name);
  };
  if (!with_any_operation(op, Dtype::float32, body)) unknown_operation(op);
  return names;
}

void force_implementation(const std::string& op, const std::string& name) {
  const auto names = implementation_names(op);
  bool known = name.empty();
  for (const auto& n : names) known = known || n == name;
  if (!known) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown " + op + " implementation '" + name + "' (expected one of " +
                                list + ")");
  }
  // The float32 list names every implementation: its string literal is what every list
  // keeps (the float64 and float16 lists report one they lack by that name).
  const char* literal = nullptr;
  with_any_operation(op, Dtype::float32, [&](const auto& operation) {
    const int i = operation.index_of(name.c_str());
    if (i >= 0) literal = operation.implementations[i].name;
  });
  with_every_list_of(op, [&](const auto& operation) {
    operation.forced.store(literal, std::memory_order_relaxed);
  });
}

std::string forced_implementation(const std::string& op) {
  std::string name;
  if (!with_any_operation(op, Dtype::float32, [&](const auto& operation) {
        const char* forced = operation.forced.load(std::memory_order_relaxed);
        if (forced != nullptr) name = forced;
      }))
    unknown_operation(op);
  return name;
}

int64_t runs(const std::string& op, const std::string& name, const std::string& dtype) {
  int64_t total = 0;
  if (!dtype.empty()) parse_dtype(dtype);  // a name it knows
  if (!with_every_list_of(op, [&](const auto& operation) {
        if (dtype.empty() || dtype == operation.dtype)
          total += operation.runs_of(name.c_str());
      }))
    unknown_operation(op);
  return total;
}

std::vector<std::string> supporting(const std::string& op, const std::string& dtype, const Conv2dGeometry& g) {
  return supporting_any(op, dtype, g, CONVPOOL_CONV_OPS);
}

std::vector<std::string> supporting(const std::string& op, const std::string& dtype, const PoolGeometry& g) {
  return supporting_any(op, dtype, g, CONVPOOL_WINDOW_POOL_OPS);
}

std::vector<std::string> supporting(const std::string& op, const std::string& dtype, const GlobalPoolShape& s) {
  return supporting_any(op, dtype, s, CONVPOOL_GLOBAL_POOL_OPS);
}

std::vector<std::string> supporting(const std::string& op, const std::string& dtype, const ChannelPoolShape& s) {
  return supporting_any(op, dtype, s, CONVPOOL_CHANNEL_POOL_OPS);
}

std::string chosen(const std::string& op, const std::string& dtype, const Conv2dGeometry& g) {
  return chosen_any(op, dtype, g, CONVPOOL_CONV_OPS);
}

std::string chosen(const std::string& op, const std::string& dtype, const PoolGeometry& g) {
  return chosen_any(op, dtype, g, CONVPOOL_WINDOW_POOL_OPS);
}

std::string chosen(const std::string& op, const std::string& dtype, const GlobalPoolShape& s) {
  return chosen_any(op, dtype, s, CONVPOOL_GLOBAL_POOL_OPS);
}

std::string chosen(const std::string& op, const std::string& dtype, const ChannelPoolShape& s) {
  return chosen_any(op, dtype, s, CONVPOOL_CHANNEL_POOL_OPS);
}

}  // namespace registry

}  // namespace convpool
