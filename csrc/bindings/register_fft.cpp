// The FFT correlation (fft/conv_fft.h) for convpool.conv_fft: checks what protects memory
// (dtypes, shapes, strides, no overlap of inputs and output), releases the GIL around it.
// Operands may have any strides (a channels-last array read as NCHW needs no copy); the
// kernels are C-contiguous.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "bindings/arrays.h"
#include "fft/conv_fft.h"

namespace convpool::bindings {

namespace py = pybind11;

namespace {

// The element strides of a 4-D array of T read as (N, C, H, W).
template <typename T>
fft::Strides element_strides(const py::array& a, const char* name) {
  if (!holds<T>(a))
    throw py::type_error(std::string(name) + ": dtype must be " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  if (a.ndim() != 4)
    throw py::value_error(std::string(name) + ": expected 4 dimensions, got shape " +
                          shape_string(a));
  int64_t s[4];
  for (int i = 0; i < 4; ++i) {
    if (a.strides(i) % py::ssize_t(sizeof(T)) != 0)
      throw py::value_error(std::string(name) + ": strides must be multiples of the item size");
    s[i] = a.strides(i) / py::ssize_t(sizeof(T));
  }
  return {s[0], s[1], s[2], s[3]};
}

// The bytes [first, last) an array's elements occupy, whatever its strides.
std::array<const char*, 2> byte_span(const py::array& a) {
  const char* first = static_cast<const char*>(a.data());
  const char* last = first;
  if (a.size() == 0) return {first, first};
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    const py::ssize_t reach = (a.shape(i) - 1) * a.strides(i);
    (reach < 0 ? first : last) += reach;
  }
  return {first, last + a.itemsize()};
}

void check_apart(const py::array& in, const py::array& out, const char* in_name,
                 const char* out_name) {
  const auto a = byte_span(in), b = byte_span(out);
  if (a[0] < a[1] && b[0] < b[1] && a[0] < b[1] && b[0] < a[1])
    throw py::value_error(std::string(out_name) + " must not share memory with " + in_name);
}

fft::Tiling tiling_of(const std::array<int64_t, 4>& t) { return {t[0], t[1], t[2], t[3]}; }

void fft_correlate_binding(const py::array& x, const py::array& weight,
                           const std::optional<py::array>& bias, py::array& out, int64_t groups,
                           int64_t top, int64_t left, const std::array<int64_t, 4>& tiling,
                           bool float64_transforms) {
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const fft::Strides xs = element_strides<T>(x, "x");
    const fft::Strides os = element_strides<T>(out, "out");
    if (!out.writeable()) throw py::value_error("out: array is read-only");
    const T* wp = input_data<T>(weight, "weight", 4);
    if (groups < 1 || x.shape(1) % groups != 0)
      throw py::value_error("groups: must be >= 1 and divide x's channels, got " +
                            std::to_string(groups));
    const fft::Correlation c{x.shape(0),     x.shape(1),      x.shape(2),     x.shape(3),
                             weight.shape(0), groups,          weight.shape(2), weight.shape(3),
                             out.shape(2),   out.shape(3),    top,            left};
    check_shape(weight, "weight", {c.out_channels, c.in_channels / groups, c.kh, c.kw});
    check_shape(out, "out", {c.batch, c.out_channels, c.out_height, c.out_width});
    const T* bp = nullptr;
    if (bias) {
      bp = input_data<T>(*bias, "bias", 1);
      check_shape(*bias, "bias", {c.out_channels});
      check_apart(*bias, out, "bias", "out");
    }
    check_apart(x, out, "x", "out");
    check_apart(weight, out, "weight", "out");
    const fft::Tiling t = tiling_of(tiling);
    fft::validate(c, t);  // std::invalid_argument reaches Python as ValueError
    const T* xp = static_cast<const T*>(x.data());
    T* yp = static_cast<T*>(out.mutable_data());
    py::gil_scoped_release release;
    fft::correlate<T>(xp, xs, wp, bp, yp, os, c, t, float64_transforms);
  });
}

void fft_correlate_weight_binding(const py::array& x, const py::array& grad_output,
                                  py::array& grad_weight, int64_t groups, int64_t top,
                                  int64_t left, const std::array<int64_t, 4>& tiling,
                                  bool float64_transforms) {
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const fft::Strides xs = element_strides<T>(x, "x");
    const fft::Strides gs = element_strides<T>(grad_output, "grad_output");
    T* gwp = output_data<T>(grad_weight, "grad_weight", 4);
    if (groups < 1 || x.shape(1) % groups != 0)
      throw py::value_error("groups: must be >= 1 and divide x's channels, got " +
                            std::to_string(groups));
    const fft::Correlation c{x.shape(0),           x.shape(1),           x.shape(2),
                             x.shape(3),           grad_output.shape(1), groups,
                             grad_weight.shape(2), grad_weight.shape(3), grad_output.shape(2),
                             grad_output.shape(3), top,                  left};
    check_shape(grad_output, "grad_output", {c.batch, c.out_channels, c.out_height, c.out_width});
    check_shape(grad_weight, "grad_weight", {c.out_channels, c.in_channels / groups, c.kh, c.kw});
    check_apart(x, grad_weight, "x", "grad_weight");
    check_apart(grad_output, grad_weight, "grad_output", "grad_weight");
    const fft::Tiling t = tiling_of(tiling);
    fft::validate(c, t);
    const T* xp = static_cast<const T*>(x.data());
    const T* gp = static_cast<const T*>(grad_output.data());
    py::gil_scoped_release release;
    fft::correlate_weight<T>(xp, xs, gp, gs, gwp, c, t, float64_transforms);
  });
}

}  // namespace

void register_fft(py::module_& m) {
  using namespace pybind11::literals;
  m.def("fft_correlate", &fft_correlate_binding, "x"_a, "weight"_a, "bias"_a, "out"_a,
        "groups"_a, "top"_a, "left"_a, "tiling"_a, "float64_transforms"_a,
        "out[n, q, i, j] = bias[q] + sum w[q, p, a, b] x[n, g(q) + p, i + a - top, j + b - left] "
        "(x zero outside), by overlap-save FFT tiles; tiling = (fh, fw, th, tw); float64 transforms "
        "for float64 operands, and for float32 ones when float64_transforms.");
  m.def("fft_correlate_weight", &fft_correlate_weight_binding, "x"_a, "grad_output"_a,
        "grad_weight"_a, "groups"_a, "top"_a, "left"_a, "tiling"_a, "float64_transforms"_a,
        "The weight gradient of fft_correlate, summed over the batch in the frequency domain.");
}

}  // namespace convpool::bindings
