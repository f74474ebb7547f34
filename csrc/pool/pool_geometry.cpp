// The memory checks of a pooling geometry and the divisor counts of average pooling.
#include <limits>
#include <stdexcept>
#include <string>

#include "pool/pool2d.h"

namespace convpool {

void validate(const PoolGeometry& g) {
  validate(g.rows, "height", WindowBound::starts_inside);
  validate(g.cols, "width", WindowBound::starts_inside);
  if (g.planes < 0) throw std::invalid_argument("number of planes must be >= 0, got " + std::to_string(g.planes));
  if (g.channels_last && (g.channels < 1 || g.planes % g.channels != 0))
    throw std::invalid_argument("channels-last pooling: " + std::to_string(g.planes) +
                                " planes are not a whole number of images of " +
                                std::to_string(g.channels) + " channels");
  if (g.rows.in_size < 1 || g.cols.in_size < 1)
    throw std::invalid_argument("pooling needs a non-empty input plane, got " +
                                std::to_string(g.rows.in_size) + "x" + std::to_string(g.cols.in_size));
  const int64_t limit = std::numeric_limits<int64_t>::max() / 4;
  if (g.planes > 0 && (g.in_plane() > limit / g.planes || g.out_plane() > limit / g.planes))
    throw std::invalid_argument("pooling: the arrays have too many elements for 64-bit indexing");
}

void window_counts(const WindowAxis& a, bool include_pad, int64_t* counts) {
  const int64_t lo = include_pad ? -a.pad_before : 0;
  const int64_t hi = include_pad ? a.in_size + a.pad_after : a.in_size;
  for (int64_t o = 0; o < a.out_size; ++o) {
    counts[o] = 0;
    for (int64_t k = 0; k < a.kernel; ++k) {
      const int64_t index = a.input_index(o, k);
      counts[o] += index >= lo && index < hi;
    }
  }
}

}  // namespace convpool
