// The machine's measured limits (for the benchmark suite) and CI's illegal-instruction probe.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "common/cpu_features.h"
#include "machine/machine_limits.h"

namespace convpool::bindings {

namespace py = pybind11;

namespace {

void check_threads(int threads) {
  if (threads < 1 || threads > 4096)
    throw py::value_error("threads: must be between 1 and 4096, got " + std::to_string(threads));
}

void check_seconds(double min_seconds) {
  if (!(min_seconds > 0.0 && min_seconds <= 60.0))
    throw py::value_error("min_seconds: must be in (0, 60], got " + std::to_string(min_seconds));
}

}  // namespace

void register_machine(py::module_& m) {
  m.def(
      "measure_fma_peak",
      [](int threads, double min_seconds) {
        check_threads(threads);
        check_seconds(min_seconds);
        py::gil_scoped_release release;
        return measure_fma_peak(threads, min_seconds).per_second;
      },
      py::arg("threads"), py::arg("min_seconds") = 0.2,
      "fp32 FMA FLOP/s on `threads` threads at the SIMD level in use (best repeat).");
  m.def(
      "measure_stream_bandwidth",
      [](int threads, int64_t bytes_per_array, double min_seconds) {
        check_threads(threads);
        check_seconds(min_seconds);
        if (bytes_per_array < (int64_t{1} << 20) || bytes_per_array > (int64_t{1} << 36))
          throw py::value_error("bytes_per_array: must be between 1 MiB and 64 GiB, got " +
                                std::to_string(bytes_per_array));
        py::gil_scoped_release release;
        return measure_stream_bandwidth(threads, bytes_per_array, min_seconds).per_second;
      },
      py::arg("threads"), py::arg("bytes_per_array") = int64_t{256} << 20,
      py::arg("min_seconds") = 0.3,
      "Bytes/s (read + written) of b[i] = 1.5 * a[i] on `threads` threads (best repeat).");
  m.def(
      "_force_simd_level_unchecked",
      [](const std::string& name) {
        SimdLevel level;
        if (!parse_simd_level(name.c_str(), &level))
          throw py::value_error("level: expected 'baseline', 'avx2' or 'avx512', got '" + name + "'");
        force_simd_level_unchecked(level);
      },
      "Selects a SIMD level even if this CPU lacks it: an illegal instruction follows. "
      "For CI's proof that the emulated-CPU check catches one; never call it otherwise.");
}

}  // namespace convpool::bindings
