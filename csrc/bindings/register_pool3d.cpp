// 3-D max pooling with indices (float32, float64; NCDHW). The Python layer (pool_nd.py)
// resolves the geometry; this checks that the arrays agree with it (what protects
// memory), hands the kernel raw pointers and releases the GIL around it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <string>
#include <vector>

#include "bindings/arrays.h"
#include "pool/pool3d.h"

namespace convpool::bindings {

namespace py = pybind11;

namespace {

using Triple = std::array<int64_t, 3>;

// The problem of x (N, C, D, H, W) -> out (N, C, OD, OH, OW); ValueError when the output
// sizes are not the ones the axes give room for.
Pool3dShape make_shape(const py::array& x, const py::array& out, const Triple& kernel,
                       const Triple& stride, const Triple& dilation, const Triple& pad_before,
                       const Triple& pad_after) {
  if (out.shape(0) != x.shape(0) || out.shape(1) != x.shape(1))
    throw py::value_error("max_pool3d: out must have the batch and channels of x, got " +
                          shape_string(out) + " for x " + shape_string(x));
  Pool3dShape s;
  s.planes = int64_t(x.shape(0)) * int64_t(x.shape(1));
  for (int a = 0; a < 3; ++a) {
    WindowAxis& axis = s.axes[a];
    axis.in_size = x.shape(2 + a);
    axis.out_size = out.shape(2 + a);
    axis.kernel = kernel[a];
    axis.stride = stride[a];
    axis.dilation = dilation[a];
    axis.pad_before = pad_before[a];
    axis.pad_after = pad_after[a];
  }
  validate(s);
  return s;
}

void forward_binding(const py::array& x, py::array& out, py::array& indices,
                     const Triple& kernel, const Triple& stride, const Triple& dilation,
                     const Triple& pad_before, const Triple& pad_after) {
  with_float_type(x, "x", [&](auto zero) {
    using T = decltype(zero);
    const T* xp = input_data<T>(x, "x", 5);
    T* yp = output_data<T>(out, "out", 5);
    int64_t* ip = output_data<int64_t>(indices, "indices", 5);
    check_shape(indices, "indices", std::vector<int64_t>(out.shape(), out.shape() + 5));
    const Pool3dShape s = make_shape(x, out, kernel, stride, dilation, pad_before, pad_after);
    check_no_overlap(x, out, "x", "out");
    check_no_overlap(x, indices, "x", "indices");
    check_no_overlap(out, indices, "out", "indices");
    py::gil_scoped_release release;
    max_pool3d_forward<T>(s, xp, yp, ip);
  });
}

}  // namespace

void register_pool3d(py::module_& m) {
  using namespace py::literals;
  m.def("max_pool3d_forward", &forward_binding, "x"_a, "out"_a, "indices"_a, "kernel"_a,
        "stride"_a, "dilation"_a, "pad_before"_a, "pad_after"_a,
        "3-D max pooling with indices, NCDHW, float32 or float64.");
}

}  // namespace convpool::bindings
