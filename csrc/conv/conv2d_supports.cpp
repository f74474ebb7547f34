#include "conv/conv2d_supports.h"

#include <algorithm>
#include <cmath>

#include "common/threading.h"

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

// The extent of the input rows (or columns) the windows of axis `a` read, padding included.
double read_extent(const WindowAxis& a) {
  return double(a.out_size - 1) * double(a.stride) + double(a.dilation) * double(a.kernel - 1) + 1;
}

// Rows (or columns) of the output gradient, zero margins included, that the blocked input
// gradient's stride phases read (as conv2d_blocked.cpp builds it).
double gradient_rows(const WindowAxis& a) {
  int64_t lowest = 0, highest = 0;
  // Phases from in_size on hold no input pixel (and a stride may be near 2**62).
  for (int64_t phase = 0; phase < std::min(a.stride, a.in_size); ++phase)
    for (int64_t k = 0; k < a.kernel; ++k) {
      const int64_t shift = phase + a.pad_before - k * a.dilation;  // = offset * stride
      const int64_t rest = ((shift % a.stride) + a.stride) % a.stride;
      if (rest != 0) continue;
      const int64_t offset = (shift - rest) / a.stride;
      lowest = std::min(lowest, offset);
      highest = std::max(highest, offset);
    }
  const int64_t in_phase_rows = (a.in_size + a.stride - 1) / a.stride;
  return double(-lowest) + double(std::max(a.out_size, in_phase_rows + highest));
}

// Output rows one task of the plane kernel computes (as conv2d_plane.cpp splits them), and
// the floats of its row buffer: the input rows they read, each as wide as a row of
// `out_cols` outputs reads, plus a vector of slack.
int64_t plane_rows_per_task(int64_t out_rows, int64_t out_cols) {
  return std::clamp<int64_t>(16384 / std::max<int64_t>(out_cols, 1), 1,
                             std::max<int64_t>(out_rows, 1));
}

double plane_row_buffer_floats(const WindowAxis& rows, int64_t block, const WindowAxis& cols,
                               int64_t out_cols, int vector_floats) {
  return (double(block - 1) * double(rows.stride) +
          double(rows.kernel - 1) * double(rows.dilation) + 1) *
         (double(out_cols) + double(cols.kernel - 1) * double(cols.dilation) + vector_floats);
}

constexpr double kBlockedChunkFloats = 384.0 * 1024 / sizeof(float);  // conv2d_blocked.cpp

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
  if (!(g.cols.stride <= 2 && (rows || tiles) && g.batch > 0 && g.rows.out_size > 0 &&
        g.cols.out_size > 0 && g.in_plane() > 0))
    return false;
  // The padded copy blocked_forward makes, bounded by the operands (padding that few
  // windows read goes to `direct`, which needs no copy): whole padded planes for the row
  // kernel, a window of rows per thread for channel tiles.
  const WindowAxis &R = g.rows, &C = g.cols;
  const double rows_read = read_extent(R), cols_read = read_extent(C);
  if (C.stride == 1 && blocked_rows_suit(g.out_channels_per_group(), C.out_size, vector_floats))
    return scratch_within_operands(g, double(g.batch) * double(g.in_channels) * rows_read *
                                          cols_read);
  if (R.pad_before == 0 && C.pad_before == 0 && rows_read <= double(R.in_size) &&
      cols_read <= double(C.in_size))
    return true;  // reads the input in place
  const double window_rows = double(R.kernel - 1) * double(R.dilation) + 1;
  return scratch_within_operands(
      g, double(num_threads()) * double(g.in_channels_per_group()) * window_rows * cols_read);
}

bool blocked_grad_input_supports(const Conv2dGeometry& g, int vector_floats) {
  const bool rows = g.rows.stride == 1 && g.cols.stride == 1 &&
                    blocked_rows_suit(g.in_channels_per_group(), g.cols.in_size, vector_floats);
  if (!((rows || g.in_channels_per_group() >= 4) && g.batch > 0 && g.in_plane() > 0))
    return false;
  // The output gradient with the zero margins every stride phase reads.
  return scratch_within_operands(g, double(g.batch) * double(g.out_channels) *
                                        gradient_rows(g.rows) * gradient_rows(g.cols));
}

