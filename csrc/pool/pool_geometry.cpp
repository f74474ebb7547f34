// Checks of a pooling geometry and the divisor counts of average pooling.
#include <limits>
#include <stdexcept>
#include <string>

#include "pool/pool2d.h"
#include "pool/pool_common.h"

namespace convpool {

namespace {

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

// Every window must hold an input pixel on this axis: a max over padding alone is undefined.
void check_windows_reach_input(const WindowAxis& a, const char* axis_name) {
  for (int64_t o = 0; o < a.out_size; ++o) {
    const pool::TapRange taps = pool::taps_inside(a, o);
    if (taps.begin >= taps.end)
      fail(std::string(axis_name) + ": the window of output position " + std::to_string(o) +
           " lies entirely in the padding (input " + std::to_string(a.in_size) + ", kernel " +
           std::to_string(a.kernel) + ", stride " + std::to_string(a.stride) + ", dilation " +
           std::to_string(a.dilation) + ", padding before " + std::to_string(a.pad_before) + ")");
  }
}

}  // namespace

void validate(const PoolGeometry& g) {
  validate(g.rows, "height");
  validate(g.cols, "width");
  if (g.planes < 0) fail("number of planes must be >= 0, got " + std::to_string(g.planes));
  if (g.rows.in_size < 1 || g.cols.in_size < 1)
    fail("pooling needs a non-empty input plane, got " + std::to_string(g.rows.in_size) + "x" +
         std::to_string(g.cols.in_size));
  const int64_t limit = std::numeric_limits<int64_t>::max() / 4;
  if (g.planes > 0 && (g.in_plane() > limit / g.planes || g.out_plane() > limit / g.planes))
    fail("pooling: the arrays have too many elements for 64-bit indexing");
  check_windows_reach_input(g.rows, "height");
  check_windows_reach_input(g.cols, "width");
}

void window_counts(const WindowAxis& a, int64_t pad_after, bool include_pad, int64_t* counts) {
  const int64_t lo = include_pad ? -a.pad_before : 0;
  const int64_t hi = include_pad ? a.in_size + pad_after : a.in_size;
  for (int64_t o = 0; o < a.out_size; ++o) {
    counts[o] = 0;
    for (int64_t k = 0; k < a.kernel; ++k) {
      const int64_t index = a.input_index(o, k);
      counts[o] += index >= lo && index < hi;
    }
  }
}

}  // namespace convpool
