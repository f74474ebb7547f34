#include "common/geometry.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace convpool {

namespace {

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

// Element counts must fit comfortably in int64 index arithmetic.
void check_product(int64_t a, int64_t b, const char* what) {
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / 4 / a)
    fail(std::string(what) + " has too many elements for 64-bit indexing");
}

}  // namespace

void validate(const WindowAxis& a, const char* axis_name) {
  const std::string axis = axis_name;
  if (a.in_size < 0) fail(axis + ": input size must be >= 0, got " + std::to_string(a.in_size));
  if (a.kernel < 1) fail(axis + ": kernel size must be >= 1, got " + std::to_string(a.kernel));
  if (a.stride < 1) fail(axis + ": stride must be >= 1, got " + std::to_string(a.stride));
  if (a.dilation < 1) fail(axis + ": dilation must be >= 1, got " + std::to_string(a.dilation));
  if (a.pad_before < 0) fail(axis + ": padding must be >= 0, got " + std::to_string(a.pad_before));
  if (a.out_size < 0) fail(axis + ": output size must be >= 0, got " + std::to_string(a.out_size));
}

void validate(const Conv2dGeometry& g) {
  validate(g.rows, "height");
  validate(g.cols, "width");
  if (g.batch < 0) fail("batch size must be >= 0, got " + std::to_string(g.batch));
  if (g.groups < 1) fail("groups must be >= 1, got " + std::to_string(g.groups));
  if (g.in_channels < 1 || g.out_channels < 1) fail("channel counts must be >= 1");
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0)
    fail("groups (" + std::to_string(g.groups) + ") must divide in_channels (" +
         std::to_string(g.in_channels) + ") and out_channels (" + std::to_string(g.out_channels) + ")");
  check_product(g.batch * g.in_channels, g.in_plane(), "input");
  check_product(g.batch * g.out_channels, g.out_plane(), "output");
}

}  // namespace convpool
