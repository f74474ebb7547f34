#include "common/geometry.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace convpool {

namespace {

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

// Every value, padded extent and dilated kernel extent stays below 2**62, so that the index
// arithmetic (sums of a few such terms) cannot overflow int64; the Python layer keeps to
// the same limit (convpool._args.INDEX_LIMIT).
constexpr int64_t kIndexLimit = int64_t(1) << 62;

// Element counts must fit comfortably in int64 index arithmetic.
void check_product(int64_t a, int64_t b, const char* what) {
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / 4 / a)
    fail(std::string(what) + " has too many elements for 64-bit indexing");
}

}  // namespace

void validate(const WindowAxis& a, const char* axis_name, WindowBound bound) {
  const std::string axis = axis_name;
  for (int64_t v : {a.in_size, a.out_size, a.kernel, a.stride, a.dilation, a.pad_before, a.pad_after})
    if (v >= kIndexLimit)
      fail(axis + ": sizes, strides, dilations and paddings must be < 2**62, got " +
           std::to_string(v));
  if (a.in_size < 0) fail(axis + ": input size must be >= 0, got " + std::to_string(a.in_size));
  if (a.kernel < 1) fail(axis + ": kernel size must be >= 1, got " + std::to_string(a.kernel));
  if (a.stride < 1) fail(axis + ": stride must be >= 1, got " + std::to_string(a.stride));
  if (a.dilation < 1) fail(axis + ": dilation must be >= 1, got " + std::to_string(a.dilation));
  if (a.pad_before < 0 || a.pad_after < 0)
    fail(axis + ": padding must be >= 0, got (" + std::to_string(a.pad_before) + ", " +
         std::to_string(a.pad_after) + ")");
  if (a.out_size < 0) fail(axis + ": output size must be >= 0, got " + std::to_string(a.out_size));
  if (a.in_size >= kIndexLimit - a.pad_before - a.pad_after)
    fail(axis + ": the padded input " + std::to_string(a.in_size) + " + " +
         std::to_string(a.pad_before) + " + " + std::to_string(a.pad_after) + " must be < 2**62");
  if (a.kernel > 1 && a.dilation > (kIndexLimit - 1) / (a.kernel - 1))
    fail(axis + ": the dilated kernel (kernel " + std::to_string(a.kernel) + ", dilation " +
         std::to_string(a.dilation) + ") must span < 2**62");
  if (a.out_size == 0) return;
  // Where the last window starts, and the bound it must respect (no overflow: each term
  // is below 2**62, and the product is compared by division).
  const int64_t padded = a.in_size + a.pad_before + a.pad_after;
  const int64_t extent = a.dilation * (a.kernel - 1) + 1;
  const int64_t room = bound == WindowBound::inside_padding ? padded - extent
                                                           : a.in_size + a.pad_before - 1;
  if (room < 0 || (a.out_size - 1) > room / a.stride)
    fail(axis + ": " + std::to_string(a.out_size) + " windows (kernel " + std::to_string(a.kernel) +
         ", stride " + std::to_string(a.stride) + ", dilation " + std::to_string(a.dilation) +
         ") do not fit an input of " + std::to_string(a.in_size) + " padded by (" +
         std::to_string(a.pad_before) + ", " + std::to_string(a.pad_after) + ")");
}

void validate(const Conv2dGeometry& g) {
  validate(g.rows, "height", WindowBound::inside_padding);
  validate(g.cols, "width", WindowBound::inside_padding);
  // The kernels read padded pixels of the non-zero modes from the input: in bounds only
  // within each mode's limits.
  validate_padding(g.padding_mode, g.rows.pad_before, g.rows.pad_after, g.rows.in_size, "height");
  validate_padding(g.padding_mode, g.cols.pad_before, g.cols.pad_after, g.cols.in_size, "width");
  if (g.batch < 0) fail("batch size must be >= 0, got " + std::to_string(g.batch));
  if (g.groups < 1) fail("groups must be >= 1, got " + std::to_string(g.groups));
  if (g.in_channels < 1 || g.out_channels < 1) fail("channel counts must be >= 1");
  check_product(g.batch, g.in_channels, "input");
  check_product(g.batch, g.out_channels, "output");
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0)
    fail("groups (" + std::to_string(g.groups) + ") must divide in_channels (" +
         std::to_string(g.in_channels) + ") and out_channels (" + std::to_string(g.out_channels) + ")");
  check_product(g.batch * g.in_channels, g.in_plane(), "input");
  check_product(g.batch * g.out_channels, g.out_plane(), "output");
}

}  // namespace convpool
