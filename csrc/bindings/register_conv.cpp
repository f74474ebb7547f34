// Convolution kernels. Checks that the NumPy arrays agree with the
// geometry the Python layer resolved (what protects memory, nothing about what the
// geometry means), hands the kernels raw pointers and releases the GIL around them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>

#include "bindings/arrays.h"
#include "common/geometry.h"
#include "conv/conv2d.h"
#include "conv/conv2d_nhwc.h"

namespace convpool::bindings {

namespace py = pybind11;

namespace {

// The arrays x (N, C_in, H, W) (channels-last: (N, H, W, C_in)), weight (C_out, C_in / groups, kh, kw) and
// y (N, C_out, OH, OW) must have the shapes of the geometry the Python layer resolved
// (convpool.geometry), which must itself be safe to index with.
void check_arrays(const Conv2dGeometry& g, const py::array& x, const char* x_name,
                  const py::array& weight, const py::array& y, const char* y_name) {
  validate(g);  // std::invalid_argument reaches Python as ValueError
  if (g.channels_last) {  // x (N, H, W, C_in), y (N, OH, OW, C_out)
    check_shape(x, x_name, {g.batch, g.rows.in_size, g.cols.in_size, g.in_channels});
    check_shape(y, y_name, {g.batch, g.rows.out_size, g.cols.out_size, g.out_channels});
  } else {
    check_shape(x, x_name, {g.batch, g.in_channels, g.rows.in_size, g.cols.in_size});
    check_shape(y, y_name, {g.batch, g.out_channels, g.rows.out_size, g.cols.out_size});
  }
  check_shape(weight, "weight",
              {g.out_channels, g.in_channels_per_group(), g.rows.kernel, g.cols.kernel});
}

void conv2d_forward_binding(const py::array& x, const py::array& weight,
                            const std::optional<py::array>& bias, py::array& out,
                            const Conv2dGeometry& g) {
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const T* xp = input_data<T>(x, "x", 4);
    const T* wp = input_data<T>(weight, "weight", 4);
    T* yp = output_data<T>(out, "out", 4);
    check_arrays(g, x, "x", weight, out, "out");
    const T* bp = nullptr;
    if (bias) {
      bp = input_data<T>(*bias, "bias", 1);
      check_shape(*bias, "bias", {g.out_channels});
    }
    check_no_overlap(x, out, "x", "out");
    check_no_overlap(weight, out, "weight", "out");
    if (bias) check_no_overlap(*bias, out, "bias", "out");
    py::gil_scoped_release release;
    conv2d_forward<T>(g, xp, wp, bp, yp);
  });
}

void conv2d_grad_input_binding(const py::array& grad_output, const py::array& weight,
                               py::array& grad_input, const Conv2dGeometry& g) {
  with_float_type(grad_output, "grad_output", [&](auto zero) {
    using T = decltype(zero);
    const T* gyp = input_data<T>(grad_output, "grad_output", 4);
    const T* wp = input_data<T>(weight, "weight", 4);
    T* gxp = output_data<T>(grad_input, "grad_input", 4);
    check_arrays(g, grad_input, "grad_input", weight, grad_output, "grad_output");
    check_no_overlap(grad_output, grad_input, "grad_output", "grad_input");
    py::gil_scoped_release release;
    conv2d_grad_input<T>(g, gyp, wp, gxp);
  });
}

void conv2d_grad_weight_binding(const py::array& x, const py::array& grad_output,
                                py::array& grad_weight, const Conv2dGeometry& g) {
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const T* xp = input_data<T>(x, "x", 4);
    const T* gyp = input_data<T>(grad_output, "grad_output", 4);
    T* gwp = output_data<T>(grad_weight, "grad_weight", 4);
    check_arrays(g, x, "x", grad_weight, grad_output, "grad_output");
    check_no_overlap(x, grad_weight, "x", "grad_weight");
    py::gil_scoped_release release;
    conv2d_grad_weight<T>(g, xp, gyp, gwp);
  });
}

void conv2d_grad_bias_binding(const py::array& grad_output, py::array& grad_bias) {
  with_float_type(grad_output, "grad_output", [&](auto zero) {
    using T = decltype(zero);
    const T* gyp = input_data<T>(grad_output, "grad_output", 4);
    T* gbp = output_data<T>(grad_bias, "grad_bias", 1);
    check_shape(grad_bias, "grad_bias", {grad_output.shape(1)});
    const int64_t batch = grad_output.shape(0), channels = grad_output.shape(1);
    const int64_t plane = grad_output.shape(2) * grad_output.shape(3);
    py::gil_scoped_release release;
    conv2d_grad_bias<T>(batch, channels, plane, gyp, gbp);
  });
}

// grad_output (rows, C) of a channels-last call (every axis but the channels flattened).
void conv2d_grad_bias_nhwc_binding(const py::array& grad_output, py::array& grad_bias) {
  with_float_type(grad_output, "grad_output", [&](auto zero) {
    using T = decltype(zero);
    const T* gyp = input_data<T>(grad_output, "grad_output", 2);
    T* gbp = output_data<T>(grad_bias, "grad_bias", 1);
    check_shape(grad_bias, "grad_bias", {grad_output.shape(1)});
    const int64_t rows = grad_output.shape(0), channels = grad_output.shape(1);
    py::gil_scoped_release release;
    conv2d_grad_bias_nhwc<T>(rows, channels, gyp, gbp);
  });
}

}  // namespace

void register_conv(py::module_& m) {
  using namespace py::literals;
  m.def("conv2d_forward", &conv2d_forward_binding, "x"_a, "weight"_a, "bias"_a, "out"_a,
        "geometry"_a);
  m.def("conv2d_grad_input", &conv2d_grad_input_binding, "grad_output"_a, "weight"_a,
        "grad_input"_a, "geometry"_a);
  m.def("conv2d_grad_weight", &conv2d_grad_weight_binding, "x"_a, "grad_output"_a,
        "grad_weight"_a, "geometry"_a);
  m.def("conv2d_grad_bias", &conv2d_grad_bias_binding, "grad_output"_a, "grad_bias"_a);
  m.def("conv2d_grad_bias_nhwc", &conv2d_grad_bias_nhwc_binding, "grad_output"_a, "grad_bias"_a);
}

}  // namespace convpool::bindings
