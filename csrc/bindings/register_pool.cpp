// Pooling kernels.
#include <pybind11/pybind11.h>

namespace convpool::bindings {

void register_pool(pybind11::module_&) {}

}  // namespace convpool::bindings
