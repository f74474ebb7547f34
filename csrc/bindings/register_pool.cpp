// Pooling kernels. Converts NumPy arrays to raw pointers and a PoolGeometry, checks that
// they agree (the Python layer has already normalised the arguments; these checks keep a
// bug there from becoming a wild pointer) and releases the GIL around the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/arrays.h"
#include "pool/pool2d.h"
#include "pool/pool_half.h"

namespace convpool::bindings {

namespace py = pybind11;

namespace {

// The channel axis of a 4-D array in either layout.
int channel_axis(bool channels_last) { return channels_last ? 3 : 1; }

// A 4-D shape (n, c, h, w) in the layout's order.
std::vector<int64_t> in_layout(bool channels_last, int64_t n, int64_t c, int64_t h, int64_t w) {
  if (channels_last) return {n, h, w, c};
  return {n, c, h, w};
}

// x (N, C, H, W) and y (N, C, OH, OW) (or (N, H, W, C) and (N, OH, OW, C) channels last)
// must have the shapes of the geometry the Python layer resolved (convpool.geometry),
// which must itself be safe to index with.
void check_arrays(const PoolGeometry& g, const py::array& x, const char* x_name,
                  const py::array& y, const char* y_name) {
  validate(g);  // std::invalid_argument reaches Python as ValueError
  const int64_t n = x.shape(0), c = x.shape(channel_axis(g.channels_last));
  if (n * c != g.planes || (g.channels_last && c != g.channels))
    throw py::value_error(std::string(x_name) + ": " + shape_string(x) + " does not hold " +
                          std::to_string(g.planes) + " planes");
  check_shape(x, x_name, in_layout(g.channels_last, n, c, g.rows.in_size, g.cols.in_size));
  check_shape(y, y_name, in_layout(g.channels_last, n, c, g.rows.out_size, g.cols.out_size));
}

int64_t* optional_indices(std::optional<py::array> indices, const py::array& like) {
  if (!indices) return nullptr;
  int64_t* data = output_data<int64_t>(*indices, "indices", like.ndim());
  std::vector<int64_t> shape(like.shape(), like.shape() + like.ndim());
  check_shape(*indices, "indices", shape);
  return data;
}

// float16 x and out (max pooling without indices, average pooling): the registry's float16
// lists, whose kernels read and write float16 and compute in float32 (pool_half.h).
template <typename Kernel>
void pool2d_forward_float16(const py::array& x, py::array& out, const PoolGeometry& g,
                            Kernel&& kernel) {
  check_float16_array(x, "x", 4);
  check_float16_array(out, "out", 4);
  if (g.channels_last)  // the Python layer pools channels-last float16 in float32
    throw py::value_error("x: the float16 pooling kernels read NCHW arrays only");
  if (!out.writeable()) throw py::value_error("out: array is read-only");
  check_arrays(g, x, "x", out, "out");
  check_no_overlap(x, out, "x", "out");
  const auto* xp = static_cast<const uint16_t*>(x.data());
  auto* yp = static_cast<uint16_t*>(out.mutable_data());
  py::gil_scoped_release release;
  kernel(xp, yp);
}

void max_pool2d_forward_binding(const py::array& x, py::array& out,
                                const std::optional<py::array>& indices, const PoolGeometry& g) {
  if (!indices && holds_float16(x)) {
    pool2d_forward_float16(x, out, g, [&](const uint16_t* xp, uint16_t* yp) {
      max_pool2d_forward_float16(g, xp, yp);
    });
    return;
  }
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const T* xp = input_data<T>(x, "x", 4);
    T* yp = output_data<T>(out, "out", 4);
    check_arrays(g, x, "x", out, "out");
    int64_t* ip = optional_indices(indices, out);
    check_no_overlap(x, out, "x", "out");
    if (indices) {
      check_no_overlap(x, *indices, "x", "indices");
      check_no_overlap(out, *indices, "out", "indices");
    }
    py::gil_scoped_release release;
    max_pool2d_forward<T>(g, xp, yp, ip);
  });
}

