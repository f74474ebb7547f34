// The 3-D convolution list of the kernel registry: a list of its own (its problem is a
// Conv3dShape, not a 2-D geometry), with the registry's conventions: ordered entries,
// each a `supports` predicate and one kernel per SIMD level (registry/implementation.h).
// Cases no entry supports are served by the Python layer (conv_nd.py: depth taps
// gathered into the channels of a 2-D convolution).
#include "conv/conv3d.h"

#include <stdexcept>

#include "common/workspace.h"
#include "registry/implementation.h"

namespace convpool {

#define CONV3D_FORWARD_FLOAT32(X) X("direct3d", direct3d_forward)
#define CONV3D_GRAD_WEIGHT_FLOAT32(X) X("direct3d", direct3d_grad_weight)
// bfloat16 forward (conv2d as depth 1, conv3d): packed channel pairs, AVX512_BF16.
#define CONV_BF16_FORWARD(X) X("bf16_dot", bf16_dot_forward)

#define CONVPOOL_FOR_EACH_ISA(...)    \
  namespace baseline { __VA_ARGS__ } \
  namespace avx2 { __VA_ARGS__ }     \
  namespace avx512 { __VA_ARGS__ }
#define CONVPOOL_DECLARE_CONV3D_FORWARD(label, kernel)                                      \
  CONVPOOL_FOR_EACH_ISA(void kernel(const Conv3dShape&, const float*, const float*,        \
                                    const float*, float*);)                                \
  bool kernel##_supports(const Conv3dShape&, int);
#define CONVPOOL_DECLARE_CONV3D_GRADIENT(label, kernel)                                     \
  CONVPOOL_FOR_EACH_ISA(void kernel(const Conv3dShape&, const float*, const float*, float*);) \
  bool kernel##_supports(const Conv3dShape&, int);
CONV3D_FORWARD_FLOAT32(CONVPOOL_DECLARE_CONV3D_FORWARD)
#define CONVPOOL_DECLARE_CONV_BF16(label, kernel)                                             \
  CONVPOOL_FOR_EACH_ISA(void kernel(const Conv3dShape&, const uint32_t*, const uint32_t*,    \
                                    const float*, float*);)                                 \
  bool kernel##_supports(const Conv3dShape&, int);
CONV_BF16_FORWARD(CONVPOOL_DECLARE_CONV_BF16)
CONV3D_GRAD_WEIGHT_FLOAT32(CONVPOOL_DECLARE_CONV3D_GRADIENT)

namespace {

#define CONVPOOL_CONV3D_ENTRY(label, kernel) {label, &kernel##_supports, CONVPOOL_PER_ISA(kernel)},

using Forward = void(const Conv3dShape&, const float*, const float*, const float*, float*);
using Gradient = void(const Conv3dShape&, const float*, const float*, float*);

const registry::Operation<Conv3dShape, Forward>& forward_op() {
  static const registry::Operation<Conv3dShape, Forward> op{"conv3d", "float32", {
      CONV3D_FORWARD_FLOAT32(CONVPOOL_CONV3D_ENTRY)
  }};
  return op;
}

const registry::Operation<Conv3dShape, Gradient>& grad_weight_op() {
  static const registry::Operation<Conv3dShape, Gradient> op{"conv3d_grad_weight", "float32", {
      CONV3D_GRAD_WEIGHT_FLOAT32(CONVPOOL_CONV3D_ENTRY)
  }};
  return op;
}

using Bf16Forward = void(const Conv3dShape&, const uint32_t*, const uint32_t*, const float*,
                         float*);

const registry::Operation<Conv3dShape, Bf16Forward>& bf16_forward_op() {
  static const registry::Operation<Conv3dShape, Bf16Forward> op{"conv_bf16", "bfloat16", {
      CONV_BF16_FORWARD(CONVPOOL_CONV3D_ENTRY)
  }};
  return op;
}

}  // namespace

std::string describe(const Conv3dShape& s) {
  auto triple = [](const int64_t* v) {
    return std::to_string(v[0]) + "x" + std::to_string(v[1]) + "x" + std::to_string(v[2]);
  };
  return "batch " + std::to_string(s.batch) + ", channels " + std::to_string(s.in_channels) +
         " -> " + std::to_string(s.out_channels) + ", groups " + std::to_string(s.groups) +
         ", input " + triple(s.in) + ", kernel " + triple(s.kernel) + ", stride " +
         triple(s.stride) + ", dilation " + triple(s.dilation) + ", output " + triple(s.out);
}

void validate(const Conv3dShape& s) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("conv3d: " + why + " (" + describe(s) + ")");
  };
  if (s.batch < 1 || s.in_channels < 1 || s.out_channels < 1 || s.groups < 1)
    fail("batch, channels and groups must be positive");
  if (s.in_channels % s.groups != 0 || s.out_channels % s.groups != 0)
    fail("groups must divide the channels");
  for (int a = 0; a < 3; ++a) {
    if (s.in[a] < 1 || s.kernel[a] < 1 || s.stride[a] < 1 || s.dilation[a] < 1 ||
        s.pad_before[a] < 0 || s.pad_after[a] < 0)
      fail("sizes, strides and dilations must be positive, padding not negative");
    const int64_t span = s.in[a] + s.pad_before[a] + s.pad_after[a] - s.dilation[a] * (s.kernel[a] - 1);
    if (span < 1 || (span - 1) / s.stride[a] + 1 != s.out[a])
      fail("the output size is not the one the input, kernel, stride and padding give");
  }
}

std::vector<std::string> conv3d_supporting(const std::string& op, const Conv3dShape& s) {
  if (op == "conv3d") return forward_op().supporting(s, simd_level());
  if (op == "conv3d_grad_weight") return grad_weight_op().supporting(s, simd_level());
  if (op == "conv_bf16") return bf16_forward_op().supporting(s, simd_level());
  throw std::invalid_argument("unknown 3-D operation '" + op +
                              "' (expected conv3d, conv3d_grad_weight or conv_bf16)");
}

void conv3d_forward(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                    float* y) {
  validate(s);
  const WorkspaceCall call;
  forward_op().run(s, s, x, w, bias, y);
}

void conv_bf16_forward(const Conv3dShape& s, const uint32_t* x_pairs,
                       const uint32_t* w_pairs, const float* bias, float* y) {
  validate(s);
  bf16_forward_op().run(s, s, x_pairs, w_pairs, bias, y);
}

void conv3d_grad_weight(const Conv3dShape& s, const float* x, const float* grad_y,
                        float* grad_w) {
  validate(s);
  const WorkspaceCall call;
  grad_weight_op().run(s, s, x, grad_y, grad_w);
}

}  // namespace convpool
