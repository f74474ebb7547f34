// The low-rank convolution (conv/conv2d_separable.h) for convpool.conv_separable: checks
// that the arrays agree with the geometry and the factors' rank (what protects memory),
// hands the kernel raw pointers and releases the GIL around it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "bindings/arrays.h"
#include "common/geometry.h"
#include "conv/conv2d_separable.h"

namespace convpool::bindings {

namespace py = pybind11;

namespace {

void separable_forward_binding(const py::array& x, const py::array& columns,
                               const py::array& rows, const std::optional<py::array>& bias,
                               py::array& out, const Conv2dGeometry& g, int64_t chunk) {
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const T* xp = input_data<T>(x, "x", 4);
    const T* cp = input_data<T>(columns, "columns", 3);
    const T* rp = input_data<T>(rows, "rows", 3);
    T* yp = output_data<T>(out, "out", 4);
    validate(g);  // std::invalid_argument reaches Python as ValueError
    const int64_t rank = columns.shape(1);
    if (!separable_forward_supports(g, rank))
      throw py::value_error(
          "geometry: the separable kernel serves zero-padded NCHW convolutions with one input "
          "channel per group, rank >= 1 and an intermediate within the operands' size");
    check_shape(x, "x", {g.batch, g.in_channels, g.rows.in_size, g.cols.in_size});
    check_shape(out, "out", {g.batch, g.out_channels, g.rows.out_size, g.cols.out_size});
    check_shape(columns, "columns", {g.out_channels, rank, g.rows.kernel});
    check_shape(rows, "rows", {g.out_channels, rank, g.cols.kernel});
    const T* bp = nullptr;
    if (bias) {
      bp = input_data<T>(*bias, "bias", 1);
      check_shape(*bias, "bias", {g.out_channels});
      check_no_overlap(*bias, out, "bias", "out");
    }
    check_no_overlap(x, out, "x", "out");
    check_no_overlap(columns, out, "columns", "out");
    check_no_overlap(rows, out, "rows", "out");
    py::gil_scoped_release release;
    separable_forward(g, rank, xp, cp, rp, bp, yp, chunk);
  });
}

}  // namespace

void register_separable(py::module_& m) {
  using namespace py::literals;
  m.def("conv2d_separable_forward", &separable_forward_binding, "x"_a, "columns"_a, "rows"_a,
        "bias"_a, "out"_a, "geometry"_a, "chunk"_a = 0,
        "y = correlate(x, sum_r columns[:, r] rows[:, r]^T) + bias in one sweep");
  m.def("conv2d_separable_supports", &separable_forward_supports, "geometry"_a, "rank"_a,
        "Whether conv2d_separable_forward serves this geometry with this many terms");
}

}  // namespace convpool::bindings
