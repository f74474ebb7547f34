#include "conv/conv2d_supports.h"

#include <algorithm>

namespace convpool {

namespace {

bool winograd_suits(const Conv2dGeometry& g, int64_t stride, int vector_floats) {
  const WindowAxis &R = g.rows, &C = g.cols;
  return R.kernel == 3 && C.kernel == 3 && R.stride == stride && C.stride == stride &&
         R.dilation == 1 && C.dilation == 1 && g.groups == 1 && g.in_channels >= 16 &&
         g.out_channels >= 16 && R.pad_before <= 2 && C.pad_before <= 2 && g.batch > 0 &&
         g.in_plane() > 0 &&
         g.in_channels < (int64_t(1) << 23) &&  // gathered offsets stay in int32
         int64_t(vector_floats) * std::max(g.in_plane(), g.out_plane()) < (int64_t(1) << 31);
}

}  // namespace

bool winograd_supports(const Conv2dGeometry& g, int vector_floats) {
  return winograd_suits(g, 1, vector_floats);
}

bool winograd_forward_supports(const Conv2dGeometry& g, int vector_floats) {
  return winograd_suits(g, 1, vector_floats) || winograd_suits(g, 2, vector_floats);
}

bool blocked_rows_suit(int64_t out_channels, int64_t cols, int vector_floats) {
  return out_channels <= kBlockedMaxRowChannels && out_channels * 2 <= vector_floats &&
         cols * 2 >= vector_floats;
}

bool blocked_forward_supports(const Conv2dGeometry& g, int vector_floats) {
  // With one input channel per group the plane filter beats channel tiles; the row kernel
  // beats both from two output channels per group on (measured: LeNet's first layer 2.3x,
  // a single-channel picture filter or a depthwise layer 0.5x-0.8x).
  const bool rows = g.cols.stride == 1 && g.out_channels_per_group() >= 2 &&
                    blocked_rows_suit(g.out_channels_per_group(), g.cols.out_size, vector_floats);
  const bool tiles = g.out_channels_per_group() >= 4 && g.in_channels_per_group() >= 2;
  return g.cols.stride <= 2 && (rows || tiles) && g.batch > 0 && g.rows.out_size > 0 &&
         g.cols.out_size > 0 && g.in_plane() > 0;
}

bool blocked_grad_input_supports(const Conv2dGeometry& g, int vector_floats) {
  const bool rows = g.rows.stride == 1 && g.cols.stride == 1 &&
                    blocked_rows_suit(g.in_channels_per_group(), g.cols.in_size, vector_floats);
  return (rows || g.in_channels_per_group() >= 4) && g.batch > 0 && g.in_plane() > 0;
}

bool blocked_grad_weight_supports(const Conv2dGeometry& g, int) {
  return g.out_channels_per_group() >= 4 && g.batch > 0 && g.out_plane() > 0;
}

bool plane_supports(const Conv2dGeometry& g, int) {
  return g.in_channels_per_group() == 1 && g.cols.stride == 1;
}

bool plane_grad_input_supports(const Conv2dGeometry& g, int vector_floats) {
  return plane_supports(g, vector_floats) && g.rows.stride == 1;
}

bool few_channels_forward_supports(const Conv2dGeometry& g, int) {
  return g.in_channels_per_group() >= 1 &&
         g.in_channels_per_group() <= kFewChannelsMaxInputChannels &&
         g.out_channels_per_group() >= 8 && g.rows.stride <= kFewChannelsMaxStride &&
         g.cols.stride <= kFewChannelsMaxStride && g.batch > 0 && g.rows.out_size > 0 &&
         g.cols.out_size > 0 && g.in_plane() > 0;
}

bool few_channels_grad_input_supports(const Conv2dGeometry& g, int) {
  return g.in_channels_per_group() >= 1 &&
         g.in_channels_per_group() <= kFewChannelsMaxInputChannels &&
         g.rows.stride <= kFewChannelsMaxStride && g.cols.stride <= kFewChannelsMaxStride &&
         g.batch > 0 && g.in_plane() > 0;
}

bool depthwise_strided_supports(const Conv2dGeometry& g, int) {
  // Strides up to 4: a task's buffer holds `stride` phases of each row it reads, and
  // every row between its first and last.
  return g.in_channels_per_group() == 1 && g.cols.stride >= 2 && g.cols.stride <= 4 &&
         g.rows.stride <= 4 && g.batch > 0 && g.rows.out_size > 0 && g.cols.out_size > 0 &&
         g.in_plane() > 0;
}

int64_t depthwise_lanes_padded_size(const WindowAxis& a) {
  const int64_t extent = (a.out_size - 1) * a.stride + (a.kernel - 1) * a.dilation + 1;
  return std::max(a.pad_before + a.in_size, extent);
}

namespace {

// Depthwise, strides up to 4, and a padded plane of V channels small enough for each
// thread to hold.
bool depthwise_small_planes(const Conv2dGeometry& g) {
  constexpr int64_t kMaxPaddedPixels = 1 << 16;
  const int64_t rows = depthwise_lanes_padded_size(g.rows);
  const int64_t cols = depthwise_lanes_padded_size(g.cols);
  return g.in_channels_per_group() == 1 && g.out_channels_per_group() == 1 && g.batch > 0 &&
         g.rows.out_size > 0 && g.cols.out_size > 0 && g.in_plane() > 0 && g.rows.stride <= 4 &&
         g.cols.stride <= 4 && rows <= kMaxPaddedPixels && cols <= kMaxPaddedPixels &&
         rows * cols <= kMaxPaddedPixels;
}

}  // namespace

// Where this path beat the row-vector ones (plane, depthwise_strided, few_channels) at
// batch 1 and 8, measured per pass on MobileNet's layers: the forward pass up to 56
// output columns, the gradients on 7x7 and 14x14 planes only.
bool depthwise_lanes_supports(const Conv2dGeometry& g, int) {
  return depthwise_small_planes(g) && g.cols.out_size < 64;
}

bool depthwise_lanes_grad_input_supports(const Conv2dGeometry& g, int) {
  return depthwise_small_planes(g) && g.cols.in_size < 28;
}

bool depthwise_lanes_grad_weight_supports(const Conv2dGeometry& g, int) {
  return depthwise_small_planes(g) && g.cols.out_size < 28;
}

}  // namespace convpool
