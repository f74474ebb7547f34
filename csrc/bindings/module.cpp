// convpool._core: the compiled kernels. Each area registers its own functions.
#include <pybind11/pybind11.h>

namespace convpool::bindings {
void register_config(pybind11::module_& m);
void register_conv(pybind11::module_& m);
void register_pool(pybind11::module_& m);
void register_machine(pybind11::module_& m);
void register_registry(pybind11::module_& m);
void register_dtypes(pybind11::module_& m);
void register_separable(pybind11::module_& m);
void register_conv3d(pybind11::module_& m);
void register_pool3d(pybind11::module_& m);
void register_fft(pybind11::module_& m);
}  // namespace convpool::bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "convpool's compiled kernels (private: use the convpool package)";
  convpool::bindings::register_config(m);
  convpool::bindings::register_conv(m);
  convpool::bindings::register_pool(m);
  convpool::bindings::register_machine(m);
  convpool::bindings::register_registry(m);
  convpool::bindings::register_dtypes(m);
  convpool::bindings::register_separable(m);
  convpool::bindings::register_conv3d(m);
  convpool::bindings::register_pool3d(m);
  convpool::bindings::register_fft(m);
}
