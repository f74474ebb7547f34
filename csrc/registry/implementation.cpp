#include "registry/implementation.h"

namespace convpool::registry {

int vector_floats(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512: return 16;
    case SimdLevel::avx2: return 8;
    case SimdLevel::baseline: break;
  }
  return 4;
}

}  // namespace convpool::registry