bool blocked_grad_weight_supports(const Conv2dGeometry& g, int) {
  if (!(g.out_channels_per_group() >= 4 && g.batch > 0 && g.out_plane() > 0)) return false;
  // Each thread packs chunks of padded input rows (at least the rows of one window, the
  // rest within a chunk) channels-last.
  const double window_rows = double(g.rows.kernel - 1) * double(g.rows.dilation) + 1;
  return scratch_within_operands(
      g, double(num_threads()) *
             (double(g.in_channels) * window_rows * read_extent(g.cols) + kBlockedChunkFloats));
}

namespace {

// The channel-blocked engine's cases: >= 16 channels each way per group and scratch (one
// picture's input, zero padded and split into stride phases, as conv2d_brgemm.cpp copies
// it) bounded by the operands. `rows` and `cols` are the axes of the correlation it runs.
bool brgemm_suits(const Conv2dGeometry& g, int64_t reduce_channels, int64_t out_channels,
                  const WindowAxis& rows, int64_t out_rows, const WindowAxis& cols,
                  int64_t out_cols) {
  if (!(reduce_channels >= 16 && out_channels >= 16 && g.batch > 0 && out_rows > 0 &&
        out_cols > 0 && g.in_plane() > 0))
    return false;
  auto phased = [](const WindowAxis& a, int64_t out) {
    const double extent = double(out - 1) * double(a.stride) + double(a.kernel - 1) * double(a.dilation) + 1;
    return std::ceil(extent / double(a.stride)) * double(a.stride);
  };
  return scratch_within_operands(
      g, double(reduce_channels) * phased(rows, out_rows) * phased(cols, out_cols) + 4096);
}

}  // namespace

// Where the forward pass beat both `blocked` and `winograd` (CPU time per call at batch 1
// and 8, docs/direct-conv.md): dilations above 2 (Winograd does not take dilated layers;
// `blocked` copies 2 x dilation + 1 rows per output row and was still ahead at 2), column
// strides above 2 (which `blocked` does not take), and layers with many weights (>= 64K)
// and few output pixels (7x7 maps at batch 1, stride-2 layers up to 14x14 outputs at
// batch 8), where Winograd's per-call weight transform and blocked's 7-pixel tiles cost
// most. Elsewhere
// (stride 1 on larger maps) Winograd or `blocked` stays ahead.
bool brgemm_forward_supports(const Conv2dGeometry& g, int) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const double pixels = double(g.batch) * double(g.out_plane());
  const double weights = double(g.out_channels) * double(g.in_channels_per_group()) *
                         double(g.kernel_plane());
  const bool few_pixels = weights >= 65536 &&
                          (pixels <= 64 || ((R.stride > 1 || C.stride > 1) && pixels <= 400));
  const bool wins = R.dilation > 2 || C.dilation > 2 || C.stride > 2 || few_pixels;
  return wins && brgemm_suits(g, g.in_channels_per_group(), g.out_channels_per_group(), R,
                              R.out_size, C, C.out_size);
}

// Stride 1 only: the input gradient is one correlation of the output gradient. Measured
// no faster than `blocked` and `winograd` (docs/direct-conv.md), so it comes after them.
bool brgemm_grad_input_supports(const Conv2dGeometry& g, int) {
  return g.rows.stride == 1 && g.cols.stride == 1 &&
         brgemm_suits(g, g.out_channels_per_group(), g.in_channels_per_group(), g.rows,
                      g.rows.in_size, g.cols, g.cols.in_size);
}

bool plane_supports(const Conv2dGeometry& g, int vector_floats) {
  if (!(g.in_channels_per_group() == 1 && g.cols.stride == 1)) return false;
  const int64_t block = plane_rows_per_task(g.rows.out_size, g.cols.out_size);
  return scratch_within_operands(
      g, double(num_threads()) *
             plane_row_buffer_floats(g.rows, block, g.cols, g.cols.out_size, vector_floats));
}

bool plane_grad_input_supports(const Conv2dGeometry& g, int vector_floats) {
  if (!(g.in_channels_per_group() == 1 && g.cols.stride == 1 && g.rows.stride == 1))
    return false;
  const int64_t block = plane_rows_per_task(g.rows.in_size, g.cols.in_size);
  return scratch_within_operands(
      g, double(num_threads()) *
             plane_row_buffer_floats(g.rows, block, g.cols, g.cols.in_size, vector_floats));
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
