// Build facts, threads and SIMD level.
#include <pybind11/pybind11.h>

#include <string>

#include "common/cpu_features.h"
#include "common/threading.h"

namespace convpool::bindings {

namespace py = pybind11;

void register_config(py::module_& m) {
  m.attr("__version__") = CONVPOOL_VERSION;
  m.def("build_info", [] {
    py::dict info;
    info["version"] = CONVPOOL_VERSION;
    info["compiler"] = CONVPOOL_COMPILER;
    info["openmp"] = openmp_version();
    info["simd"] = simd_level_name(simd_level());
    info["simd_detected"] = simd_level_name(detected_simd_level());
    info["num_threads"] = num_threads();
    return info;
  });
  m.def("get_num_threads", &num_threads);
  m.attr("MAX_THREADS") = kMaxThreads;
  m.def("set_num_threads", [](int n) {
    if (n < 1 || n > kMaxThreads)
      throw py::value_error("n: the number of threads must be between 1 and " +
                            std::to_string(kMaxThreads) + ", got " + std::to_string(n));
    set_num_threads(n);
  });
  m.def("get_simd_level", [] { return std::string(simd_level_name(simd_level())); });
  m.def("set_simd_level", [](const std::string& name) {
    SimdLevel level;
    if (!parse_simd_level(name.c_str(), &level))
      throw py::value_error("level: expected 'baseline', 'avx2' or 'avx512', got '" + name + "'");
    set_simd_level(level);
    return std::string(simd_level_name(simd_level()));
  });
}

}  // namespace convpool::bindings