// The first index outside [0, plane), named by its position (in the array's own axis
// order): the error the kernel found.
[[noreturn]] void report_bad_index(const py::array& indices, int64_t plane, int64_t h, int64_t w) {
  const auto* idx = static_cast<const int64_t*>(indices.data());
  const int64_t count = static_cast<int64_t>(indices.size());
  for (int64_t k = 0; k < count; ++k) {
    if (idx[k] >= 0 && idx[k] < plane) continue;
    std::string position;
    int64_t rest = k;
    for (int axis = 3; axis >= 0; --axis) {
      position = std::to_string(rest % indices.shape(axis)) + (axis == 3 ? "" : ", ") + position;
      rest /= indices.shape(axis);
    }
    throw py::value_error("indices: value " + std::to_string(idx[k]) + " at [" + position +
                          "] is outside the input plane: indices must "
                          "lie in [0, H*W) = [0, " + std::to_string(plane) + ") for H, W = " +
                          std::to_string(h) + ", " + std::to_string(w));
  }
  throw py::value_error("indices: out of range");  // not reached: the kernel saw one
}

void max_pool2d_grad_input_binding(const py::array& grad_output, const py::array& indices,
                                   py::array& grad_input, bool channels_last) {
  with_float_type(grad_output, "grad_output", [&](auto zero) {
    using T = decltype(zero);
    const T* gyp = input_data<T>(grad_output, "grad_output", 4);
    const int64_t* ip = input_data<int64_t>(indices, "indices", 4);
    T* gxp = output_data<T>(grad_input, "grad_input", 4);
    check_shape(indices, "indices", {grad_output.shape(0), grad_output.shape(1),
                                     grad_output.shape(2), grad_output.shape(3)});
    // The spatial axes are 2, 3 (NCHW) or 1, 2 (NHWC).
    const int c_axis = channel_axis(channels_last), h_axis = channels_last ? 1 : 2;
    const int64_t n = grad_output.shape(0), c = grad_output.shape(c_axis);
    check_shape(grad_input, "grad_input", in_layout(channels_last, n, c, grad_input.shape(h_axis),
                                                    grad_input.shape(h_axis + 1)));
    check_no_overlap(grad_output, grad_input, "grad_output", "grad_input");
    check_no_overlap(indices, grad_input, "indices", "grad_input");
    PoolGeometry g;  // only the plane sizes matter: the indices say where each gradient goes
    g.planes = n * c;
    g.channels_last = channels_last;
    g.channels = c;
    g.rows.in_size = grad_input.shape(h_axis);
    g.cols.in_size = grad_input.shape(h_axis + 1);
    g.rows.out_size = grad_output.shape(h_axis);
    g.cols.out_size = grad_output.shape(h_axis + 1);
    bool in_range;
    {
      py::gil_scoped_release release;
      in_range = max_pool2d_grad_input<T>(g, gyp, ip, gxp);
    }
    if (!in_range) report_bad_index(indices, g.in_plane(), g.rows.in_size, g.cols.in_size);
  });
}

AvgPoolDivisor make_divisor(bool count_include_pad, int64_t divisor_override) {
  AvgPoolDivisor d;
  d.count_include_pad = count_include_pad;
  d.override_value = divisor_override;
  return d;
}

void avg_pool2d_forward_binding(const py::array& x, py::array& out, const PoolGeometry& g,
                                bool count_include_pad, int64_t divisor_override) {
  if (holds_float16(x)) {
    const AvgPoolDivisor d = make_divisor(count_include_pad, divisor_override);
    pool2d_forward_float16(x, out, g, [&](const uint16_t* xp, uint16_t* yp) {
      avg_pool2d_forward_float16(g, d, xp, yp);
    });
    return;
  }
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const T* xp = input_data<T>(x, "x", 4);
    T* yp = output_data<T>(out, "out", 4);
    check_arrays(g, x, "x", out, "out");
    const AvgPoolDivisor d = make_divisor(count_include_pad, divisor_override);
    check_no_overlap(x, out, "x", "out");
    py::gil_scoped_release release;
    avg_pool2d_forward<T>(g, d, xp, yp);
  });
}

