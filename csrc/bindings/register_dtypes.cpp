// float16 <-> float32 conversion of whole arrays (pool/half_convert.h): how the Python
// layer widens 16-bit operands once on entry and rounds results once on return.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bindings/arrays.h"
#include "pool/half_convert.h"

namespace convpool::bindings {

namespace py = pybind11;

namespace {

// Both C-contiguous with the same number of elements; the shapes may differ.
void check_pair(const py::array& from, const py::array& to) {
  if (!(from.flags() & py::array::c_style))
    throw py::value_error("src: array must be C-contiguous");
  if (!(to.flags() & py::array::c_style)) throw py::value_error("dst: array must be C-contiguous");
  if (!to.writeable()) throw py::value_error("dst: array is read-only");
  if (from.size() != to.size())
    throw py::value_error("dst: expected " + std::to_string(from.size()) + " elements, got " +
                          std::to_string(to.size()));
  check_no_overlap(from, to, "src", "dst");
}

void float16_to_float32(const py::array& src, py::array& dst) {
  check_pair(src, dst);
  if (!holds_float16(src))
    throw py::type_error("src: dtype must be float16, got " + std::string(py::str(src.dtype())));
  if (!holds<float>(dst))
    throw py::type_error("dst: dtype must be float32, got " + std::string(py::str(dst.dtype())));
  const auto* in = static_cast<const uint16_t*>(src.data());
  auto* out = static_cast<float*>(dst.mutable_data());
  py::gil_scoped_release release;
  half_to_float(in, out, static_cast<int64_t>(src.size()));
}

void float32_to_float16(const py::array& src, py::array& dst) {
  check_pair(src, dst);
  if (!holds<float>(src))
    throw py::type_error("src: dtype must be float32, got " + std::string(py::str(src.dtype())));
  if (!holds_float16(dst))
    throw py::type_error("dst: dtype must be float16, got " + std::string(py::str(dst.dtype())));
  const auto* in = static_cast<const float*>(src.data());
  auto* out = static_cast<uint16_t*>(dst.mutable_data());
  py::gil_scoped_release release;
  float_to_half(in, out, static_cast<int64_t>(src.size()));
}

}  // namespace

void register_dtypes(py::module_& m) {
  using namespace pybind11::literals;
  m.def("float16_to_float32", &float16_to_float32, "src"_a, "dst"_a,
        "dst[...] = src (float16 -> float32, exact), F16C where the CPU has it.");
  m.def("float32_to_float16", &float32_to_float16, "src"_a, "dst"_a,
        "dst[...] = src rounded to float16 (to nearest, ties to even; inf beyond 65504).");
}

}  // namespace convpool::bindings
