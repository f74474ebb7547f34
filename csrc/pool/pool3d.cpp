// The 3-D max-pooling list of the kernel registry: a list of its own (its problem is a
// Pool3dShape, not a 2-D geometry), with the registry's conventions: ordered entries, each
// a `supports` predicate and one kernel per SIMD level (registry/implementation.h).
#include "pool/pool3d.h"

#include <limits>
#include <stdexcept>
#include <string>

#include "registry/implementation.h"

namespace convpool {

#define MAX_POOL3D(X) X("rows", max_pool3d_rows)

#define CONVPOOL_DECLARE_MAX_POOL3D(label, kernel)                                       \
  namespace baseline {                                                                  \
  template <typename T> void kernel(const Pool3dShape&, const T*, T*, int64_t*);        \
  }                                                                                     \
  namespace avx2 {                                                                      \
  template <typename T> void kernel(const Pool3dShape&, const T*, T*, int64_t*);        \
  }                                                                                     \
  namespace avx512 {                                                                    \
  template <typename T> void kernel(const Pool3dShape&, const T*, T*, int64_t*);        \
  }                                                                                     \
  bool kernel##_supports(const Pool3dShape&, int);
MAX_POOL3D(CONVPOOL_DECLARE_MAX_POOL3D)

namespace {

template <typename T>
using Forward = void(const Pool3dShape&, const T*, T*, int64_t*);

#define CONVPOOL_POOL3D_ENTRY(label, kernel) \
  {label, &kernel##_supports, CONVPOOL_PER_ISA(kernel<T>)},

template <typename T>
const registry::Operation<Pool3dShape, Forward<T>>& forward_op() {
  static const registry::Operation<Pool3dShape, Forward<T>> op{
      "max_pool3d", sizeof(T) == 8 ? "float64" : "float32", {
          MAX_POOL3D(CONVPOOL_POOL3D_ENTRY)
      }};
  return op;
}

}  // namespace

std::string describe(const Pool3dShape& s) {
  std::string text = "planes " + std::to_string(s.planes);
  const char* names[3] = {"depth", "height", "width"};
  for (int a = 0; a < 3; ++a) {
    const WindowAxis& x = s.axes[a];
    text += std::string(", ") + names[a] + " " + std::to_string(x.in_size) + " -> " +
            std::to_string(x.out_size) + " (kernel " + std::to_string(x.kernel) + ", stride " +
            std::to_string(x.stride) + ", dilation " + std::to_string(x.dilation) +
            ", padding " + std::to_string(x.pad_before) + "/" + std::to_string(x.pad_after) + ")";
  }
  return text;
}

void validate(const Pool3dShape& s) {
  if (s.planes < 1)
    throw std::invalid_argument("max_pool3d: the number of planes must be positive (" +
                                describe(s) + ")");
  const char* names[3] = {"depth", "height", "width"};
  for (int a = 0; a < 3; ++a) {
    validate(s.axes[a], names[a], WindowBound::starts_inside);
    if (s.axes[a].in_size < 1 || s.axes[a].out_size < 1)
      throw std::invalid_argument(std::string("max_pool3d: ") + names[a] +
                                  ": input and output sizes must be >= 1 (" + describe(s) + ")");
  }
  // every flat index and offset fits int64 (each factor is below 2**62, checked above)
  const int64_t limit = std::numeric_limits<int64_t>::max() / 4;
  int64_t in = s.planes, out = s.planes;
  for (const WindowAxis& a : s.axes) {
    if (in > limit / a.in_size || out > limit / a.out_size)
      throw std::invalid_argument("max_pool3d: the arrays have too many elements for 64-bit "
                                  "indexing (" + describe(s) + ")");
    in *= a.in_size;
    out *= a.out_size;
  }
}

std::vector<std::string> max_pool3d_supporting(const Pool3dShape& s) {
  return forward_op<float>().supporting(s, simd_level());
}

template <typename T>
void max_pool3d_forward(const Pool3dShape& s, const T* x, T* y, int64_t* indices) {
  validate(s);
  forward_op<T>().run(s, s, x, y, indices);
}

template void max_pool3d_forward<float>(const Pool3dShape&, const float*, float*, int64_t*);
template void max_pool3d_forward<double>(const Pool3dShape&, const double*, double*,
                                         int64_t*);

}  // namespace convpool
