// The direct 3-D convolution kernels (float32, NCDHW). The Python layer (conv_nd.py) pads
// nothing and resolves the geometry; this checks that the arrays agree with it (what
// protects memory), hands the kernels raw pointers and releases the GIL around them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <stdexcept>
#include <string>

#include "bindings/arrays.h"
#include "conv/conv3d.h"

namespace convpool::bindings {

namespace py = pybind11;

namespace {

using Triple = std::array<int64_t, 3>;

// The shape of a call: sizes from the operand shapes, the rest as the Python layer
// resolved it. std::invalid_argument (ValueError) when they disagree.
Conv3dShape make_shape(const std::vector<int64_t>& input_shape,
                       const std::vector<int64_t>& weight_shape,
                       const std::vector<int64_t>& output_shape, int64_t groups,
                       const Triple& stride, const Triple& dilation, const Triple& pad_before,
                       const Triple& pad_after) {
  if (input_shape.size() != 5 || weight_shape.size() != 5 || output_shape.size() != 5)
    throw std::invalid_argument("conv3d: input, weight and output shapes must have 5 axes");
  Conv3dShape s;
  s.batch = input_shape[0];
  s.in_channels = input_shape[1];
  s.out_channels = weight_shape[0];
  s.groups = groups;
  for (int a = 0; a < 3; ++a) {
    s.in[a] = input_shape[2 + a];
    s.kernel[a] = weight_shape[2 + a];
    s.out[a] = output_shape[2 + a];
    s.stride[a] = stride[a];
    s.dilation[a] = dilation[a];
    s.pad_before[a] = pad_before[a];
    s.pad_after[a] = pad_after[a];
  }
  validate(s);
  if (groups < 1 || weight_shape[1] * groups != s.in_channels || output_shape[0] != s.batch ||
      output_shape[1] != s.out_channels)
    throw std::invalid_argument("conv3d: the input, weight and output shapes disagree (" +
                                describe(s) + ")");
  return s;
}

std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

void forward_binding(const py::array& x, const py::array& weight,
                     const std::optional<py::array>& bias, py::array& out, int64_t groups,
                     const Triple& stride, const Triple& dilation, const Triple& pad_before,
                     const Triple& pad_after) {
  const float* xp = input_data<float>(x, "x", 5);
  const float* wp = input_data<float>(weight, "weight", 5);
  float* yp = output_data<float>(out, "out", 5);
  const Conv3dShape s = make_shape(shape_of(x), shape_of(weight), shape_of(out), groups, stride,
                                   dilation, pad_before, pad_after);
  const float* bp = nullptr;
  if (bias) {
    bp = input_data<float>(*bias, "bias", 1);
    check_shape(*bias, "bias", {s.out_channels});
    check_no_overlap(*bias, out, "bias", "out");
  }
  check_no_overlap(x, out, "x", "out");
  check_no_overlap(weight, out, "weight", "out");
  py::gil_scoped_release release;
  conv3d_forward(s, xp, wp, bp, yp);
}

void grad_weight_binding(const py::array& x, const py::array& grad_output,
                         py::array& grad_weight, int64_t groups, const Triple& stride,
                         const Triple& dilation, const Triple& pad_before,
                         const Triple& pad_after) {
  const float* xp = input_data<float>(x, "x", 5);
  const float* gyp = input_data<float>(grad_output, "grad_output", 5);
  float* gwp = output_data<float>(grad_weight, "grad_weight", 5);
  const Conv3dShape s = make_shape(shape_of(x), shape_of(grad_weight), shape_of(grad_output),
                                   groups, stride, dilation, pad_before, pad_after);
  check_no_overlap(x, grad_weight, "x", "grad_weight");
  check_no_overlap(grad_output, grad_weight, "grad_output", "grad_weight");
  py::gil_scoped_release release;
  conv3d_grad_weight(s, xp, gyp, gwp);
}

// x_pairs (N, groups * pairs, D, H, W) uint32, padded; w_pairs the packed weights of
// `weight_shape` (C_out, pairs, kd, kh, kw) (csrc/kernels/conv_bf16_dot.cpp).
void bf16_forward_binding(const py::array& x_pairs, const py::array& w_pairs,
                          const std::vector<int64_t>& weight_shape,
                          const std::optional<py::array>& bias, py::array& out, int64_t groups,
                          const Triple& stride, const Triple& dilation) {
  const uint32_t* xp = input_data<uint32_t>(x_pairs, "x_pairs", 5);
  const uint32_t* wp = input_data<uint32_t>(w_pairs, "w_pairs", 1);
  float* yp = output_data<float>(out, "out", 5);
  const Conv3dShape s = make_shape(shape_of(x_pairs), weight_shape, shape_of(out), groups,
                                   stride, dilation, {0, 0, 0}, {0, 0, 0});
  const int64_t blocks = (s.out_channels_per_group() + 15) / 16;
  check_shape(w_pairs, "w_pairs", {s.groups * blocks * s.in_channels_per_group() *
                                   s.kernel[0] * s.kernel[1] * s.kernel[2] * 16});
  const float* bp = nullptr;
  if (bias) {
    bp = input_data<float>(*bias, "bias", 1);
    check_shape(*bias, "bias", {s.out_channels});
    check_no_overlap(*bias, out, "bias", "out");
  }
  check_no_overlap(x_pairs, out, "x_pairs", "out");
  check_no_overlap(w_pairs, out, "w_pairs", "out");
  py::gil_scoped_release release;
  conv_bf16_forward(s, xp, wp, bp, yp);
}

std::vector<std::string> supporting_binding(const std::string& op,
                                            const std::vector<int64_t>& input_shape,
                                            const std::vector<int64_t>& weight_shape,
                                            const std::vector<int64_t>& output_shape,
                                            int64_t groups, const Triple& stride,
                                            const Triple& dilation, const Triple& pad_before,
                                            const Triple& pad_after) {
  return conv3d_supporting(op, make_shape(input_shape, weight_shape, output_shape, groups,
                                          stride, dilation, pad_before, pad_after));
}

}  // namespace

void register_conv3d(py::module_& m) {
  using namespace py::literals;
  m.def("conv3d_forward", &forward_binding, "x"_a, "weight"_a, "bias"_a, "out"_a, "groups"_a,
        "stride"_a, "dilation"_a, "pad_before"_a, "pad_after"_a,
        "Direct 3-D convolution, float32 NCDHW, zero padding.");
  m.def("conv3d_grad_weight", &grad_weight_binding, "x"_a, "grad_output"_a, "grad_weight"_a,
        "groups"_a, "stride"_a, "dilation"_a, "pad_before"_a, "pad_after"_a,
        "Weight gradient of the direct 3-D convolution.");
  m.def("conv_bf16_forward", &bf16_forward_binding, "x_pairs"_a, "w_pairs"_a,
        "weight_shape"_a, "bias"_a, "out"_a, "groups"_a, "stride"_a, "dilation"_a,
        "Convolution of bfloat16 channel pairs with AVX512_BF16 dot products, float32 out.");
  m.def("conv3d_supporting", &supporting_binding, "op"_a, "input_shape"_a, "weight_shape"_a,
        "output_shape"_a, "groups"_a, "stride"_a, "dilation"_a, "pad_before"_a, "pad_after"_a,
        "The 3-D implementations that support a case, in the order they are tried.");
}

}  // namespace convpool::bindings
