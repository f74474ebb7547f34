// The shapes a kernel works on, resolved once by the Python layer (convpool.geometry).
// Kernels trust these structs; `validate()` checks what protects memory (the bindings call
// it): values in range, extents within int64 index arithmetic, channel counts that the
// groups divide, and every window inside the padded input.
#pragma once

#include <cstdint>

#include "common/padding.h"

namespace convpool {

// One spatial axis of a sliding-window operation, resolved by the Python layer
// (convpool.geometry). The kernels index from pad_before; pad_after is what the output
// size was computed with (average pooling's divisor counts it).
struct WindowAxis {
  int64_t in_size = 0;
  int64_t out_size = 0;
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t pad_before = 0;
  int64_t pad_after = 0;

  // Input coordinate that tap `k` of output position `o` reads; may lie in the padding.
  int64_t input_index(int64_t o, int64_t k) const { return o * stride - pad_before + k * dilation; }

  // Output positions [first, last) whose tap `k` lands inside the input.
  int64_t first_inside(int64_t k) const {
    const int64_t offset = pad_before - k * dilation;  // o * stride >= offset
    if (offset <= 0) return 0;
    const int64_t o = (offset + stride - 1) / stride;
    return o < out_size ? o : out_size;
  }
  int64_t last_inside(int64_t k) const {
    // o * stride - pad_before + k * dilation <= in_size - 1
    const int64_t limit = in_size - 1 + pad_before - k * dilation;
    if (limit < 0) return 0;
    const int64_t o = limit / stride + 1;
    return o < out_size ? o : out_size;
  }
};

struct Conv2dGeometry {
  int64_t batch = 0;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t groups = 1;
  WindowAxis rows;
  WindowAxis cols;
  // What the padded pixels hold. Zero padding is no data: the kernels skip its taps.
  // The other modes are real data, read through padding_source_index().
  PaddingMode padding_mode = PaddingMode::zeros;
  // Where the channels are: false for NCHW arrays (N, C, H, W), true for channels-last
  // NHWC arrays (N, H, W, C). Only the NHWC implementations accept a channels-last case.
  bool channels_last = false;

  int64_t in_channels_per_group() const { return in_channels / groups; }
  int64_t out_channels_per_group() const { return out_channels / groups; }
  int64_t in_plane() const { return rows.in_size * cols.in_size; }
  int64_t out_plane() const { return rows.out_size * cols.out_size; }
  int64_t kernel_plane() const { return rows.kernel * cols.kernel; }
  // Whether every padded pixel reads as zero: zero padding, or no padding at all.
  bool zero_padded() const {
    return padding_mode == PaddingMode::zeros ||
           (rows.pad_before == 0 && rows.pad_after == 0 && cols.pad_before == 0 &&
            cols.pad_after == 0);
  }
};

// Whether a fast path may allocate `floats` of scratch (a padded copy, summed over the
// threads that hold one) for `g`: at most twice what the operands hold (input, output and
// weights) plus 1 MiB. A case whose copy would be larger, because most of it would be
// padding that few windows read, goes to the next implementation; the direct loops clip
// every tap to the input and need no scratch at all. Computed in double: the sizes may
// be near 2**62.
inline bool scratch_within_operands(const Conv2dGeometry& g, double floats) {
  const double operands = double(g.batch) * double(g.in_channels) * double(g.in_plane()) +
                          double(g.batch) * double(g.out_channels) * double(g.out_plane()) +
                          double(g.out_channels) * double(g.in_channels_per_group()) *
                              double(g.kernel_plane());
  return floats <= 2.0 * operands + double(1 << 18);
}

// Throws std::invalid_argument naming the broken rule. A convolution's windows must lie
// inside the padded input; a pooling window (ceil_mode) may hang past the padding after
// it, but must start inside the input or the padding before it.
enum class WindowBound { inside_padding, starts_inside };
void validate(const WindowAxis& axis, const char* axis_name, WindowBound bound);
void validate(const Conv2dGeometry& g);

}  // namespace convpool