void avg_pool2d_grad_input_binding(const py::array& grad_output, py::array& grad_input,
                                   const PoolGeometry& g, bool count_include_pad,
                                   int64_t divisor_override) {
  with_float_type(grad_output, "grad_output", [&](auto zero) {
    using T = decltype(zero);
    const T* gyp = input_data<T>(grad_output, "grad_output", 4);
    T* gxp = output_data<T>(grad_input, "grad_input", 4);
    check_arrays(g, grad_input, "grad_input", grad_output, "grad_output");
    const AvgPoolDivisor d = make_divisor(count_include_pad, divisor_override);
    check_no_overlap(grad_output, grad_input, "grad_output", "grad_input");
    py::gil_scoped_release release;
    avg_pool2d_grad_input<T>(g, d, gyp, gxp);
  });
}

// x (N, C, H, W) (or (N, H, W, C) channels last) with a non-empty plane; y (N, C).
GlobalPoolShape global_shape(const py::array& x, const py::array& y, const char* y_name,
                             bool channels_last) {
  const int h_axis = channels_last ? 1 : 2;
  const int64_t n = x.shape(0), c = x.shape(channel_axis(channels_last));
  const int64_t plane = x.shape(h_axis) * x.shape(h_axis + 1);
  if (plane < 1)
    throw py::value_error("x: global pooling needs a non-empty plane, got shape " + shape_string(x));
  check_shape(y, y_name, {n, c});
  return {n * c, plane, channels_last, c};
}

void global_avg_pool2d_forward_binding(const py::array& x, py::array& out, bool channels_last) {
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const T* xp = input_data<T>(x, "x", 4);
    T* yp = output_data<T>(out, "out", 2);
    const GlobalPoolShape s = global_shape(x, out, "out", channels_last);
    check_no_overlap(x, out, "x", "out");
    py::gil_scoped_release release;
    global_avg_pool2d_forward<T>(s, xp, yp);
  });
}

void global_avg_pool2d_grad_input_binding(const py::array& grad_output, py::array& grad_input,
                                          bool channels_last) {
  with_float_type(grad_output, "grad_output", [&](auto zero) {
    using T = decltype(zero);
    const T* gyp = input_data<T>(grad_output, "grad_output", 2);
    T* gxp = output_data<T>(grad_input, "grad_input", 4);
    const GlobalPoolShape s = global_shape(grad_input, grad_output, "grad_output", channels_last);
    check_no_overlap(grad_output, grad_input, "grad_output", "grad_input");
    py::gil_scoped_release release;
    global_avg_pool2d_grad_input<T>(s, gyp, gxp);
  });
}

void global_max_pool2d_forward_binding(const py::array& x, py::array& out,
                                       const std::optional<py::array>& indices,
                                       bool channels_last) {
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const T* xp = input_data<T>(x, "x", 4);
    T* yp = output_data<T>(out, "out", 2);
    const GlobalPoolShape s = global_shape(x, out, "out", channels_last);
    int64_t* ip = optional_indices(indices, out);
    if (indices) {
      check_no_overlap(x, *indices, "x", "indices");
      check_no_overlap(out, *indices, "out", "indices");
    }
    check_no_overlap(x, out, "x", "out");
    py::gil_scoped_release release;
    global_max_pool2d_forward<T>(s, xp, yp, ip);
  });
}

void global_max_pool2d_grad_input_binding(const py::array& grad_output, const py::array& x,
                                          py::array& grad_input, bool channels_last) {
  with_float_type(grad_output, "grad_output", [&](auto zero) {
    using T = decltype(zero);
    const T* gyp = input_data<T>(grad_output, "grad_output", 2);
    const T* xp = input_data<T>(x, "x", 4);
    T* gxp = output_data<T>(grad_input, "grad_input", 4);
    const GlobalPoolShape s = global_shape(x, grad_output, "grad_output", channels_last);
    check_shape(grad_input, "grad_input", {x.shape(0), x.shape(1), x.shape(2), x.shape(3)});
    check_no_overlap(grad_output, grad_input, "grad_output", "grad_input");
    check_no_overlap(x, grad_input, "x", "grad_input");
    py::gil_scoped_release release;
    global_max_pool2d_grad_input<T>(s, gyp, xp, gxp);
  });
}

