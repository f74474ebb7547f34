// The binding layer's checked access to NumPy buffers: the Python layer hands over
// C-contiguous float32/float64 arrays; these helpers verify that (a bug there must be an
// exception, never a wild pointer) and hand the kernels raw pointers.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace convpool::bindings {

namespace py = pybind11;

inline std::string shape_string(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// Whether `a`'s elements are T in native byte order. NumPy's equivalence, not object
// identity: an unpickled or deep-copied array carries an equal dtype that is a new object.
template <typename T>
bool holds(const py::array& a) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), py::dtype::of<T>().ptr());
}

// Whether `a` holds float16 in native byte order (the kernels that keep float16 in memory
// take it as IEEE binary16 bit patterns, uint16_t).
inline bool holds_float16(const py::array& a) {
  static const py::dtype float16("float16");
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), float16.ptr());
}

// The checks of input_data / output_data (below) for a float16 array.
inline void check_float16_array(const py::array& a, const char* name, py::ssize_t ndim) {
  if (!holds_float16(a))
    throw py::type_error(std::string(name) + ": dtype must be float16, got " +
                         std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(ndim) +
                          " dimensions, got shape " + shape_string(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": array must be C-contiguous");
}

// Whether `a` holds float64 (true) or float32 (false); TypeError for anything else.
inline bool is_float64(const py::array& a, const char* name) {
  if (holds<double>(a)) return true;
  if (holds<float>(a)) return false;
  throw py::type_error(std::string(name) + ": dtype must be float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

// Calls body(T{}) with T the float type `a` holds, float or double; TypeError otherwise.
// The one place where a binding goes from NumPy's run-time dtype to a kernel's template.
template <typename Body>
void with_float_type(const py::array& a, const char* name, Body&& body) {
  if (is_float64(a, name)) body(double{});
  else body(float{});
}

template <typename T>
void check_array(const py::array& a, const char* name, py::ssize_t ndim) {
  if (!holds<T>(a))
    throw py::type_error(std::string(name) + ": dtype must be " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(ndim) +
                          " dimensions, got shape " + shape_string(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": array must be C-contiguous");
}

template <typename T>
const T* input_data(const py::array& a, const char* name, py::ssize_t ndim) {
  check_array<T>(a, name, ndim);
  return static_cast<const T*>(a.data());
}

template <typename T>
T* output_data(py::array& a, const char* name, py::ssize_t ndim) {
  check_array<T>(a, name, ndim);
  if (!a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  return static_cast<T*>(a.mutable_data());
}

inline void check_shape(const py::array& a, const char* name, const std::vector<int64_t>& shape) {
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = a.shape(i) == shape[i];
  if (!same) {
    std::string expected = "(";
    for (size_t i = 0; i < shape.size(); ++i) expected += (i ? ", " : "") + std::to_string(shape[i]);
    throw py::value_error(std::string(name) + ": expected shape " + expected + "), got " +
                          shape_string(a));
  }
}

// Two arrays whose memory overlaps cannot be input and output of one kernel call.
inline void check_no_overlap(const py::array& in, const py::array& out, const char* in_name,
                             const char* out_name) {
  const auto* a0 = static_cast<const char*>(in.data());
  const auto* b0 = static_cast<const char*>(out.data());
  const auto* a1 = a0 + in.nbytes();
  const auto* b1 = b0 + out.nbytes();
  if (in.nbytes() > 0 && out.nbytes() > 0 && a0 < b1 && b0 < a1)
    throw py::value_error(std::string(out_name) + " must not share memory with " + in_name);
}


}  // namespace convpool::bindings
