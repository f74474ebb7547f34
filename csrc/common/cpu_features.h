// Which SIMD code the kernels run: the best the CPU supports, or a lower level that a
// test or the CONVPOOL_SIMD environment variable asks for.
#pragma once

namespace convpool {

enum class SimdLevel { baseline = 0, avx2 = 1, avx512 = 2 };

SimdLevel detected_simd_level();  // what this CPU can run
SimdLevel simd_level();           // what the kernels use now (<= detected)
void set_simd_level(SimdLevel level);  // clamped to the detected level
const char* simd_level_name(SimdLevel level);
bool parse_simd_level(const char* name, SimdLevel* level);

// Selects `level` even above what the CPU supports. Only for proving that running code
// the CPU lacks fails loudly (CI runs it under an emulated older CPU and expects SIGILL).
void force_simd_level_unchecked(SimdLevel level);

}  // namespace convpool