// x (N, C, H, W) and y (N, C / size, H, W) (or (N, H, W, C) and (N, H, W, C / size)).
ChannelPoolShape channel_shape(const py::array& x, const py::array& y, int64_t size,
                               const char* y_name, bool channels_last) {
  if (size < 1 || size > INT32_MAX)
    throw py::value_error("size: must be >= 1, got " + std::to_string(size));
  const int h_axis = channels_last ? 1 : 2;
  const int64_t n = x.shape(0), c = x.shape(channel_axis(channels_last));
  const int64_t h = x.shape(h_axis), w = x.shape(h_axis + 1);
  check_shape(y, y_name, in_layout(channels_last, n, c / size, h, w));
  ChannelPoolShape s{n, c, size, h * w};
  s.channels_last = channels_last;
  return s;
}

void channel_pool_forward_binding(const py::array& x, py::array& out, int64_t size,
                                  ChannelPoolMode mode, bool channels_last) {
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const T* xp = input_data<T>(x, "x", 4);
    T* yp = output_data<T>(out, "out", 4);
    const ChannelPoolShape s = channel_shape(x, out, size, "out", channels_last);
    check_no_overlap(x, out, "x", "out");
    py::gil_scoped_release release;
    channel_pool_forward<T>(s, mode, xp, yp);
  });
}

void channel_pool_grad_input_binding(const py::array& grad_output, const py::array& x,
                                     py::array& grad_input, int64_t size, ChannelPoolMode mode,
                                     bool channels_last) {
  with_float_type(grad_output, "grad_output", [&](auto zero) {
    using T = decltype(zero);
    const T* gyp = input_data<T>(grad_output, "grad_output", 4);
    const T* xp = input_data<T>(x, "x", 4);
    T* gxp = output_data<T>(grad_input, "grad_input", 4);
    const ChannelPoolShape s = channel_shape(x, grad_output, size, "grad_output", channels_last);
    check_shape(grad_input, "grad_input", {x.shape(0), x.shape(1), x.shape(2), x.shape(3)});
    check_no_overlap(grad_output, grad_input, "grad_output", "grad_input");
    check_no_overlap(x, grad_input, "x", "grad_input");
    py::gil_scoped_release release;
    channel_pool_grad_input<T>(s, mode, gyp, xp, gxp);
  });
}

}  // namespace

void register_pool(py::module_& m) {
  using namespace py::literals;
  // The mode's name is checked by the Python layer; the binding takes the enum.
  py::enum_<ChannelPoolMode>(m, "ChannelPoolMode", "Channel pooling's reduction (mode).")
      .value("max", ChannelPoolMode::max)
      .value("avg", ChannelPoolMode::avg);
  m.def("max_pool2d_forward", &max_pool2d_forward_binding, "x"_a, "out"_a, "indices"_a,
        "geometry"_a);
  m.def("max_pool2d_grad_input", &max_pool2d_grad_input_binding, "grad_output"_a, "indices"_a,
        "grad_input"_a, "channels_last"_a = false);
  m.def("avg_pool2d_forward", &avg_pool2d_forward_binding, "x"_a, "out"_a, "geometry"_a,
        "count_include_pad"_a, "divisor_override"_a);
  m.def("avg_pool2d_grad_input", &avg_pool2d_grad_input_binding, "grad_output"_a, "grad_input"_a,
        "geometry"_a, "count_include_pad"_a, "divisor_override"_a);
  m.def("global_avg_pool2d_forward", &global_avg_pool2d_forward_binding, "x"_a, "out"_a,
        "channels_last"_a = false);
  m.def("global_avg_pool2d_grad_input", &global_avg_pool2d_grad_input_binding, "grad_output"_a,
        "grad_input"_a, "channels_last"_a = false);
  m.def("global_max_pool2d_forward", &global_max_pool2d_forward_binding, "x"_a, "out"_a,
        "indices"_a, "channels_last"_a = false);
  m.def("global_max_pool2d_grad_input", &global_max_pool2d_grad_input_binding, "grad_output"_a,
        "x"_a, "grad_input"_a, "channels_last"_a = false);
  m.def("channel_pool_forward", &channel_pool_forward_binding, "x"_a, "out"_a, "size"_a, "mode"_a,
        "channels_last"_a = false);
  m.def("channel_pool_grad_input", &channel_pool_grad_input_binding, "grad_output"_a, "x"_a,
        "grad_input"_a, "size"_a, "mode"_a, "channels_last"_a = false);
}

}  // namespace convpool::bindings
